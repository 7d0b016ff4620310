"""Readable plain text from hostile HTML (メールテキスト化方式 for HTML bodies).

Threat model: the HTML comes from the Internet and may be built to deceive the reader of the
text, to crash or stall the converter, or to smuggle something clickable across. So:

* Only what a browser would show is kept. Scripts, styles, ``<head>``, templates, embedded
  objects, frames, media, SVG and MathML, comments and processing instructions are dropped.
  Hidden text is how phishing talks to filters behind the reader's back; it must not become
  visible in the text either. Inline styles hide the way CSS does:

  - for good (nothing inside can show again): ``display:none`` and the ``hidden`` attribute
    (unless the element's own style sets another ``display``), zero ``opacity`` (it applies
    to the whole rendered group), ``mso-hide:all``, and zero
    ``height``/``max-height``/``width``/``max-width`` with ``overflow:hidden`` (clipping);
  - until a descendant says otherwise (inherited properties): ``visibility:hidden``/``collapse``
    (a child with ``visibility:visible`` shows), zero ``font-size`` (a child that sets its own
    absolute size shows: responsive and MJML newsletters zero the size of column wrappers to
    remove the gaps between inline blocks), and transparent text colour (a child with its own
    colour shows). Images stay visible under a zero font size or transparent colour.

  The document's ``<style>`` sheets hide and show the same way, applied to the whole tree as
  CSS applies them (:mod:`sanitizers.html_css`: every selector, ``@media`` for a desktop
  reader, specificity and order, the inline style after them, ``!important`` first). When
  the sheets cannot be applied within their limits, nothing is hidden by CSS in that
  document: shown text is the fail-safe, never hidden text.

  ``aria-hidden`` is *not* hiding (the text is on screen), and ``<noscript>`` is kept (mail
  readers run no scripts, so they show it).
* Links are shown as ``text <URL>`` only for the schemes of ``policy.links.allowed_schemes``
  (default http, https and mailto; :mod:`sanitizers.links`); ``javascript:``, ``data:``,
  ``vbscript:``, relative and every other URL are never shown, only the link's text (which the
  pipeline defangs when it is itself such a link). The URL is not repeated when the text
  already says it. ``LinkMode.DEFANG`` writes ``hxxp://``, ``hxxps://``, ``fxp://`` and
  ``[.]`` for the dots of the host, in shown URLs *and* in URLs written in the text, so no
  reader turns them into links;
  ``LinkMode.DROP`` shows no URL. Characters that could disguise a shown URL (whitespace,
  controls, bidi overrides, ``<`` and ``>``) are percent-encoded.
* The output holds no control character except newline and tab, ends every line with ``\\n``,
  has no trailing spaces, and no more than two blank lines in a row (outside ``<pre>``).
  Japanese text is left exactly as written: no NFKC, no width changes. Only HTML source
  whitespace is collapsed as a browser does (a source line break between two East Asian wide
  characters disappears, as in CSS Text 3, instead of becoming a stray space).
* Bounded: libxml2 (through lxml) parses in C and reports tags and text to this module as it
  reads them. No tree is built, so there is no nesting limit that would cut content off (a
  tree stops at 256 levels) and no cost quadratic in the number of an element's attributes (a
  tree's cost); nothing recurses, indentation and table layout stop at fixed depths, and every
  step is linear in the input. Nothing here raises on any ``str``.

Layout: block elements start new lines, paragraphs and headings are separated by a blank line
(a paragraph without vertical margins, such as Word's and Outlook's ``MsoNormal`` lines, is one
line, and an empty one an empty line),
``<br>`` breaks the line, list items start with ``・`` (``<ul>``) or ``1.`` (``<ol>``),
``<blockquote>`` lines start with ``> ``, ``<hr>`` is a line of dashes, ``<pre>`` keeps its
whitespace, ``<ruby>`` readings follow in （）, images become ``[alt]`` (nothing without alt,
nothing for zero-sized images) and buttons ``[label]``. No-break spaces at the start of a line
indent it. A table row becomes a line, its cells joined by `` | `` (empty cells left out, so
layout spacers vanish); a cell of several lines (``<br>``, blocks inside) stands apart from its
neighbours, on lines of its own. A shown URL follows its link's text (``text <URL>``), with no
space before closing punctuation.

Not handled: off-screen positioning, text coloured like its background, and relative URLs
resolved against ``<base>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Final, cast

from lxml import etree

from sanitizers.html_css import cascaded_sheets
from sanitizers.links import DEFANGED_SCHEMES, DEFAULT_ALLOWED_SCHEMES
from sanitizers.policy import LinkMode
from sanitizers.safetext import SURROGATES, body_text

__all__ = ["html_to_text"]

_Attributes = Mapping[str, str]
_NO_ATTRIBUTES: Final[_Attributes] = {}

# --- element classes ---------------------------------------------------------------------

# Elements whose whole subtree is never shown. Void elements that libxml2 nevertheless parses
# as containers (embed, source, track, wbr…) are not listed: what follows them is visible.
_DROPPED: Final = frozenset(
    {
        "applet", "audio", "base", "canvas", "datalist", "frame", "frameset", "head", "iframe",
        "link", "math", "meta", "noembed", "noframes", "object", "param", "rp", "script",
        "style", "svg", "template", "title", "video", "xml",
    }
)  # fmt: skip

# Block elements and how many newlines (1: own line, 2: blank line) separate them.
_BLOCKS: Final = {
    **dict.fromkeys(
        (
            "address", "article", "aside", "caption", "center", "details", "dialog", "div",
            "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "legend",
            "main", "nav", "option", "section", "summary",
        ),
        1,
    ),
    **dict.fromkeys(("h1", "h2", "h3", "h4", "h5", "h6", "dl"), 2),
}  # fmt: skip

_PRE: Final = frozenset({"pre", "xmp", "listing", "plaintext"})

_BULLET: Final = "・"  # East Asian wide: two columns, so continuation lines indent by two spaces
_BULLET_INDENT: Final = "  "
_DD_INDENT: Final = "  "
_QUOTE: Final = "> "
_HR: Final = "-" * 40
_CELL_SEPARATOR: Final = " | "
_BUTTON_INPUTS: Final = frozenset({"submit", "button", "reset", "image"})
# What needs no space before it when it follows a shown URL.
_CLOSING_PUNCTUATION: Final = frozenset(".,;:!?)]}」』）】〉》、。")

# --- limits --------------------------------------------------------------------------------

_MAX_PREFIX_LEVELS: Final = 8  # deeper lists and quotes add no further indentation
_MAX_BREAK_RUN: Final = 3  # <br> never makes more than two blank lines in a row
_MAX_LINK_TEXT: Final = 512  # longer link texts are never compared with their URL
_MAX_LINK_PARTS: Final = 64  # nor are link texts written in more pieces than this
_MAX_OL_START: Final = 10**6

# --- text normalisation ------------------------------------------------------------------

_SURROGATES: Final = re.compile(f"[{SURROGATES[0]}-{SURROGATES[-1]}]")
# Form feed and carriage return are whitespace to HTML (sanitizers.safetext would make them
# line ends).
_HTML_SPACE_CONTROLS: Final = str.maketrans("\x0c\r", "  ")
_HTML_WHITESPACE: Final = " \t\n\r\f"
_HTML_SPACE: Final = re.compile(f"[{_HTML_WHITESPACE}]+")
_WIDE: Final = "\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff01-\uff60\uffe0-\uffe6"  # noqa: E501
_CJK_SEGMENT_BREAK: Final = re.compile(f"(?<=[{_WIDE}])[ \t\r\f]*\n[ \t\n\r\f]*(?=[{_WIDE}])")

# --- links -------------------------------------------------------------------------------

_C0_AND_SPACE: Final = "".join(map(chr, range(0x21)))  # what browsers strip around a URL
_SCHEME: Final = re.compile("[A-Za-z][A-Za-z0-9+.-]*")
_URL_DISGUISE: Final = re.compile(
    '[\x00-\x20\x7f-\xa0<>"\u00ad\u061c\u115f\u1160\u1680\u180e\u2000-\u200f\u2028-\u202f'
    "\u205f-\u206f\u3000\u3164\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
_TEXT_SCHEME: Final = re.compile(r"(?i)(?:https?|ftp)(?=://)")
_DEFANGED_HOST: Final = re.compile(r"((?:hxxps?|fxp)://)([^\s/?#<>\\]*)")

# --- inline styles -----------------------------------------------------------------------

_CSS_COMMENT: Final = re.compile(r"/\*.*?(?:\*/|$)", re.DOTALL)
_CSS_ESCAPE: Final = re.compile(r"\\(?:([0-9a-f]{1,6})[ \t\n\r\f]?|(.))", re.DOTALL)
_CSS_ZERO: Final = re.compile(r"[+-]?(?:0+\.?0*|\.0+)(?:[a-z]{1,4}|%)?")
_CSS_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?%?")
_OVERFLOWS: Final = ("overflow", "overflow-x", "overflow-y")
_SIZES: Final = ("height", "max-height", "width", "max-width")
_IMPORTANT: Final = re.compile(r"!\s*important\s*$")
_ZERO_SIZE: Final = re.compile(r"\s*(?:0+\.?0*|\.0+)\s*(?:px)?\s*")
# Font sizes that do not depend on the parent's (so they undo an inherited zero size); em,
# ex, ch, %, ``larger`` and ``smaller`` scale the parent's size and stay zero under a zero.
_ABSOLUTE_FONT_SIZE: Final = re.compile(
    r"[+]?(?:\d+\.?\d*|\.\d+)(?:px|pt|pc|cm|mm|in|q|rem|vw|vh|vmin|vmax)"
    r"|(?:xx?x?-)?(?:small|large)|medium|math|initial|calc\(.*|clamp\(.*|max\(.*|min\(.*"
)
# The size in the ``font`` shorthand: the token before an optional ``/line-height``.
_FONT_SHORTHAND_SIZE: Final = re.compile(
    r"(?<!\S)([+-]?(?:\d+\.?\d*|\.\d+)[a-z%]*|(?:xx?x?-)?(?:small|large)|medium)(?=\s*/|\s|$)"
)
# Transparent text: the keyword, or an alpha of zero (``rgba(0,0,0,0)``, ``rgb(0 0 0 / 0%)``).
_TRANSPARENT: Final = re.compile(
    r"transparent|(?:rgb|hsl)a?\((?:(?:[^,/()]*,){3}|[^,/()]*/)\s*(?:0+\.?0*|\.0+)%?\s*\)"
)
_KEEPS_INHERITED: Final = frozenset({"inherit", "unset", "revert", "revert-layer", ""})

# Inherited hiding, as bits: what a descendant may undo by setting the property again.
_INVISIBLE: Final = 1  # visibility:hidden/collapse: text and images hidden
_ZERO_FONT: Final = 2  # font-size zero: text hidden, images shown
_CLEAR_TEXT: Final = 4  # transparent colour: text hidden, images shown
_HIDES_TEXT: Final = _INVISIBLE | _ZERO_FONT | _CLEAR_TEXT


def html_to_text(
    untrusted_html: str,
    links: LinkMode,
    allowed_schemes: Collection[str] = DEFAULT_ALLOWED_SCHEMES,
) -> str:
    """Readable plain text of ``untrusted_html``; see the module docstring. Never raises."""
    utf8 = _utf8(untrusted_html)
    converter = _Converter(links, allowed_schemes, cascaded_sheets(untrusted_html, utf8))
    # The converter is the parser's target: libxml2 reports elements and text as it reads them
    # and no tree is built (a tree costs time, limits nesting to 256 levels, and takes time
    # quadratic in the number of attributes of an element).
    parser = etree.HTMLParser(
        encoding="utf-8",  # the caller decoded the text: this overrides any <meta charset>
        target=cast("etree.ParserTarget", converter),  # lxml passes str, never bytes
        no_network=True,
    )
    try:
        parser.feed(utf8)
        parser.close()
    except etree.LxmlError:  # e.g. an empty document: what was read so far stands
        pass
    return converter.finish()


def _utf8(untrusted_html: str) -> bytes:
    """The text as UTF-8 for libxml2 (which normalises newlines itself). NUL becomes U+FFFD,
    as libxml2 would make it, but before parsing: libxml2 reports text around each NUL in a
    separate piece, and a text of NULs would cost a call per character."""
    if "\x00" in untrusted_html:
        untrusted_html = untrusted_html.replace("\x00", "\ufffd")
    try:
        return untrusted_html.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, which no encoding can hold
        return _SURROGATES.sub("\ufffd", untrusted_html).encode("utf-8")


# --- inline styles -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _StyleEffect:
    """What one inline style does to visibility: hide for good, or set and clear inherited
    hiding bits (``_INVISIBLE``, ``_ZERO_FONT``, ``_CLEAR_TEXT``)."""

    hides: bool = False
    sets: int = 0
    clears: int = 0


_NO_EFFECT: Final = _StyleEffect()
_HIDES: Final = _StyleEffect(hides=True)


def _style_effect(untrusted_style: str) -> _StyleEffect:
    lowered = untrusted_style.lower()
    return _style_effect_of(lowered) if _may_affect(lowered) else _NO_EFFECT


def _may_affect(style: str) -> bool:
    """A quick test that every style with an effect passes (comments and escapes always do)."""
    return (
        "\\" in style
        or "/" in style
        or "display" in style
        or "visibility" in style
        or "mso-hide" in style
        or "color" in style
        or "opacity" in style
        or "overflow" in style
        or "font" in style
    )


def _style_effect_of(style: str) -> _StyleEffect:
    """How a (lower-cased) inline style hides the element, as a browser would apply it."""
    get = _css_declarations(style).get
    if get("display") == "none" or get("mso-hide") == "all":
        return _HIDES
    if _is_nonpositive(get("opacity", "1")):
        return _HIDES
    clipped = any(get(name) in ("hidden", "clip") for name in _OVERFLOWS)
    if clipped and any(_CSS_ZERO.fullmatch(get(name, "x")) for name in _SIZES):
        return _HIDES
    sets = clears = 0
    visibility = get("visibility")
    if visibility in ("hidden", "collapse"):
        sets |= _INVISIBLE
    elif visibility is not None and visibility not in _KEEPS_INHERITED:
        clears |= _INVISIBLE
    size = _font_size(get("font-size"), get("font"))
    if size is not None and _CSS_ZERO.fullmatch(size):
        sets |= _ZERO_FONT
    elif size is not None and _ABSOLUTE_FONT_SIZE.fullmatch(size):
        clears |= _ZERO_FONT
    color = get("color")
    if color is not None and _TRANSPARENT.fullmatch(color):
        sets |= _CLEAR_TEXT
    elif color is not None and color not in _KEEPS_INHERITED and color != "currentcolor":
        clears |= _CLEAR_TEXT
    return _StyleEffect(sets=sets, clears=clears) if sets or clears else _NO_EFFECT


def _font_size(size: str | None, shorthand: str | None) -> str | None:
    """The font size a style sets (``font-size`` wins over the ``font`` shorthand)."""
    if size is not None:
        return size
    if shorthand is None:
        return None
    for match in _FONT_SHORTHAND_SIZE.finditer(shorthand):
        found = match.group(1)
        # A bare number in the shorthand is a weight (700) unless it is zero.
        if not found[-1].isdigit() or _CSS_ZERO.fullmatch(found):
            return found
    return None


def _shows_despite_hidden(untrusted_style: str | None) -> bool:
    """Whether an element's own style sets a ``display`` that overrides ``hidden`` (which is
    only the browser's default style ``display:none``)."""
    if untrusted_style is None or "display" not in untrusted_style.lower():
        return False
    display = _css_declarations(untrusted_style.lower()).get("display")
    return display is not None and display not in _KEEPS_INHERITED and display != "none"


