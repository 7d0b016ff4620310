"""The HTML-to-text converter is at least as good as w3m's dump on the corpus's HTML mails.

For every distinct text/html part of the corpus's mails: every word of
``w3m -dump -T text/html`` (Debian's w3m) appears in our text, except words inside elements
hidden by inline CSS, by a ``<style>`` rule whose selector is one class or id (with or
without a tag name), or by the ``hidden`` attribute (w3m reads no CSS: it shows hidden text),
and so does every http, https and mailto link target. Failures are listed by file.

What is not a word: w3m's own decorations (table borders, list bullets, ``[name]``
placeholders for images without alt text, ``*`` for tiny images, ``^`` for superscripts,
``bg image(...)`` for background images, ``Refresh (N sec)`` for a meta refresh). What we
add is taken out of our text before the comparison: ``<URL>`` after a link's text and the
brackets around an image's alt text. A link target counts as shown when our text has it
whole, or without its scheme when the link's text already said it (then it is not
repeated); whitespace that browsers strip from a URL and our percent-encoding of characters
that could disguise one are undone first.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from email import message_from_bytes
from email.policy import compat32
from urllib.parse import unquote

import pytest
from lxml import etree
from lxml import html as lxml_html

from sanitizers.charsets import decode_body
from sanitizers.html_text import html_to_text
from sanitizers.mime import header_params
from sanitizers.policy import LinkMode
from tests.corpus import CORPUS, files_of_type
from tests.tools import require_tool

pytestmark = pytest.mark.corpus

W3M_OPTIONS = ["-dump", "-T", "text/html", "-I", "UTF-8", "-O", "UTF-8", "-cols", "1000"]
W3M_DECORATIONS = re.compile(
    r"bg image\([^)]*\)|Refresh \(\d+ sec\) ?\S*|[─━│┃┌┐└┘├┤┬┴┼┏┓┗┛┠┨┯┷┿╂•◦▪●○■□◆◇☆*^]"
)
OUR_URLS = re.compile(r" ?<(?:https?|ftp|mailto):[^>\s]*>")
BRACKETED = re.compile(r"\[([^\[\]]*)\]")
SPACES = re.compile(r"\s+")
PUNCTUATION_ONLY = re.compile(r"[\W_]*")
SHOWN_SCHEMES = re.compile(r"(?i)(https?|mailto):")


def html_parts() -> dict[str, tuple[str, str]]:
    """Distinct HTML parts of the corpus's mails: digest -> (where, decoded HTML)."""
    found: dict[str, tuple[str, str]] = {}
    for path in files_of_type("mail", "mbox"):
        message = message_from_bytes(path.read_bytes(), policy=compat32)
        for index, part in enumerate(message.walk()):
            if part.is_multipart():
                continue
            content_type, params, _ = header_params(part, "content-type")
            if content_type != "text/html":
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            charset = params.get("charset")
            html = decode_body(payload, charset.text if charset else None).text
            digest = hashlib.sha256(html.encode("utf-8", "surrogatepass")).hexdigest()
            found.setdefault(digest, (f"{path.relative_to(CORPUS)}#{index}", html))
    return found


# --- the oracle: text hidden by inline CSS or ``hidden`` (an implementation of its own) ----

DECLARATION = re.compile(r"([a-z-]+)\s*:\s*([^;]*)")
ZERO = re.compile(r"[+-]?(?:0+\.?0*|\.0+)(?:[a-z]{1,4}|%)?")
ABSOLUTE_SIZE = re.compile(r"\d*\.?\d+(?:px|pt|pc|cm|mm|in|rem)|(?:x*-)?(?:small|large)|medium")
NOT_SHOWN = {"script", "style", "head", "title", "template", "object", "iframe", "svg", "math"}


def declarations(style: str) -> dict[str, str]:
    style = re.sub(r"/\*.*?\*/", "", style.lower())
    return {m[1]: m[2].replace("!important", "").strip() for m in DECLARATION.finditer(style)}


def parse_html(html: str) -> etree._Element | None:
    try:
        return lxml_html.document_fromstring(html.encode("utf-8", "replace"))
    except (etree.ParserError, ValueError):
        return None


SIMPLE_RULE = re.compile(
    r"(?:^|})\s*((?:[a-z0-9]*[.#][\w-]+\s*,\s*)*[a-z0-9]*[.#][\w-]+)\s*{([^{}]*)}"
)
MEDIA = re.compile(r"@[^{]*{(?:[^{}]*{[^{}]*})*[^{}]*}")


def sheet_rules(root: etree._Element) -> dict[str, list[tuple[str, str]]]:
    """Declarations of the top-level rules of the style sheets whose selectors are one class
    or id with an optional tag name: ``.name``/``#name`` -> [(tag or "", declarations)]."""
    rules: dict[str, list[tuple[str, str]]] = {}
    for style in root.iter("style"):
        css = MEDIA.sub("}", re.sub(r"/\*.*?\*/", "", (style.text or "").lower(), flags=re.S))
        for selectors, body in SIMPLE_RULE.findall(css):
            for selector in selectors.split(","):
                tag, sigil, name = re.fullmatch(
                    r"\s*([a-z0-9]*)([.#])([\w-]+)\s*", selector
                ).groups()
                rules.setdefault(sigil + name, []).append((tag, body))
    return rules


