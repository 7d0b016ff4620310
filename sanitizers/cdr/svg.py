"""SVG drawings: rebuilt from an allowlist of drawing elements, without script or reach-outs.

Threat model: an SVG file is XML that a browser (or a mail client's viewer) renders as a
document: it can run script (``<script>``, ``onload=`` and every other ``on*`` handler,
``javascript:`` links, animations that set ``href`` to one), embed HTML (``foreignObject``),
fetch from outside (``<image href="http://…">``, ``<use href="other.svg#x">``, CSS
``url(…)`` and ``@import``, an ``xml-stylesheet`` instruction), and attack the XML reader
(entity expansion, external entities, a DTD).

What is done: the file is parsed with lxml without entities, DTD loading or network; a DTD
with an internal subset (where entities are declared) removes the file (``malformed``), a
plain DOCTYPE line is dropped. The drawing is rebuilt: only elements of the SVG namespace in
:data:`ELEMENTS` are kept (``script`` → ``javascript``, ``foreignObject`` →
``foreign_object``, anything else → ``unknown_part``; other namespaces' editor data, such as
Inkscape's, goes silently, ``metadata`` as ``metadata``), only attributes without a namespace
or in the XML and XLink namespaces; ``on*`` handlers go (``event_handler``); an ``href`` that
is not a fragment of this file (``#id``) goes: on a link the link goes and its content stays
(``hyperlink``), on ``<image>`` a PNG or JPEG ``data:`` URL is re-encoded like an image
attachment and anything else removes the element (``external_relationship``), on ``<use>``
and the rest it removes the element (``external_relationship``); an animation that targets an
``href`` or a handler goes (``event_handler``); a style (attribute or element) that imports or
points ``url(…)`` outside the file goes (``external_relationship``), and so does a style
element holding ``<`` (``unknown_part``: an HTML reader would end it there); comments and processing
instructions go (``xml-stylesheet`` and any other instruction: ``external_relationship``);
character data outside text elements, which is never drawn, goes.

``verify`` parses the output again and checks every element, attribute and style by the
same allowlist, and decodes each embedded picture.

With ``cdr.svg_rasterize`` the rebuilt drawing (never the sender's) is then rendered to a PNG
picture (:mod:`sanitizers.cdr.svg_raster`), delivered instead (action ``converted``, with what
the rebuild removed), and ``verify`` checks that picture as the image sanitizer does.

Deliberately left alone: what the drawing shows (text, shapes, gradients, filters), internal
links and references (``#id``), and ``title``/``desc``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, ClassVar, Final

from lxml import etree

from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.findings import gravest, rebuilt_outcome
from sanitizers.cdr.images import ImageSanitizer
from sanitizers.cdr.ooxml_package import is_element, remove
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import SanitizeError
from sanitizers.filenames import delivered_name
from sanitizers.vocabulary import Action, Reason, RemovedItem

try:  # imported here so the CDR children's fork server loads it before their limits apply
    from sanitizers.cdr import svg_raster
except (ImportError, OSError):  # no CairoSVG or no libcairo2: cdr.svg_rasterize removes SVGs
    svg_raster = None  # type: ignore[assignment]

SVG_NS: Final = "http://www.w3.org/2000/svg"
XLINK_NS: Final = "http://www.w3.org/1999/xlink"
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"
CONTENT_TYPE: Final = "image/svg+xml"
ELEMENTS: Final = frozenset(
    {
        "a", "animate", "animateMotion", "animateTransform", "circle", "clipPath", "defs", "desc",
        "ellipse", "feBlend", "feColorMatrix", "feComponentTransfer", "feComposite",
        "feConvolveMatrix", "feDiffuseLighting", "feDisplacementMap", "feDistantLight",
        "feDropShadow", "feFlood", "feFuncA", "feFuncB", "feFuncG", "feFuncR", "feGaussianBlur",
        "feImage", "feMerge", "feMergeNode", "feMorphology", "feOffset", "fePointLight",
        "feSpecularLighting", "feSpotLight", "feTile", "feTurbulence", "filter", "g", "image",
        "line", "linearGradient", "marker", "mask", "mpath", "path", "pattern", "polygon",
        "polyline", "radialGradient", "rect", "set", "stop", "style", "svg", "switch", "symbol",
        "text", "textPath", "title", "tspan", "use", "view",
    }
)  # fmt: skip
_ELEMENT_CODES: Final = {
    "script": RemovedItem.JAVASCRIPT,
    "foreignObject": RemovedItem.FOREIGN_OBJECT,
    "metadata": RemovedItem.METADATA,
}
_TEXT_HOLDERS: Final = frozenset({"text", "tspan", "textPath", "a", "title", "desc", "style"})
_ANIMATIONS: Final = frozenset({"animate", "set", "animateMotion", "animateTransform"})
_HREFS: Final = frozenset({"href", f"{{{XLINK_NS}}}href"})
# Attributes kept from the XML namespace; xml:base would change where every href points.
_XML_ATTRIBUTES: Final = frozenset({f"{{{XML_NS}}}space", f"{{{XML_NS}}}lang"})
# A CSS reach-out: @import, or url(…) whose target is not "#fragment"; also old IE/Gecko
# script hooks. Character escapes (\75 rl) are refused whole: CSS must not hide a word.
_CSS_DANGER: Final = re.compile(
    r"@import|url\s*\(\s*(?![\"']?\s*#)|expression\s*\(|behavior\s*:|-moz-binding|javascript:|\\",
    re.IGNORECASE,
)
_DATA_IMAGE: Final = re.compile(r"^\s*data:image/(png|jpeg);base64,([A-Za-z0-9+/=\s]*)$", re.I)
_PARSER: Final = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=False,
)
_image = ImageSanitizer()
_PNG: Final = b"\x89PNG\r\n\x1a\n"


def parse_svg(untrusted_data: bytes) -> etree._Element:
    """The SVG root, parsed without entities, DTD or network; an internal DTD subset (where
    entities are declared) is refused."""
    try:
        root = etree.fromstring(untrusted_data, _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise SanitizeError(Reason.MALFORMED, f"SVG: {str(exc)[:80]}") from exc
    docinfo: Any = root.getroottree().docinfo
    dtd = docinfo.internalDTD  # also set for a DOCTYPE line without declarations
    if dtd is not None and (any(True for _ in dtd.iterentities()) or any(dtd.iterelements())):
        raise SanitizeError(Reason.MALFORMED, "SVG with an internal DTD subset")
    if etree.QName(root).namespace != SVG_NS or etree.QName(root).localname != "svg":
        raise SanitizeError(Reason.MALFORMED, "root is not svg:svg")
    return root


def _text(elem: etree._Element) -> str:
    return "".join(str(piece) for piece in elem.itertext())


def _is_fragment(value: str) -> bool:
    return value.strip().startswith("#")


def _data_image(value: str, policy: CdrPolicy) -> tuple[str, tuple[RemovedItem, ...]] | None:
    """A ``data:`` PNG/JPEG re-encoded from its pixels (the new URL and what was taken out),
    or ``None`` when it is anything else or does not decode."""
    match = _DATA_IMAGE.match(value)
    if match is None:
        return None
    try:
        raw = base64.b64decode(re.sub(r"\s", "", match.group(2)), validate=True)
    except (binascii.Error, ValueError):
        return None
    outcome = _image.run(raw, "embedded.png", CdrContext(policy=policy))
    if outcome.action is not Action.SANITIZED or outcome.data is None:
        return None
    url = f"data:{outcome.content_type};base64,{base64.b64encode(outcome.data).decode()}"
    return url, outcome.removed


class _Rebuild:
    def __init__(self, policy: CdrPolicy) -> None:
        self.policy = policy
        self.removed: list[RemovedItem] = []

    def note(self, code: RemovedItem) -> None:
        if code not in self.removed:
            self.removed.append(code)

    def element(self, elem: etree._Element) -> bool:
        """Clean one element in place; False when it must go as a whole."""
        if not is_element(elem):  # a processing instruction
            self.note(RemovedItem.EXTERNAL_RELATIONSHIP)
            return False
        qname = etree.QName(elem)
        local = qname.localname
        if qname.namespace != SVG_NS or local not in ELEMENTS:
            if qname.namespace == SVG_NS or local in _ELEMENT_CODES:
                self.note(_ELEMENT_CODES.get(local, RemovedItem.UNKNOWN_PART))
            return False
        if local in _ANIMATIONS:
            target = (elem.get("attributeName") or "").strip().lower()
            if target.endswith("href") or target.startswith("on"):
                self.note(RemovedItem.EVENT_HANDLER)
                return False
        if local == "style" and _CSS_DANGER.search(_text(elem)):
            self.note(RemovedItem.EXTERNAL_RELATIONSHIP)
            return False
        if local == "style" and "<" in _text(elem):
            # CSS needs no "<"; an HTML reader would end the style at "</style>" in it.
            self.note(RemovedItem.UNKNOWN_PART)
            return False
        return self.attributes(elem, local)

    def attributes(self, elem: etree._Element, local: str) -> bool:
        for name in list(elem.attrib):
            key = str(name)
            value = str(elem.get(key) or "")
            namespace = etree.QName(key).namespace
            if namespace not in (None, XLINK_NS) and key not in _XML_ATTRIBUTES:
                del elem.attrib[key]
            elif etree.QName(key).localname.lower().startswith("on"):
                self.note(RemovedItem.EVENT_HANDLER)
                del elem.attrib[key]
            elif key in _HREFS and not _is_fragment(value):
                if not self.href(elem, key, value, local):
                    return False
            elif key not in _HREFS and _CSS_DANGER.search(value):
                self.note(RemovedItem.EXTERNAL_RELATIONSHIP)
                del elem.attrib[key]
        return True

    def href(self, elem: etree._Element, key: str, value: str, local: str) -> bool:
        """Handle a non-fragment href; False when the element must go."""
        if local == "a":
            self.note(RemovedItem.HYPERLINK)
            del elem.attrib[key]
            return True
        if local == "image":
            picture = _data_image(value, self.policy)
            if picture is not None:
                elem.set(key, picture[0])
                for code in picture[1]:
                    self.note(code)
                return True
        self.note(RemovedItem.EXTERNAL_RELATIONSHIP)
        return False

    def walk(self, root: etree._Element) -> None:
        if _instructions(root):
            self.note(RemovedItem.EXTERNAL_RELATIONSHIP)  # xml-stylesheet: not written out
        for elem in list(root.iter()):
            if elem is root or _detached(elem, root):
                continue
            if not self.element(elem):
                remove(elem)  # the text after it stays (it may be part of a <text>)
        self.attributes(root, "svg")
        _drop_stray_text(root)


def _drop_stray_text(root: etree._Element) -> None:
    """Character data is drawn only inside text elements (and read in title, desc, style);
    elsewhere it is never shown, so it is not kept (a reader that mistakes the file for HTML
    finds nothing there to run)."""
    for elem in root.iter():
        if etree.QName(elem).localname not in _TEXT_HOLDERS:
            elem.text = None
            for child in elem:
                child.tail = None


def _instructions(root: etree._Element) -> list[etree._Element]:
    """Processing instructions before the root (``xml-stylesheet`` fetches CSS or XSLT)."""
    return [node for node in root.itersiblings(preceding=True) if not is_element(node)]


def _detached(elem: etree._Element, root: etree._Element) -> bool:
    node = elem.getparent()
    while node is not None and node is not root:
        node = node.getparent()
    return node is None


def find_dangerous(data: bytes, policy: CdrPolicy | None = None) -> set[str]:
    """What a second look at an SVG output finds; empty when it is clean."""
    found: set[str] = set()
    root = parse_svg(data)
    if _instructions(root):
        found.add("instruction")
    for elem in root.iter():
        if not is_element(elem):
            found.add("instruction")
            continue
        qname = etree.QName(elem)
        if qname.namespace != SVG_NS or qname.localname not in ELEMENTS:
            found.add(f"element:{qname.localname}")
        if qname.localname == "style" and (_CSS_DANGER.search(_text(elem)) or "<" in _text(elem)):
            found.add("style")
        if qname.localname in _ANIMATIONS:
            target = (elem.get("attributeName") or "").strip().lower()
            if target.endswith("href") or target.startswith("on"):
                found.add("animation:" + target)
        for key, value in elem.attrib.items():
            name, text = str(key), str(value)
            attr = etree.QName(name)
            if attr.namespace not in (None, XLINK_NS) and name not in _XML_ATTRIBUTES:
                found.add("attribute:" + name)
            if attr.localname.lower().startswith("on"):
                found.add(RemovedItem.EVENT_HANDLER)
            if attr.localname == "href" and not _is_fragment(text):
                if qname.localname != "image" or _DATA_IMAGE.match(text) is None:
                    found.add(RemovedItem.EXTERNAL_RELATIONSHIP)
                else:
                    raw = base64.b64decode(re.sub(r"\s", "", text.split(",", 1)[1]))
                    _image.verify(raw, CdrContext(policy=policy or CdrPolicy()))
            elif attr.localname != "href" and _CSS_DANGER.search(text):
                found.add("style attribute:" + attr.localname)
    return found


class SvgSanitizer(CdrSanitizer):
    """Rebuilds an SVG drawing from its allowlisted elements; see the module docstring."""

    kind: ClassVar[str] = "svg"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        root = parse_svg(untrusted_data)
        state = _Rebuild(ctx.policy)
        state.walk(root)
        data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        if ctx.policy.svg_rasterize and not (ctx.keep_if_clean and state.removed):
            if svg_raster is None:
                raise SanitizeError(Reason.ERROR, "svg_rasterize: CairoSVG or libcairo2 missing")
            return CdrOutcome(
                action=Action.CONVERTED,
                reason=gravest(tuple(state.removed)),
                data=svg_raster.rasterize(data, ctx.policy),
                filename=delivered_name(filename, svg_raster.CONTENT_TYPE),
                content_type=svg_raster.CONTENT_TYPE,
                removed=tuple(state.removed),
            )
        return rebuilt_outcome(
            tuple(state.removed),
            rebuilt=data,
            filename=filename,
            rebuilt_name=delivered_name(filename, CONTENT_TYPE),
            content_type=CONTENT_TYPE,
            keep_if_clean=ctx.keep_if_clean,
        )

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        if ctx.policy.svg_rasterize and data.startswith(_PNG):  # the drawing as a picture
            _image.verify(data, ctx)
            return
        found = find_dangerous(data, ctx.policy)
        if found:
            raise SanitizeError(Reason.VERIFY_FAILED, ",".join(sorted(found))[:200])