def _css_declarations(style: str) -> dict[str, str]:
    """Property → value of one inline style, honouring ``!important`` and later-wins."""
    if "/*" in style:
        style = _CSS_COMMENT.sub("", style)
    if "\\" in style:
        style = _CSS_ESCAPE.sub(_css_unescape, style)
    values: dict[str, str] = {}
    important: set[str] = set()
    for declaration in style.split(";"):
        name, colon, value = declaration.partition(":")
        if not colon:
            continue
        name = name.strip()
        value, marks = _IMPORTANT.subn("", value.strip())
        is_important = marks > 0
        if name in important and not is_important:
            continue
        if is_important:
            important.add(name)
        values[name] = value.strip()
    return values


def _css_unescape(match: re.Match[str]) -> str:
    if match.group(1) is None:
        return match.group(2)
    code = int(match.group(1), 16)
    return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


def _is_nonpositive(value: str) -> bool:
    return _CSS_NUMBER.fullmatch(value) is not None and float(value.rstrip("%")) <= 0


def _is_tight_paragraph(attrib: _Attributes) -> bool:
    """Whether a ``<p>`` has no vertical margins: a Word class, or an inline style saying so."""
    classes = attrib.get("class")
    if classes is not None and any(name.startswith("Mso") for name in classes.split()):
        return True
    style = attrib.get("style")
    if style is None or "margin" not in style.lower():
        return False
    get = _css_declarations(style.lower()).get
    sides = get("margin", "").split()
    top = get("margin-top", sides[0] if sides else "x")
    bottom = get("margin-bottom", sides[2] if len(sides) > 2 else top if sides else "x")
    return bool(_CSS_ZERO.fullmatch(top) and _CSS_ZERO.fullmatch(bottom))