def element_css(element: etree._Element, rules: dict[str, list[tuple[str, str]]]) -> dict[str, str]:
    css: dict[str, str] = {}
    keys = ["." + name for name in (element.get("class") or "").lower().split()]
    keys.append("#" + (element.get("id") or "").strip().lower())
    for key in keys:
        for tag, body in rules.get(key, ()):
            if not tag or tag == element.tag:
                css.update(declarations(body))
    css.update(declarations(element.get("style", "")))
    return css


def hidden_parts(root: etree._Element | None) -> tuple[list[str], set[etree._Element]]:
    """Text a browser does not show, as CSS applies inline styles and simple style-sheet
    rules (see html_text), and the elements that are not shown at all (so neither are their
    links)."""
    fragments: list[str] = []
    unseen: set[etree._Element] = set()
    if root is None:
        return fragments, unseen
    rules = sheet_rules(root)
    stack: list[tuple[etree._Element, bool, frozenset[str]]] = [(root, False, frozenset())]
    while stack:
        element, gone, veils = stack.pop()
        if not isinstance(element.tag, str):
            continue
        css = element_css(element, rules)
        clipped = any(css.get(o) in ("hidden", "clip") for o in ("overflow", "overflow-y"))
        gone = (
            gone
            or element.tag in NOT_SHOWN
            or element.get("hidden") is not None
            or css.get("display") == "none"
            or css.get("mso-hide") == "all"
            or ZERO.fullmatch(css.get("opacity", "1")) is not None
            or (clipped and any(ZERO.fullmatch(css.get(s, "x")) for s in ("height", "max-height")))
        )
        veil = set(veils)
        if css.get("visibility") in ("hidden", "collapse"):
            veil.add("visibility")
        elif css.get("visibility") == "visible":
            veil.discard("visibility")
        size = css.get("font-size")
        if size is not None and ZERO.fullmatch(size):
            veil.add("font-size")
        elif size is not None and ABSOLUTE_SIZE.fullmatch(size):
            veil.discard("font-size")
        if css.get("color") == "transparent":
            veil.add("color")
        elif css.get("color"):
            veil.discard("color")
        hidden = gone or bool(veil)
        if gone or "visibility" in veil:
            unseen.add(element)
        if hidden and element.text:
            fragments.append(element.text)
        for child in element:
            if hidden and child.tail:
                fragments.append(child.tail)
            stack.append((child, gone, frozenset(veil)))
    return [SPACES.sub("", fragment) for fragment in fragments if fragment.strip()], unseen


# --- the comparison --------------------------------------------------------------------------


def w3m_dump(w3m: str, html: str) -> str:
    done = subprocess.run(
        [w3m, *W3M_OPTIONS],
        input=html.encode("utf-8", "replace"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.stdout.decode("utf-8", "replace")


def missing_words(html: str, ours: str, dump: str) -> list[str]:
    ours_plain = BRACKETED.sub(r"\1", OUR_URLS.sub("", ours))
    flat = SPACES.sub("", ours_plain)
    hidden, _ = hidden_parts(parse_html(html))
    missing: list[str] = []
    for token in W3M_DECORATIONS.sub(" ", dump).split():
        # w3m's [name] placeholders for images without alt are not words.
        word = BRACKETED.sub(lambda m: m[1] if m[1] in flat else "", token)
        word = word.strip("[]")
        if PUNCTUATION_ONLY.fullmatch(word) or token in ours or word in ours_plain or word in flat:
            continue
        if any(fragment in word or word in fragment for fragment in hidden):
            continue
        missing.append(token)
    return missing


def missing_targets(html: str, ours: str) -> list[str]:
    root = parse_html(html)
    if root is None:
        return []
    _, unseen = hidden_parts(root)
    shown = unquote(ours)
    missing: list[str] = []
    for link in root.iter("a"):
        href = re.sub(r"[\t\n\r]", "", (link.get("href") or "").strip())
        scheme = SHOWN_SCHEMES.match(href)
        if scheme is None or link in unseen:
            continue
        rest = href[scheme.end() :]
        bare = rest.removeprefix("//")
        candidates = (scheme[1].lower() + ":" + rest, bare, bare.rstrip("/"))
        if not any(unquote(candidate) in shown for candidate in candidates):
            missing.append(href)
    return missing


def test_our_text_has_every_word_and_link_of_w3m() -> None:
    w3m = require_tool("w3m", debian_package="w3m")
    parts = html_parts()
    assert len(parts) > 150, "the corpus should hold over 150 distinct HTML parts"
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    failures: dict[str, str] = {}
    for where, html in sorted(parts.values()):
        ours = html_to_text(html, LinkMode.KEEP)
        words = missing_words(html, ours, w3m_dump(w3m, html))
        targets = missing_targets(html, ours)
        if words or targets:
            failures[where] = f"words {words[:10]} ({len(words)}), links {targets[:3]}"
    listing = "\n".join(f"{where}: {what}" for where, what in sorted(failures.items()))
    assert not failures, f"{len(failures)} of {len(parts)} HTML parts:\n{listing}"
