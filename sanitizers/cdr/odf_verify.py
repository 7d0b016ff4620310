"""An independent look at an OpenDocument package: what a rebuilt output must not contain.

It shares no walk with the rebuild (:mod:`sanitizers.cdr.odf`): every part of the zip is
looked at, whatever the manifest says. Only the parts a rebuild writes may be there
(``mimetype`` first and stored, the manifest, the four XML parts, pictures and the
thumbnail); the manifest must list exactly the parts present and encrypt none; every XML part
must parse and hold no element of :data:`~sanitizers.cdr.odf_package.ELEMENT_CODES` or
``UNWRAPPED``, no macro URL in any attribute, no dangerous formula, no hyperlink leaving the
document and no other ``xlink:href`` that names something other than a part present; every
picture must be media whose content is what the manifest says (raster images PNG or JPEG);
no part may be an OLE compound file.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Collection
from typing import Final, cast

from lxml import etree

from sanitizers.cdr import olescan
from sanitizers.cdr.odf_package import (
    ELEMENT_CODES,
    FORM_NS,
    FORMULA_ATTRIBUTES,
    HREF,
    HYPERLINKS,
    MANIFEST,
    MEDIA_DIRECTORIES,
    MIMETYPE,
    REBUILT_TYPES,
    UNWRAPPED,
    XLINK_NS,
    XML_PARTS,
    formula_danger,
    is_macro_url,
    name_of,
    part_of,
    read_manifest,
)
from sanitizers.cdr.ooxml_media import media_problem
from sanitizers.cdr.ooxml_package import parse_xml, read_package
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import SanitizeError
from sanitizers.links import DEFAULT_ALLOWED_SCHEMES
from sanitizers.vocabulary import RemovedItem


def _is_picture(part: str | None, parts: Collection[str]) -> bool:
    return part is not None and part in parts and part.startswith(MEDIA_DIRECTORIES)


# What the verification selects, with libxml2 doing the walk: attributes that may hold a macro
# URL (every one holds ":"), formula attributes (by local name, in any namespace), elements
# with an ``xlink:href``.
_COLON_VALUES: Final = etree.XPath("//@*[contains(., ':')]")
_FORMULAS: Final = etree.XPath(
    "//@*[" + " or ".join(f"local-name() = '{name}'" for name in sorted(FORMULA_ATTRIBUTES)) + "]"
)
_LINKED: Final = etree.XPath("//*[@xl:href]", namespaces={"xl": XLINK_NS})
_TAGS: Final = tuple(f"{{{namespace}}}{local}" for namespace, local in {*ELEMENT_CODES, *UNWRAPPED})


def _xml_findings(
    name: str, content: bytes, parts: Collection[str], allowed_schemes: Collection[str]
) -> set[str]:
    found: set[str] = set()
    root = parse_xml(content, name)
    for elem in root.iter(*_TAGS):
        key = name_of(elem)
        found.add(ELEMENT_CODES.get(key) or UNWRAPPED[key])
    for value in cast(list[str], _COLON_VALUES(root)):
        if is_macro_url(str(value)):
            found.add(RemovedItem.DOCUMENT_MACRO)
    for formula in cast(list[str], _FORMULAS(root)):
        danger = formula_danger(str(formula), allowed_schemes)
        if danger is not None:
            found.add(danger)
    for elem in cast(list[etree._Element], _LINKED(root)):
        href = str(elem.get(HREF))
        key = name_of(elem)
        if key in HYPERLINKS:
            if not href.strip().startswith("#"):
                found.add(RemovedItem.HYPERLINK)
        elif key[0] == FORM_NS or not _is_picture(part_of(href), parts):
            found.add(RemovedItem.EXTERNAL_RELATIONSHIP)
    return found


def _layout_findings(data: bytes, parts: dict[str, bytes]) -> set[str]:
    found: set[str] = set()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        first = archive.infolist()[0] if archive.infolist() else None
    if first is None or first.filename != MIMETYPE or first.compress_type != zipfile.ZIP_STORED:
        found.add("mimetype not first and stored")
    if parts.get(MIMETYPE, b"").decode("ascii", "replace") not in REBUILT_TYPES:
        found.add("mimetype")
    for name in parts:
        allowed = name in (MIMETYPE, MANIFEST, *XML_PARTS) or (
            name.startswith(MEDIA_DIRECTORIES) and name.count("/") == 1
        )
        if not allowed:
            found.add("part:" + name)
    return found


def find_dangerous(
    data: bytes,
    policy: CdrPolicy | None = None,
    allowed_schemes: Collection[str] = DEFAULT_ALLOWED_SCHEMES,
) -> set[str]:
    """What a plain look at every part still finds in an OpenDocument package."""
    parts = read_package(data, policy or CdrPolicy())
    if MANIFEST not in parts:
        return {"no manifest"}
    found = _layout_findings(data, parts)
    try:
        manifest = read_manifest(parts[MANIFEST])
    except SanitizeError as exc:
        return found | {exc.reason.value}
    listed = set(manifest.entries)
    present = set(parts) - {MIMETYPE, MANIFEST}
    if listed != present:
        found.add("manifest does not match the parts")
    for name, content in parts.items():
        if olescan.is_ole(content):
            found.add(RemovedItem.OLE_OBJECT)
        if name in XML_PARTS:
            found |= _xml_findings(name, content, present, allowed_schemes)
        elif name.startswith(MEDIA_DIRECTORIES):
            problem = media_problem(content, manifest.entries.get(name, ""))
            if problem:
                found.add(f"{problem}:{name}")
    return found
