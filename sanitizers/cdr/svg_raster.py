"""SVG drawings rendered to PNG pictures (``cdr.svg_rasterize``), with CairoSVG.

Why: a picture is what some offices want to receive, not a drawing a viewer interprets. What
is rendered is the SVG sanitizer's rebuild (:mod:`sanitizers.cdr.svg`: no script, handler,
``foreignObject``, reference outside the file or DTD is left), never the sender's bytes; the PNG
goes out instead of it (action ``converted``) and is checked by the image sanitizer's own
``verify`` like any picture.

Threat model: the drawing is still hostile (sizes, filters, patterns and nesting made to cost
memory and time). CairoSVG (LGPL-3.0, used unmodified; it draws with Debian's libcairo2)
parses it again with defusedxml (no entities); its URL fetcher is replaced by one that reads
nothing: a ``data:`` PNG or JPEG (the sanitizer re-encoded them) is decoded in memory, any
other address gets an empty drawing (no file, no network); the surface is refused before it is
allocated when it would be over ``cdr.image_max_pixels`` (``limit_pixels``); references that
multiply what is drawn (``<use>`` of ``<use>``…, patterns filled with patterns) are counted
first, without drawing, against ``cdr.svg_max_drawn_elements`` (``limit_entries``); memory and time
are the isolated child's (``cdr.memory_mb``, ``cdr.seconds``), as for every sanitizer. A
drawing CairoSVG cannot render is removed (``malformed``), never delivered as an SVG instead.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Any, Final

import cairocffi
import cairosvg.parser
import cairosvg.surface
from lxml import etree

from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.vocabulary import Reason

CONTENT_TYPE: Final = "image/png"
_DPI: Final = 96  # CSS pixels: a drawing of width="200" becomes 200 pixels wide
_DATA_IMAGE: Final = re.compile(r"data:image/(png|jpeg);base64,", re.IGNORECASE)
# A reference to an element of the same drawing: href="#id" or url(#id).
_REFERENCE: Final = re.compile(r"""^\s*#([^\s'"()]+)|url\(\s*['"]?#([^\s'"()]+)""")
_NOTHING: Final = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'


def _fetch(url: str, resource_type: str) -> bytes:
    """What CairoSVG gets for any address: an embedded PNG or JPEG, else an empty drawing."""
    match = _DATA_IMAGE.match(url)
    if match is None:
        return _NOTHING
    try:
        return base64.b64decode(re.sub(r"\s", "", url[match.end() :]), validate=True)
    except (binascii.Error, ValueError):
        return _NOTHING


class _BoundedPng(cairosvg.surface.PNGSurface):  # type: ignore[misc]
    """CairoSVG's PNG surface, refused before allocation beyond ``max_pixels``."""

    max_pixels: int = 0

    def _create_surface(self, width: float, height: float) -> Any:
        pixels = max(round(width), 0) * max(round(height), 0)
        if pixels > self.max_pixels:
            raise LimitExceeded(Reason.LIMIT_PIXELS, f"SVG drawn at {pixels} pixels")
        return super()._create_surface(width, height)


def drawn_elements(svg: bytes, limit: int) -> int:
    """How many elements drawing ``svg`` visits, counting each reference to another element
    (``<use href="#a">``, ``fill="url(#p)"``, a pattern's or filter's ``href``) as that
    element's whole subtree again; raises ``limit_entries`` past ``limit`` and ``malformed``
    for a reference cycle. Nested references multiply ("billion laughs" of ``<use>``): this
    counts without drawing."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(svg, parser)
    by_id = {
        str(el.get("id")): el for el in root.iter() if isinstance(el.tag, str) and el.get("id")
    }
    # Keyed by the element (lxml gives one proxy per node while it is referenced).
    counted: dict[etree._Element, int] = {}
    visiting: set[etree._Element] = set()

    def count(elem: etree._Element) -> int:
        key = elem
        if key in counted:
            return counted[key]
        if key in visiting:
            raise SanitizeError(Reason.MALFORMED, "SVG references itself")
        visiting.add(key)
        total = 1
        for child in elem:
            if isinstance(child.tag, str):
                total += count(child)
                if total > limit:
                    break
        for value in elem.attrib.values():
            for fragment, url in _REFERENCE.findall(str(value)):
                target = by_id.get(fragment or url)
                if target is not None:
                    total += count(target)
        visiting.discard(key)
        if total > limit:
            raise LimitExceeded(Reason.LIMIT_ENTRIES, f"SVG draws over {limit} elements")
        counted[key] = total
        return total

    return count(root)


def rasterize(svg: bytes, limits: CdrPolicy) -> bytes:
    """The PNG of a sanitized SVG drawing; raises ``limit_entries`` for one that draws too
    many elements, ``limit_pixels`` for one too large and ``malformed`` for one that cannot be
    drawn."""
    drawn_elements(svg, limits.svg_max_drawn_elements)
    output = io.BytesIO()
    try:
        tree = cairosvg.parser.Tree(bytestring=svg, unsafe=False, url_fetcher=_fetch)
        bounded = type("_Bounded", (_BoundedPng,), {"max_pixels": limits.image_max_pixels})
        bounded(tree, output, _DPI).finish()
    except (LimitExceeded, MemoryError):
        raise
    except (cairocffi.CairoError, ValueError, TypeError, KeyError, IndexError,
            ZeroDivisionError, OverflowError, AttributeError, RecursionError) as exc:  # fmt: skip
        raise SanitizeError(Reason.MALFORMED, f"SVG not drawable: {type(exc).__name__}") from exc
    return output.getvalue()
