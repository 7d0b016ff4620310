"""A document's ``<style>`` sheets applied to its whole element tree, for html_text's hiding.

Threat model: the style sheets come from the Internet with the HTML. They decide what a
reader's mail program shows, so the text must follow them: phishing hides instructions for
filters with a class rule, and responsive newsletters hide and show whole columns from their
sheets. A hostile sheet may also try to stall the matching (many rules, deep trees, long
sibling lists) or crash the parser (deep nesting).

What is applied, as CSS defines it:

* every ``<style>`` of the document (in ``<head>`` or ``<body>``, before or after the elements
  it styles) but those inside ``<template>``, with a ``media`` attribute that applies, and of
  no other ``type`` than ``text/css``; ``<link>``\\ ed and ``@import``\\ ed sheets are never
  fetched;
* rules at the top level and inside ``@media`` blocks that apply (nested too);
* selectors of every kind cssselect (BSD) parses and translates to XPath: descendant, child
  and sibling combinators, attributes, structural pseudo-classes, ``:not()``. Dynamic
  pseudo-classes (``:hover``, ``:focus``…) match nothing, as for a reader who does not move
  the mouse; rules for pseudo-elements (``::before``) style no element and are left out; a
  rule whose selector list does not parse is dropped whole, as in browsers;
* the cascade: rules in order of specificity, then of appearance; an element's inline
  ``style`` after them; ``!important`` declarations above all normal ones (the inline ones
  above the sheets'). :func:`cascaded_sheets` gives each element its sheet declarations in
  that order; html_text appends the inline style and reads the result like an inline style.

Decisions a browser makes from things a mail has not got:

* ``@media`` types ``all`` and ``screen`` apply, ``print``, ``speech`` and unknown types do
  not; width and height conditions are decided for the window of a desktop mail reader,
  ``_VIEWPORT_WIDTH_PX`` × ``_VIEWPORT_HEIGHT_PX`` (the LGWAN side reads mail on office PCs),
  so a newsletter's mobile-only rules (``max-width:480px``) do not apply and its desktop
  layout does; ``prefers-color-scheme: light``, ``orientation: landscape``, colour screens;
  any other feature, ``@supports``, ``@layer`` and other at-rules are not applied;
* class and id names, and attribute values, match without regard to ASCII case (HTML mail is
  mostly in quirks mode, where class and id selectors ignore case).

Bounded: at most ``_MAX_STYLE_CHARS`` of sheets and ``_MAX_STYLE_SELECTORS`` selectors (of
rules that can change what is shown) per document, and an estimate of the matching work
(XPath node visits: elements, plus ancestor and descendant pairs per descendant step, plus
pairs of siblings per sibling step) at most ``_MAX_STYLE_MATCH_WORK``. Beyond any limit the
sheets cannot be applied faithfully, and the fail-safe is to show text rather than hide it:
:func:`cascaded_sheets` returns ``None`` and html_text then hides nothing by CSS in that
document. The tree matched is built from the same parser events html_text reads (so the
n-th element is the same element in both), with at most ``_MAX_MATCHED_ATTRIBUTES``
attributes per element (a tree's attributes cost quadratic time). Nothing recurses over the
input; the libraries' own recursion (tinycss2 serialising deep nesting, cssselect deep
``:not()``) ends in the fail-safe.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, cast

import tinycss2
import tinycss2.ast
from cssselect import HTMLTranslator, SelectorError, parse
from lxml import etree

__all__ = ["cascaded_sheets"]

# --- limits ----------------------------------------------------------------------------------

_MAX_STYLE_CHARS: Final = 256 * 1024  # of <style> text per document
_MAX_STYLE_SELECTORS: Final = 2000  # selectors of rules that can change what is shown
_MAX_STYLE_MATCH_WORK: Final = 4_000_000  # estimated XPath node visits per document
_MAX_MATCHED_ATTRIBUTES: Final = 64  # per element; selectors do not see the ones after
_MAX_MEDIA_NESTING: Final = 8  # @media inside @media deeper than this is not applied
_SELECTOR_CACHE: Final = 4096  # selector lists whose translation is kept (senders repeat sheets)
_SHEET_CACHE: Final = 128  # sheets whose rules are kept, each of at most _CACHED_SHEET_CHARS
_CACHED_SHEET_CHARS: Final = 32 * 1024

# The window a desktop mail reader gives a message, for @media width and height conditions.
_VIEWPORT_WIDTH_PX: Final = 1024
_VIEWPORT_HEIGHT_PX: Final = 768

# --- what can matter -------------------------------------------------------------------------

# The text of every <style> element, and more (a `<style` inside a comment or an attribute):
# the quick test that no sheet can change what is shown looks at a superset of the sheets.
_STYLE_BLOCK: Final = re.compile(r"<style\b[^>]*>(.*?)(?:</style|$)", re.IGNORECASE | re.DOTALL)
_CSS_COMMENT: Final = re.compile(r"/\*.*?(?:\*/|$)", re.DOTALL)
_ZERO: Final = r"[+-]?(?:0+\.?0*|\.0+)(?![\d.])"
# Declarations that hide, or show again what something else hid (escapes can spell any).
_MAY_MATTER: Final = re.compile(
    r"\\|display\s*:|visibility\s*:|mso-hide\s*:|opacity\s*:|font(?:-size)?\s*:"
    r"|overflow(?:-[xy])?\s*:\s*(?:hidden|clip)|(?<![\w-])color\s*:"
    rf"|(?<![\w-])(?:max-)?(?:height|width)\s*:\s*{_ZERO}"
)
# The properties html_text reads to decide visibility; other declarations are left out.
_VISIBILITY_PROPERTIES: Final = frozenset(
    {
        "display", "visibility", "mso-hide", "opacity", "overflow", "overflow-x", "overflow-y",
        "height", "max-height", "width", "max-width", "font-size", "font", "color",
    }
)  # fmt: skip
_SIZES: Final = frozenset({"height", "max-height", "width", "max-width"})
# Sizes matter only with clipping and colours only with transparent text, somewhere in the
# sheets or inline styles (lower-cased; escapes could spell either).
_CLIPS: Final = re.compile(r"overflow|\\")
_MAY_BE_TRANSPARENT: Final = re.compile(r"transparent|(?:rgb|hsl)a?\(|\\")
_STYLE_TAG: Final = re.compile("<style", re.IGNORECASE)
_ATTRIBUTE_SELECTOR: Final = re.compile(r"\[\s*(?:[a-z*]*\|)?([a-z_][a-z0-9_.:-]*)")
# Attributes read without being named in a selector: class and id, the pseudo-classes', and
# a <style>'s own.
_ALWAYS_MATCHED_ATTRIBUTES: Final = frozenset(
    {"class", "id", "href", "checked", "selected", "disabled", "type", "lang", "hidden", "media"}
)
# Tags libxml2 gives that are valid XML names (the others are checked).
_HTML_TAGS: Final = frozenset(
    {
        "html", "head", "body", "div", "span", "p", "a", "table", "tbody", "thead", "tr", "td",
        "th", "img", "br", "b", "i", "u", "font", "center", "ul", "ol", "li", "h1", "h2", "h3",
        "style", "meta", "title", "strong", "em", "hr", "blockquote", "pre",
    }
)  # fmt: skip

_XML_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNNAMED: Final = "mukaika-unnamed"  # the tag of an element whose name XML refuses
_NAME_CACHE: Final = 1024
_CSS_TYPES: Final = frozenset({"", "text/css"})
_TRANSLATOR: Final = HTMLTranslator()

# Cost of one XPath step over the tree, by what the translated selector contains.
_DESCENDANT_STEPS: Final = re.compile(r"/descendant::|string-length\(")
_SIBLING_STEPS: Final = re.compile(r"sibling::")
_CHILD_STEPS: Final = re.compile(r"/\*")


@dataclass(frozen=True, slots=True)
class _Selector:
    """One selector of a rule, ready to match: its XPath, CSS specificity and cost factors."""

    xpath: str
    specificity: tuple[int, int, int]
    descendant_steps: int
    sibling_steps: int
    child_steps: int


class _Recorder:
    """Parser target that builds the tree to match from html_text's own parser events, with
    the attributes selectors can read (``None``: all), and measures the tree's shape for the
    work estimate. Inline styles are kept to tell which properties can matter."""

    def __init__(self, attributes: frozenset[str] | None, texts: bool) -> None:
        self.attributes = attributes
        self.texts = texts  # whether text matters (``:empty``), or only style sheets
        self.builder = etree.TreeBuilder()
        # (TreeBuilder.start returns the element it made; lxml-stubs say None.)
        self.open_element = cast(
            "Callable[[str, dict[str, str]], etree._Element]", self.builder.start
        )
        self.open_element("mukaika-document", {})
        self.elements: list[etree._Element] = []
        self.tags: list[str] = []  # the open elements' tags
        self.children = [0]  # children so far of the document and each open element
        self.depth_sum = 0  # pairs of (ancestor, descendant)
        self.sibling_pairs = 0  # pairs of (earlier, later) siblings
        self.inline_styles: list[str] = []

    def start(self, tag: str, attrib: Mapping[str, str]) -> None:
        children = self.children
        count = children[-1] = children[-1] + 1
        self.sibling_pairs += count - 1
        self.depth_sum += len(children) - 1
        children.append(0)
        if tag not in _HTML_TAGS and not _is_xml_name(tag):
            tag = _UNNAMED
        self.tags.append(tag)
        matched = {}
        if attrib:
            style = attrib.get("style")
            if style is not None:
                self.inline_styles.append(style)
            matched = _matched_attributes(attrib, self.attributes)
        self.elements.append(self.open_element(tag, matched))

    def end(self, _tag: str) -> None:
        if self.tags:
            self.children.pop()
            self.builder.end(self.tags.pop())

    def data(self, data: str) -> None:
        """A style sheet's text as it is (but for characters XML refuses); other text only
        as a mark that the element is not empty, when a selector asks (``:empty``)."""
        if self.tags and self.tags[-1] == "style":
            self.builder.data(_NOT_XML.sub("", data))
        elif self.texts and data:
            self.builder.data("x")

    def close(self) -> None:
        """(The tree is taken with :meth:`root`, also after a parse error.)"""

    def root(self) -> etree._Element:
        while self.tags:  # (libxml2 balances its events; this keeps the promise)
            self.end("")
        self.builder.end("mukaika-document")
        return self.builder.close()


def _matched_attributes(attrib: Mapping[str, str], wanted: frozenset[str] | None) -> dict[str, str]:
    """The attributes selectors see (``wanted``, or the first ``_MAX_MATCHED_ATTRIBUTES``),
    values lower-cased (case-insensitive matching)."""
    if wanted is not None:
        return {name: value.lower() for name, value in attrib.items() if name in wanted}
    items = list(attrib.items())[:_MAX_MATCHED_ATTRIBUTES]
    return {name: value.lower() for name, value in items if _is_xml_name(name)}


@lru_cache(maxsize=_NAME_CACHE)
def _is_xml_name(untrusted_name: str) -> bool:
    """Whether a tag or attribute name can name a node of the matched tree (HTML allows
    ``o:p`` and ``xmlns:v``, which an XML tree refuses; such elements are matched under
    another name, such attributes not at all)."""
    return _XML_NAME.fullmatch(untrusted_name) is not None


def _wanted_attributes(css: str) -> frozenset[str] | None:
    """The attributes the selectors of ``css`` (lower-case, a superset of the sheets) can
    read: those named in ``[...]`` and ``_ALWAYS_MATCHED_ATTRIBUTES``; None (all, up to
    ``_MAX_MATCHED_ATTRIBUTES``) when escapes could spell more."""
    if "\\" in css:
        return None
    return _ALWAYS_MATCHED_ATTRIBUTES | frozenset(_ATTRIBUTE_SELECTOR.findall(css))


def cascaded_sheets(untrusted_html: str, untrusted_utf8: bytes) -> dict[int, str] | None:
    """Per element (by its place in the parser's start events, from 0), the declarations of
    the document's style sheets that bear on visibility, in cascade order, as one
    ``;``-separated lower-case string; elements no rule matches are left out. ``{}`` when no
    sheet can change what is shown; ``None`` when the sheets cannot be applied within the
    limits (html_text then hides nothing by CSS: the fail-safe shows text)."""
    if _STYLE_TAG.search(untrusted_html) is None:
        return {}
    blocks = [_CSS_COMMENT.sub("", block.lower()) for block in _STYLE_BLOCK.findall(untrusted_html)]
    if not any(_MAY_MATTER.search(block) for block in blocks):
        return {}
    css = "".join(blocks)
    recorder = _Recorder(_wanted_attributes(css), ":empty" in css or "\\" in css)
    parser = etree.HTMLParser(
        encoding="utf-8", target=cast("etree.ParserTarget", recorder), no_network=True
    )
    try:
        parser.feed(untrusted_utf8)
        parser.close()
    except etree.LxmlError:  # what was read so far stands, as in html_text
        pass
    root = recorder.root()
    try:
        return _cascade(root, recorder)
    except RecursionError:  # deeply nested CSS in a library: cannot be applied
        return None


def _cascade(root: etree._Element, recorder: _Recorder) -> dict[int, str] | None:
    sheets = _sheets(recorder.elements)
    if sheets is None:
        return None
    styles = "\n".join([*sheets, *recorder.inline_styles]).lower()
    wanted = set(_VISIBILITY_PROPERTIES)
    if not _CLIPS.search(styles):
        wanted -= _SIZES
    if not _MAY_BE_TRANSPARENT.search(styles):
        wanted.discard("color")
    properties = frozenset(wanted)
    rules: list[tuple[str, str]] = []
    for sheet in sheets:  # (each sheet on its own: an unclosed block ends with its sheet)
        found = _cached_rules(sheet, properties)
        if found is None or len(rules) + len(found) > _MAX_STYLE_SELECTORS:
            return None
        rules += found
    elements = len(recorder.elements)
    selectors: list[tuple[_Selector, int, str]] = []
    work = 0
    for order, (prelude, declarations) in enumerate(rules):
        for selector in _selectors(prelude):
            selectors.append((selector, order, declarations))
            work += (
                elements * (1 + selector.child_steps)
                + selector.descendant_steps * recorder.depth_sum
                + selector.sibling_steps * recorder.sibling_pairs
            )
        if len(selectors) > _MAX_STYLE_SELECTORS or work > _MAX_STYLE_MATCH_WORK:
            return None
    if not selectors:
        return {}
    place = {element: index for index, element in enumerate(recorder.elements)}
    matched: dict[int, list[tuple[tuple[int, int, int], int, str]]] = {}
    for selector, order, declarations in selectors:
        for element in cast("list[etree._Element]", root.xpath(selector.xpath)):
            index = place.get(element)
            if index is not None:
                matched.setdefault(index, []).append((selector.specificity, order, declarations))
    return {
        index: ";".join(declarations for _, _, declarations in sorted(found))
        for index, found in matched.items()
    }


def _sheets(elements: list[etree._Element]) -> list[str] | None:
    """The text of the document's style sheets that apply, in document order; None beyond
    ``_MAX_STYLE_CHARS``."""
    sheets = []
    chars = 0
    for element in elements:
        if element.tag != "style" or not element.text:
            continue
        kind = (element.get("type") or "").strip()
        media = element.get("media")
        if kind not in _CSS_TYPES or (media is not None and not _media_applies(media)):
            continue
        if next(element.iterancestors("template"), None) is not None:
            continue
        chars += len(element.text)
        if chars > _MAX_STYLE_CHARS:
            return None
        sheets.append(element.text)
    return sheets


def _cached_rules(css: str, properties: frozenset[str]) -> tuple[tuple[str, str], ...] | None:
    """:func:`_rules`, remembered for sheets up to ``_CACHED_SHEET_CHARS`` (mail from one
    sender repeats its sheets)."""
    if len(css) > _CACHED_SHEET_CHARS:
        return _rules(css, properties)
    return _remembered_rules(css, properties)


@lru_cache(maxsize=_SHEET_CACHE)
def _remembered_rules(css: str, properties: frozenset[str]) -> tuple[tuple[str, str], ...] | None:
    return _rules(css, properties)


def _rules(css: str, properties: frozenset[str]) -> tuple[tuple[str, str], ...] | None:
    """(selector list, declarations) of each rule that applies and sets one of
    ``properties``, in the order they appear (a ``@media`` block's rules where the block
    stands); None when there are more than ``_MAX_STYLE_SELECTORS``."""
    rules: list[tuple[str, str]] = []
    stack = [iter(tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True))]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
        elif isinstance(node, tinycss2.ast.QualifiedRule):
            declarations = _declarations(node.content, properties)
            if declarations:
                rules.append((tinycss2.serialize(node.prelude), declarations))
                if len(rules) > _MAX_STYLE_SELECTORS:
                    return None
        elif (
            isinstance(node, tinycss2.ast.AtRule)
            and node.lower_at_keyword == "media"
            and node.content is not None
            and len(stack) <= _MAX_MEDIA_NESTING
            and _media_applies(tinycss2.serialize(node.prelude))
        ):
            nested = tinycss2.parse_rule_list(
                node.content, skip_comments=True, skip_whitespace=True
            )
            stack.append(iter(nested))
    return tuple(rules)


def _declarations(content: list[tinycss2.ast.Node] | None, properties: frozenset[str]) -> str:
    """The declarations of a rule among ``properties``, as lower-case CSS text."""
    if not content:
        return ""
    found = []
    for node in tinycss2.parse_declaration_list(content, skip_comments=True, skip_whitespace=True):
        if isinstance(node, tinycss2.ast.Declaration) and node.lower_name in properties:
            value = tinycss2.serialize(node.value).strip().lower()
            found.append(f"{node.lower_name}:{value}{' !important' if node.important else ''}")
    return ";".join(found)


# --- @media -----------------------------------------------------------------------------------

_MEDIA_QUERY: Final = re.compile(r"(?:(not|only)\s+)?([a-z-]+)?((?:\s*(?:\band\b)?\s*\([^()]*\))*)")
_MEDIA_CONDITION: Final = re.compile(r"\(([^()]*)\)")
_MEDIA_TYPES: Final = {"all": True, "screen": True}
_LENGTH: Final = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(px|em|rem|pt|pc|in|cm|mm|q)?")
_PX_PER_UNIT: Final = {
    None: 1.0, "px": 1.0, "em": 16.0, "rem": 16.0, "pt": 4 / 3, "pc": 16.0, "in": 96.0,
    "cm": 96 / 2.54, "mm": 9.6 / 2.54, "q": 2.4 / 2.54,
}  # fmt: skip
_FIXED_FEATURES: Final = {
    "prefers-color-scheme": "light",
    "orientation": "landscape",
    "scan": "progressive",
    "pointer": "fine",
    "any-pointer": "fine",
    "hover": "hover",
    "any-hover": "hover",
    "prefers-reduced-motion": "no-preference",
}
_TRUE_FEATURES: Final = frozenset({"color", "hover", "any-hover", "pointer", "any-pointer"})
_VIEWPORT: Final = {
    "width": float(_VIEWPORT_WIDTH_PX),
    "device-width": float(_VIEWPORT_WIDTH_PX),
    "height": float(_VIEWPORT_HEIGHT_PX),
    "device-height": float(_VIEWPORT_HEIGHT_PX),
}
_RANGE: Final = re.compile(
    r"\s*(width|height|device-width|device-height)\s*(<=|>=|<|>|=)\s*(\S+)\s*"
)


def _media_applies(untrusted_media: str) -> bool:
    """Whether a media query list applies to a desktop mail reader's screen (see the module
    docstring); a query it cannot read does not apply."""
    media = untrusted_media.lower().strip()
    if not media:
        return True
    return any(_query_applies(query.strip()) for query in media.split(","))


def _query_applies(query: str) -> bool:
    match = _MEDIA_QUERY.fullmatch(query)
    if match is None:
        return False
    modifier, media_type, conditions = match.groups()
    if media_type is None and not conditions:
        return False
    applies = _MEDIA_TYPES.get(media_type or "all", False) and all(
        _feature_applies(condition) for condition in _MEDIA_CONDITION.findall(conditions)
    )
    return not applies if modifier == "not" else applies


def _feature_applies(condition: str) -> bool:
    name, colon, value = (part.strip() for part in condition.partition(":"))
    if not colon:
        ranged = _RANGE.fullmatch(condition)
        if ranged is None:
            return name in _TRUE_FEATURES
        feature, operator, length = ranged.groups()
        return _compare(_VIEWPORT[feature], operator, _pixels(length))
    if name in _FIXED_FEATURES:
        return value == _FIXED_FEATURES[name]
    for prefix, operator in (("min-", ">="), ("max-", "<="), ("", "=")):
        feature = name.removeprefix(prefix) if name.startswith(prefix) else ""
        if feature in _VIEWPORT:
            return _compare(_VIEWPORT[feature], operator, _pixels(value))
    return False


def _pixels(untrusted_length: str) -> float | None:
    match = _LENGTH.fullmatch(untrusted_length.strip())
    if match is None:
        return None
    return float(match.group(1)) * _PX_PER_UNIT[match.group(2)]


def _compare(size: float, operator: str, pixels: float | None) -> bool:
    if pixels is None:
        return False
    if operator == "<=":
        return size <= pixels
    if operator == ">=":
        return size >= pixels
    if operator == "<":
        return size < pixels
    if operator == ">":
        return size > pixels
    return size == pixels


# --- selectors --------------------------------------------------------------------------------


@lru_cache(maxsize=_SELECTOR_CACHE)
def _selectors(untrusted_prelude: str) -> tuple[_Selector, ...]:
    """The selectors of a rule's selector list that style elements, translated; none when the
    list does not parse (the rule is dropped, as browsers drop it)."""
    try:
        parsed = parse(untrusted_prelude.lower())  # (the tree's values are lower-case too)
        found = []
        for selector in parsed:
            if selector.pseudo_element is not None:
                continue
            xpath = _TRANSLATOR.selector_to_xpath(selector)
            found.append(
                _Selector(
                    xpath,
                    selector.specificity(),
                    len(_DESCENDANT_STEPS.findall(xpath)),
                    len(_SIBLING_STEPS.findall(xpath)),
                    len(_CHILD_STEPS.findall(xpath)),
                )
            )
    except SelectorError:
        return ()
    return tuple(found)