def _is_zero_sized_image(attrib: _Attributes) -> bool:
    return any(
        (size := attrib.get(name)) is not None and _ZERO_SIZE.fullmatch(size) is not None
        for name in ("width", "height")
    )


# --- links ---------------------------------------------------------------------------------


def _shown_url(untrusted_href: str | None, allowed_schemes: Collection[str]) -> str | None:
    """The URL to show for a link, or ``None`` when its scheme is not allowed
    (``policy.links.allowed_schemes``)."""
    if not untrusted_href:
        return None
    href = untrusted_href.strip(_C0_AND_SPACE)
    href = href.replace("\t", "").replace("\n", "").replace("\r", "")
    scheme, colon, rest = href.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme) or scheme.lower() not in allowed_schemes:
        return None
    return scheme.lower() + ":" + _URL_DISGUISE.sub(_percent_encode, rest)


def _percent_encode(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


def _text_names_url(text: str, url: str) -> bool:
    """Whether the link text already shows the URL (so it need not be repeated)."""
    said = _HTML_SPACE.sub(" ", text).strip().lower()
    if not said:
        return False
    target = url.lower()
    scheme, _, rest = target.partition(":")
    bare = rest.removeprefix("//") if scheme != "mailto" else rest
    return said in (target, target.rstrip("/"), bare, bare.rstrip("/"))


def _defang(text: str) -> str:
    text = _TEXT_SCHEME.sub(_defang_scheme, text)
    return _DEFANGED_HOST.sub(_defang_host, text)


def _defang_scheme(match: re.Match[str]) -> str:
    return DEFANGED_SCHEMES[match.group().lower()]


def _defang_host(match: re.Match[str]) -> str:
    return match.group(1) + match.group(2).replace(".", "[.]")


# --- output ------------------------------------------------------------------------------


class _Sink:
    """Accumulates text with browser-like spacing: owed spaces and line breaks are written
    only when more text follows, and each line starts with the current prefix."""

    __slots__ = (
        "_marker", "_marker_at", "_prefixes", "_separator", "_separator_written", "_space",
        "breaks", "first_line", "indent", "lines", "newlines", "parts", "space_before_punctuation",
    )  # fmt: skip

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.breaks = 0  # newlines owed before the next text
        self.newlines = 0  # newlines at the end of the text so far
        self._space = False  # a space owed before the next text on the same line
        self._separator = ""  # written instead of the space, if the next text is on this line
        self._prefixes = [""]  # prefix at each nesting level; the last is current
        self._marker = ""  # a list marker owed to the next line
        self._marker_at = 0
        self.indent = ""  # no-break spaces at the start of a line, owed to the text after them
        self._separator_written = -1  # where in parts the last separator was written
        self.lines = 0  # line breaks written so far
        self.first_line = -1  # the line of the first text since it was last set to -1
        self.space_before_punctuation = True  # False: the owed space yields to punctuation

    def block(self, breaks: int) -> None:
        """Owe ``breaks`` newlines (1: a new line, 2: a blank line) before the next text."""
        if breaks > self.breaks:
            self.breaks = breaks
        self.indent = ""

    def drop_indent(self) -> None:
        """Forget owed indentation (a table cell of no-break spaces is a spacer)."""
        self.indent = ""

    def push_prefix(self, prefix: str) -> None:
        levels = len(self._prefixes)
        self._prefixes.append(self._prefixes[-1] + (prefix if levels <= _MAX_PREFIX_LEVELS else ""))

    def pop_prefix(self) -> None:
        self._prefixes.pop()
        if self._marker_at >= len(self._prefixes):
            self._marker = ""

    def set_marker(self, marker: str) -> None:
        """Show ``marker`` in place of the innermost prefix on the next line."""
        self._marker = marker
        self._marker_at = len(self._prefixes) - 1

    def unseparate(self, start: int) -> None:
        """Turn the separator written at ``parts[start]`` (if any) into a line break."""
        parts = self.parts
        if start < len(parts) and self._separator_written == start:
            parts[start] = "\n" + self._prefixes[-1]

    def separate(self, separator: str) -> None:
        """Write ``separator`` before the next text, unless a new line starts first."""
        if self.parts:
            self._separator = separator

    def space(self) -> None:
        """Collapsible whitespace: one space, if text follows on the same line."""
        self._space = True

    def line_break(self) -> None:
        """``<br>``: end the line; repeated breaks make at most two blank lines."""
        if self.breaks:
            self._flush_breaks()
        if self.newlines < _MAX_BREAK_RUN:
            self._newline()
        self.indent = ""

    def text(self, collapsed: str) -> None:
        """Inline text, whitespace collapsed; spaces at its ends are owed, not written.
        No-break spaces are kept as spaces; at the start of a line they indent it (unless
        nothing but a line end follows them)."""
        stripped = collapsed.strip(" ")
        if not self.space_before_punctuation:
            self.space_before_punctuation = True
            if collapsed[0] in _CLOSING_PUNCTUATION:
                self._space = False
        if collapsed[0] == " ":
            self._space = True
        if not stripped:
            return
        if "\xa0" in stripped:
            if not stripped.strip("\xa0"):  # only no-break spaces
                if self.breaks or self.newlines or not self.parts or self.indent:
                    self.indent += " " * len(stripped)
                else:
                    self._space = True
                return
            stripped = stripped.replace("\xa0", " ")
        self._write(stripped)
        self._space = collapsed[-1] == " "

    def verbatim(self, text: str) -> None:
        """Text whose whitespace and line breaks are kept (``<pre>``, ``<hr>``)."""
        self.indent = ""
        if not text:
            return
        if self._prefixes[-1] or self._marker:
            self._prefixed_lines(text)
            return
        if self.breaks:
            self._flush_breaks()
        if not self.parts:
            text = text.lstrip("\n")
            if not text:
                return
        self.parts.append(text)
        if self.first_line < 0:
            self.first_line = self.lines
        self.lines += text.count("\n")
        lines_end = text.rstrip("\n")
        self.newlines = len(text) - len(lines_end) if lines_end else self.newlines + len(text)
        self._space = False

    def _prefixed_lines(self, text: str) -> None:
        for index, line in enumerate(text.split("\n")):
            if index:
                if self.breaks:
                    self._flush_breaks()
                self._newline()
            if line:
                self._space = False
                self._write(line)

    def _newline(self) -> None:
        parts = self.parts
        if not parts:
            return
        if self.newlines:
            blank = self._prefixes[-1].rstrip(" ")
            if blank:
                parts.append(blank)
        parts.append("\n")
        self.lines += 1
        self.newlines += 1
        self._space = False
        self._separator = ""

    def _flush_breaks(self) -> None:
        if self.parts:
            while self.newlines < self.breaks:
                self._newline()
        self.breaks = 0

    def _write(self, text: str) -> None:
        if self.breaks:
            self._flush_breaks()
        parts = self.parts
        if self.newlines or not parts:
            prefix = self._marked_prefix() if self._marker else self._prefixes[-1]
            if prefix:
                parts.append(prefix)
            if self.indent:
                parts.append(self.indent)
                self.indent = ""
            self.newlines = 0
        elif self._separator:
            self._separator_written = len(parts)
            parts.append(self._separator)
            self._separator = ""
        elif self._space or self.indent:
            parts.append(self.indent or " ")
            self.indent = ""
        parts.append(text)
        self._space = False
        if self.first_line < 0:
            self.first_line = self.lines

    def _marked_prefix(self) -> str:
        at = self._marker_at
        inner = self._prefixes[-1][len(self._prefixes[at]) :]
        prefix = self._prefixes[at - 1] + self._marker + inner
        self._marker = ""
        return prefix

    def value(self) -> str:
        """The text so far, without trailing spaces and leading or trailing newlines."""
        text = "".join(self.parts)
        if " \n" in text:  # (split and strip: a regex would take quadratic time on long runs)
            text = "\n".join(line.rstrip(" ") for line in text.split("\n"))
        return text.rstrip(" ").strip("\n")


@dataclass(slots=True)
class _Row:
    shown: bool = False  # whether a cell of the row has shown something yet


@dataclass(slots=True)
class _List:
    ordered: bool
    number: int


_Closer = Callable[[], None]


class _Converter:
    """The parser's target: turns start tags, end tags and text, as libxml2 reads them, into
    text. All state is in stacks; nothing recurses, whatever the nesting.

    Per element, what to do at its end is decided at its start and kept on ``ends``: nothing
    (``None``), a number of newlines owed after a block, or a function to call. These methods
    run for every element and text run, so the common cases are written out in them."""

    def __init__(
        self,
        links: LinkMode,
        allowed_schemes: Collection[str],
        sheets: Mapping[int, str] | None,
    ) -> None:
        self.links = links
        self.allowed_schemes = allowed_schemes
        self.sink = _Sink()
        self.ends: list[int | _Closer | None] = []
        self.lists: list[_List] = []
        self.rows: list[_Row] = []
        self.pre = 0
        self.tables = 0
        self.hidden = 0  # depth inside a dropped or hidden element: its events are ignored
        self.veil = 0  # inherited hiding bits in force (_INVISIBLE, _ZERO_FONT, _CLEAR_TEXT)
        self.veils: list[tuple[int, int]] = []  # (depth of ends, veil to restore) per change
        self.images = 0  # images shown so far
        self.pending: list[str] = []  # text read since the last tag (libxml2 sends it in pieces)
        self.opened = ""  # the tag just opened, when no text has followed it yet
        self.styles: dict[str, _StyleEffect] = {}  # inline style -> what it does
        self.paragraphs: dict[tuple[str | None, str | None], bool] = {}  # -> no margins
        # Style-sheet declarations per element, by the place of its start event (None: the
        # sheets could not be applied, and nothing is hidden by CSS).
        self.sheets = sheets
        self.css = sheets is not None
        self.position = -1  # the place of the element being started

    def start(self, tag: str, attrib: _Attributes) -> None:
        self.position += 1
        if self.hidden:
            self.hidden += 1
            return
        if self.pending:
            self._flush_text()
        # lxml passes a real dict when there are attributes, else a mapping whose get() is
        # written in Python and slow: use an empty dict instead.
        attrib = attrib or _NO_ATTRIBUTES
        if tag in _DROPPED:
            self.hidden = 1
            return
        sheet = self.sheets.get(self.position) if self.sheets else None
        if (attrib or sheet or tag == "dialog") and self.css and self._hides(tag, attrib, sheet):
            self.hidden = 1
            return
        kind = _KINDS.get(tag)
        if kind is None:
            self.ends.append(None)
        elif isinstance(kind, int):  # a plain block: owe its newlines before and after
            sink = self.sink  # (what sink.block does, written out: this runs per element)
            if kind > sink.breaks:
                sink.breaks = kind
            sink.indent = ""
            self.ends.append(kind)
        else:
            self.ends.append(kind(self, tag, attrib))
        self.opened = tag

    def end(self, _tag: str) -> None:
        if self.hidden:
            self.hidden -= 1
            return
        if self.pending:
            self._flush_text()
        self.opened = ""
        if not self.ends:  # (libxml2 balances its events; this only guards the promise)
            return
        end = self.ends.pop()
        if self.veils and self.veils[-1][0] == len(self.ends):
            self.veil = self.veils.pop()[1]
        if isinstance(end, int):
            sink = self.sink  # (sink.block, written out)
            if end > sink.breaks:
                sink.breaks = end
            sink.indent = ""
        elif end is not None:
            end()

    def data(self, data: str) -> None:
        if self.hidden:
            return
        if data and not self.veil & _HIDES_TEXT:
            self.pending.append(data)

    def close(self) -> None:
        """The end of the document (events of a broken one may stop earlier)."""

    def finish(self) -> str:
        """The text: cleaned up, defanged if asked, ending in a newline (or empty)."""
        if self.pending:
            self._flush_text()
        text = self.sink.value()
        if self.links is LinkMode.DEFANG:
            text = _defang(text)
        return text + "\n" if text else ""

    def _flush_text(self) -> None:
        pending = self.pending
        text = pending[0] if len(pending) == 1 else "".join(pending)
        pending.clear()
        if self.pre or text.strip(_HTML_WHITESPACE):
            self._text(text, self.opened)
        else:
            self.sink.space()
        self.opened = ""

    def _hides(self, tag: str, attrib: _Attributes, sheet: str | None) -> bool:
        """Whether the element is hidden for good; records the inherited hiding it sets or
        clears (undone at its end). ``sheet``: the style sheets' declarations for it, which its
        inline style follows in the cascade."""
        style = attrib.get("style")
        if sheet:
            style = sheet if style is None else f"{sheet};{style}"
        effect = _NO_EFFECT
        if style is not None:
            # Mail templates repeat a few styles on every element: decide each one once.
            cached = self.styles.get(style)
            if cached is None:
                cached = self.styles[style] = _style_effect(style)
            effect = cached
            if effect.hides:
                return True
        if attrib.get("hidden") is not None and not _shows_despite_hidden(style):
            return True
        if tag == "dialog" and attrib.get("open") is None:
            return True
        veil = (self.veil & ~effect.clears) | effect.sets
        if tag == "font" and attrib.get("size"):  # an absolute size, never zero
            veil &= ~_ZERO_FONT
        if veil != self.veil:
            self.veils.append((len(self.ends), self.veil))
            self.veil = veil
        return False

    def _text(self, text: str, tag: str) -> None:
        """Text that is not only collapsible whitespace, or any text in ``<pre>``."""
        if self.pre:
            if tag in _PRE and text[0] == "\n":
                text = text[1:]  # as in browsers, a newline right after <pre> is not shown
            self.sink.verbatim(_printable(text).replace("\xa0", " "))
            return
        if "\n" in text:
            text = _CJK_SEGMENT_BREAK.sub("", text)
            text = _HTML_SPACE.sub(" ", text)
        elif "  " in text or "\t" in text or "\r" in text or "\f" in text:
            # (substring tests run at memchr speed; most runs, Japanese ones above all,
            # have nothing to collapse and skip the regular expression)
            text = _HTML_SPACE.sub(" ", text)
        if not text.isprintable():  # rare: controls, no-break spaces, format characters
            # No-break spaces stay (collapsing is over; the sink writes them as spaces).
            text = _HTML_SPACE.sub(" ", _printable(text))
        if text:
            self.sink.text(text)

    # Blocks with a prefix or their own whitespace rules.

    def _open_blockquote(self, _tag: str, _attrib: _Attributes) -> _Closer:
        return self._open_prefixed(_QUOTE, 2)

    def _open_dd(self, _tag: str, _attrib: _Attributes) -> _Closer:
        return self._open_prefixed(_DD_INDENT, 1)

    def _open_prefixed(self, prefix: str, breaks: int) -> _Closer:
        sink = self.sink
        sink.block(breaks)
        sink.push_prefix(prefix)

        def close() -> None:
            sink.pop_prefix()
            sink.block(breaks)

        return close

    def _open_paragraph(self, _tag: str, attrib: _Attributes) -> _Closer | int:
        """A paragraph stands apart by a blank line, unless it has no vertical margins (Word and
        Outlook write every line as ``<p class=MsoNormal>``, margins zeroed in a style sheet):
        then it is one line, and an empty one is an empty line, as a browser shows it."""
        sink = self.sink
        key = (attrib.get("class"), attrib.get("style"))
        tight = self.paragraphs.get(key)
        if tight is None:
            tight = self.paragraphs[key] = _is_tight_paragraph(attrib)
        if not tight:
            sink.block(2)
            return 2
        sink.block(1)
        start = len(sink.parts)

        def close() -> None:
            if len(sink.parts) == start:
                sink.line_break()
            sink.block(1)

        return close

    def _open_pre(self, _tag: str, _attrib: _Attributes) -> _Closer:
        self.sink.block(2)
        self.pre += 1
        return self._close_pre

    def _close_pre(self) -> None:
        self.pre -= 1
        self.sink.block(2)

    def _open_hr(self, _tag: str, _attrib: _Attributes) -> int:
        self.sink.block(1)
        if not self.veil & _INVISIBLE:
            self.sink.verbatim(_HR)
        return 1

    def _open_br(self, _tag: str, _attrib: _Attributes) -> None:
        self.sink.line_break()

    def _open_rt(self, _tag: str, _attrib: _Attributes) -> _Closer | None:
        if self.veil & _HIDES_TEXT:
            return None
        self.sink.text("（")
        return self._close_rt

    def _close_rt(self) -> None:
        self.sink.text("）")

    # Lists.

    def _open_list(self, tag: str, attrib: _Attributes) -> _Closer:
        breaks = 1 if self.lists else 2
        self.sink.block(breaks)
        ordered = tag == "ol"
        self.lists.append(_List(ordered, _list_start(attrib.get("start")) if ordered else 1))

        def close() -> None:
            self.lists.pop()
            self.sink.block(breaks)

        return close

    def _open_item(self, _tag: str, _attrib: _Attributes) -> _Closer:
        sink = self.sink
        sink.block(1)
        current = self.lists[-1] if self.lists else None
        if current is not None and current.ordered:
            marker = f"{current.number}. "
            current.number += 1
            indent = " " * len(marker)
        else:
            marker, indent = _BULLET, _BULLET_INDENT
        sink.push_prefix(indent)
        sink.set_marker(marker)
        return self._close_item

    def _close_item(self) -> None:
        self.sink.pop_prefix()
        self.sink.block(1)

    # Links and images.

    def _open_link(self, _tag: str, attrib: _Attributes) -> _Closer | None:
        if self.links is LinkMode.DROP:
            return None
        url = _shown_url(attrib.get("href"), self.allowed_schemes)
        if url is None or self.veil & _INVISIBLE:
            return None
        sink = self.sink
        start = len(sink.parts)
        # Under hidden text only what shows (an image, or its alt) earns the link its URL.
        veiled = bool(self.veil & _HIDES_TEXT)
        images = self.images

        def close() -> None:
            if len(sink.parts) > start or not veiled or self.images > images:
                self._show_url(url, sink.parts[start:])

        return close

    def _show_url(self, url: str, link_parts: list[str]) -> None:
        if link_parts and len(link_parts) <= _MAX_LINK_PARTS:
            link_text = "".join(link_parts)
            if len(link_text) <= _MAX_LINK_TEXT and _text_names_url(link_text, url):
                return
        # Spaces around the URL are owed, not written: they never start or end a line, and
        # the one after it gives way to closing punctuation ("詳細 <URL>。", "Start <URL>.").
        self.sink.text(f" <{url}> " if link_parts else f"<{url}> ")
        self.sink.space_before_punctuation = False

    def _open_img(self, _tag: str, attrib: _Attributes) -> None:
        if _is_zero_sized_image(attrib) or self.veil & _INVISIBLE:
            return
        self.images += 1
        alt = attrib.get("alt")
        if alt:
            self._label(alt)

    def _open_input(self, _tag: str, attrib: _Attributes) -> None:
        """A button shows its label (``[送信]``); other controls show nothing."""
        kind = (attrib.get("type") or "").strip().lower()
        if kind in _BUTTON_INPUTS and not self.veil & _INVISIBLE:
            self._label(attrib.get("alt" if kind == "image" else "value") or "")

    def _label(self, untrusted_label: str) -> None:
        label = _HTML_SPACE.sub(" ", _printable(untrusted_label).replace("\xa0", " ")).strip()
        if label:
            self.sink.text(f"[{label}]")

    # Tables: a row is a line, its cells joined by " | " (a separator is written only between
    # cells that show something, and only when they share a line: layout cells that hold
    # paragraphs stay blocks of their own).

    def _open_table(self, _tag: str, _attrib: _Attributes) -> _Closer:
        breaks = 1 if self.tables else 2
        self.sink.block(breaks)
        self.tables += 1

        def close() -> None:
            self.tables -= 1
            self.sink.block(breaks)

        return close

    def _open_row(self, _tag: str, _attrib: _Attributes) -> _Closer:
        self.sink.block(1)
        self.rows.append(_Row())
        return self._close_row

    def _close_row(self) -> None:
        self.rows.pop()
        self.sink.block(1)

    def _open_cell(self, _tag: str, _attrib: _Attributes) -> _Closer | int:
        if not self.rows:
            self.sink.block(1)  # a cell outside any row
            return 1
        row = self.rows[-1]
        sink = self.sink
        sink.drop_indent()
        if row.shown:
            sink.separate(_CELL_SEPARATOR)
        start = len(sink.parts)
        outer_first_line, sink.first_line = sink.first_line, -1

        def close() -> None:
            first_line = sink.first_line
            sink.first_line = outer_first_line if outer_first_line >= 0 else first_line
            if len(sink.parts) > start:
                row.shown = True
                if 0 <= first_line < sink.lines:
                    # A cell of several lines is a block of its own, apart from its neighbours.
                    sink.unseparate(start)
                    sink.block(1)

        return close


_Opener = Callable[[_Converter, str, _Attributes], "_Closer | int | None"]

# What an element does besides showing its text: a number of newlines around a plain block, or
# the method that opens it. Elements not listed are inline.
_KINDS: Final[dict[str, int | _Opener]] = {
    **_BLOCKS,
    "a": _Converter._open_link,
    "blockquote": _Converter._open_blockquote,
    "br": _Converter._open_br,
    "dd": _Converter._open_dd,
    "hr": _Converter._open_hr,
    "img": _Converter._open_img,
    "input": _Converter._open_input,
    "li": _Converter._open_item,
    "menu": _Converter._open_list,
    "ol": _Converter._open_list,
    "p": _Converter._open_paragraph,
    "rt": _Converter._open_rt,
    "table": _Converter._open_table,
    "td": _Converter._open_cell,
    "th": _Converter._open_cell,
    "tr": _Converter._open_row,
    "ul": _Converter._open_list,
    **dict.fromkeys(_PRE, _Converter._open_pre),
}


def _printable(text: str) -> str:
    """``text`` as :func:`sanitizers.safetext.body_text` keeps it (the controls that are
    whitespace to HTML become spaces)."""
    return body_text(text.translate(_HTML_SPACE_CONTROLS))


def _list_start(untrusted_start: str | None) -> int:
    if untrusted_start is None:
        return 1
    try:
        number = int(untrusted_start.strip(), 10)
    except ValueError:
        return 1
    return number if abs(number) <= _MAX_OL_START else 1
