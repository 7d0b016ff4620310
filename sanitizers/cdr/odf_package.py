"""The OpenDocument package layer: names, the manifest, what is dangerous, written once.

Threat model: the zip and every XML part are hostile (the OOXML package reader's limits and
checks apply: traversal names, case-duplicates, bombs, encrypted entries, DTDs and entities).
An OpenDocument file runs code through its macro libraries (``Basic/``, ``Scripts/``,
``Dialogs/``), ``office:scripts``, event listeners on the document, shapes, form controls and
hyperlinks (``script:event-listener``, ``presentation:event-listener``), ``vnd.sun.star.script:``
and ``macro:`` URLs, the ``text:execute-macro`` field and inline ``text:script``; it reaches out
through DDE (``office:dde-source``, ``text:dde-connection``, the ``DDE()`` function), linked
sections, sheets and cell ranges (``text:section-source``, ``table:table-source``,
``table:cell-range-source``), linked images and fonts (``xlink:href`` to a URL), database
connections, XForms submissions, remote templates and auto-reload (``meta:template``,
``meta:auto-reload``), and formulas that fetch (``WEBSERVICE``…) or refer to another file
(``['file:///…'#$Sheet1.A1]``); it embeds objects (``draw:object`` with its ``Object N/``
directory, OLE objects, applets, plug-ins, floating frames).

:data:`ELEMENT_CODES` (elements removed, with their code), :func:`formula_danger` and the
manifest reader are shared by the rebuild (:mod:`sanitizers.cdr.odf`) and the independent
check (:mod:`sanitizers.cdr.odf_verify`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import unquote

from lxml import etree

from sanitizers.cdr.ooxml_package import is_element, parse_xml
from sanitizers.cdr.ooxml_sheet import FETCHING_FUNCTIONS, STRING_LITERAL
from sanitizers.cdr.ooxml_sheet import formula_danger as excel_formula_danger
from sanitizers.errors import SanitizeError
from sanitizers.vocabulary import Reason, RemovedItem

_OASIS: Final = "urn:oasis:names:tc:opendocument:xmlns:"
OFFICE_NS: Final = _OASIS + "office:1.0"
TEXT_NS: Final = _OASIS + "text:1.0"
TABLE_NS: Final = _OASIS + "table:1.0"
DRAW_NS: Final = _OASIS + "drawing:1.0"
PRESENTATION_NS: Final = _OASIS + "presentation:1.0"
SCRIPT_NS: Final = _OASIS + "script:1.0"
FORM_NS: Final = _OASIS + "form:1.0"
META_NS: Final = _OASIS + "meta:1.0"
ANIM_NS: Final = _OASIS + "animation:1.0"
MANIFEST_NS: Final = _OASIS + "manifest:1.0"
XLINK_NS: Final = "http://www.w3.org/1999/xlink"
XFORMS_NS: Final = "http://www.w3.org/2002/xforms"
HREF: Final = f"{{{XLINK_NS}}}href"

MIMETYPE: Final = "mimetype"
MANIFEST: Final = "META-INF/manifest.xml"
# The package media types rebuilt (the delivered extension follows from the type:
# sanitizers.filenames). Databases, formulas, charts and master documents are not
# (``unsupported_type``).
_ODF_TYPE: Final = "application/vnd.oasis.opendocument."
REBUILT_TYPES: Final = frozenset(
    _ODF_TYPE + flavor
    for base in ("text", "spreadsheet", "presentation", "graphics")
    for flavor in (base, base + "-template")
)
# The XML parts a rebuilt package keeps (each parsed and written anew).
XML_PARTS: Final = ("content.xml", "styles.xml", "meta.xml", "settings.xml")
# Binary parts kept as checked media: pictures and the thumbnail.
MEDIA_DIRECTORIES: Final = ("Pictures/", "Thumbnails/")
# Directories whose parts are code: macro libraries, scripts, their dialogs.
MACRO_DIRECTORIES: Final = ("Basic/", "Scripts/", "Dialogs/")
# Embedded objects (``Object 1/content.xml``…) and their preview pictures.
OBJECT_DIRECTORIES: Final = ("Object ", "ObjectReplacements/")
# User-interface customisation (menus, toolbars, key bindings may call macros).
UI_DIRECTORY: Final = "Configurations2/"
_MACRO_URL: Final = re.compile(r"^\s*(vnd\.sun\.star\.(script|basic)|macro|basic):", re.I)

# (namespace, local name) → the code the element is removed with.
ELEMENT_CODES: Final[dict[tuple[str, str], RemovedItem]] = {
    (OFFICE_NS, "script"): RemovedItem.DOCUMENT_MACRO,
    (TEXT_NS, "script"): RemovedItem.DOCUMENT_MACRO,
    (OFFICE_NS, "event-listeners"): RemovedItem.EVENT_HANDLER,
    (SCRIPT_NS, "event-listener"): RemovedItem.EVENT_HANDLER,
    (PRESENTATION_NS, "event-listener"): RemovedItem.EVENT_HANDLER,
    (ANIM_NS, "command"): RemovedItem.PROGRAM_ACTION,
    (DRAW_NS, "object"): RemovedItem.EMBEDDED_PACKAGE,
    (DRAW_NS, "object-ole"): RemovedItem.OLE_OBJECT,
    (DRAW_NS, "applet"): RemovedItem.OLE_OBJECT,
    (DRAW_NS, "plugin"): RemovedItem.OLE_OBJECT,
    (DRAW_NS, "floating-frame"): RemovedItem.EXTERNAL_RELATIONSHIP,
    (OFFICE_NS, "binary-data"): RemovedItem.UNKNOWN_PART,
    (OFFICE_NS, "dde-source"): RemovedItem.DDE,
    (TEXT_NS, "dde-connection-decls"): RemovedItem.DDE,
    (TEXT_NS, "dde-connection-decl"): RemovedItem.DDE,
    (TABLE_NS, "dde-links"): RemovedItem.DDE,
    (TABLE_NS, "dde-link"): RemovedItem.DDE,
    (TEXT_NS, "section-source"): RemovedItem.EXTERNAL_LINK,
    (TABLE_NS, "table-source"): RemovedItem.EXTERNAL_LINK,
    (TABLE_NS, "cell-range-source"): RemovedItem.EXTERNAL_LINK,
    (TABLE_NS, "database-source-sql"): RemovedItem.DATA_CONNECTION,
    (TABLE_NS, "database-source-table"): RemovedItem.DATA_CONNECTION,
    (TABLE_NS, "database-source-query"): RemovedItem.DATA_CONNECTION,
    (XFORMS_NS, "model"): RemovedItem.SUBMIT_FORM,
    (META_NS, "template"): RemovedItem.REMOTE_TEMPLATE,
    (META_NS, "auto-reload"): RemovedItem.EXTERNAL_RELATIONSHIP,
}
# Fields whose shown text stays when the field goes (their children are kept in place).
UNWRAPPED: Final[dict[tuple[str, str], RemovedItem]] = {
    (TEXT_NS, "execute-macro"): RemovedItem.DOCUMENT_MACRO,
    (TEXT_NS, "dde-connection"): RemovedItem.DDE,
    (TEXT_NS, "database-display"): RemovedItem.DATA_CONNECTION,
    (TEXT_NS, "database-next"): RemovedItem.DATA_CONNECTION,
    (TEXT_NS, "database-row-select"): RemovedItem.DATA_CONNECTION,
    (TEXT_NS, "database-row-number"): RemovedItem.DATA_CONNECTION,
    (TEXT_NS, "database-name"): RemovedItem.DATA_CONNECTION,
}
# Hyperlink elements: a link inside the document ("#…") stays, any other loses its target
# and keeps its text (like an external hyperlink in OOXML).
HYPERLINKS: Final = frozenset({(TEXT_NS, "a"), (DRAW_NS, "a")})
# Attributes holding a formula (``of:=…``), by local name, in any namespace.
FORMULA_ATTRIBUTES: Final = frozenset({"formula", "condition", "expression"})
_FORMULA_PREFIX: Final = re.compile(r"^\s*[A-Za-z][A-Za-z0-9_.-]*:")
_FUNCTION: Final = re.compile(r"(?<![A-Za-z0-9_.])([A-Za-z_][A-Za-z0-9_.]*)\s*\(")
# A reference into another file: ['file:///C:/book.ods'#$Sheet1.A1] or 'http://…'#Sheet.
_OTHER_FILE: Final = re.compile(r"'[^']*'\s*#")


_NAMED_TAGS: Final = tuple(sorted(f"{{{ns}}}{local}" for ns, local in {*ELEMENT_CODES, *UNWRAPPED}))
# Elements with an ``xlink:href``, and elements with a formula attribute (in any namespace) or
# an attribute holding ":" (every macro URL does: a superset of :func:`is_macro_url`, which is
# then checked in Python). Each is one predicate over the elements, never a union: libxml2
# merges node sets in time quadratic in their size.
_LINKED: Final = etree.XPath("//*[@xl:href]", namespaces={"xl": XLINK_NS})
_ATTRIBUTED: Final = etree.XPath(
    "//*[@*["
    + " or ".join(f"local-name() = '{local}'" for local in sorted(FORMULA_ATTRIBUTES))
    + " or contains(., ':')]]"
)


def candidates(root: etree._Element) -> list[etree._Element]:
    """The elements a rebuild may act on, each once, found by libxml2 without a Python step
    per element (a spreadsheet's plain cells are none of them): the named elements
    (:data:`ELEMENT_CODES`, :data:`UNWRAPPED`) in document order, then those with an
    ``xlink:href``, then those with a formula or a possible macro URL."""
    found: dict[etree._Element, None] = dict.fromkeys(root.iter(*_NAMED_TAGS))
    for query in (_LINKED, _ATTRIBUTED):
        found.update(dict.fromkeys(cast(list[etree._Element], query(root))))
    return list(found)


def name_of(elem: etree._Element) -> tuple[str, str]:
    """(namespace, local name) of an element; ("", "") for comments and instructions."""
    if not is_element(elem):
        return ("", "")
    qname = etree.QName(elem)
    return (qname.namespace or "", qname.localname)


def is_macro_url(untrusted_value: str) -> bool:
    """A URL that runs a macro or script (``vnd.sun.star.script:``, ``macro:``…)."""
    return bool(_MACRO_URL.match(untrusted_value))


def formula_danger(untrusted_formula: str, allowed_schemes: Collection[str]) -> RemovedItem | None:
    """The removed-item code of a dangerous OpenFormula (``of:=WEBSERVICE(…)``), or ``None``:
    the spreadsheet rules of :mod:`sanitizers.cdr.ooxml_sheet`, plus OpenFormula's ``DDE()``,
    namespaced function names (``COM.MICROSOFT.WEBSERVICE``) and references into other files."""
    body = _FORMULA_PREFIX.sub("", untrusted_formula, count=1)
    code = excel_formula_danger(body, allowed_schemes)
    if code is not None:
        return code
    outside = STRING_LITERAL.sub('""', body)
    for match in _FUNCTION.finditer(outside):
        name = match.group(1).upper()
        last = name.rsplit(".", 1)[-1]
        if "DDE" in (name, last):
            return RemovedItem.DDE
        if name in FETCHING_FUNCTIONS or last in FETCHING_FUNCTIONS or "_XLL." in name:
            return RemovedItem.FORMULA_FUNCTION
    if _OTHER_FILE.search(outside):
        return RemovedItem.EXTERNAL_LINK
    return None


def part_of(untrusted_href: str) -> str | None:
    """The package part a relative ``xlink:href`` names (``./Pictures/a.png``,
    ``Pictures/a.png``), or ``None`` when it names something outside the package (a URL, an
    absolute or parent path) or nothing."""
    href = untrusted_href.strip()
    if not href or href.startswith(("/", "\\", "#")) or re.match(r"^[A-Za-z][\w+.-]*:", href):
        return None
    normal = posixpath.normpath(unquote(href.split("#", 1)[0]))
    if normal.startswith("../") or normal in ("..", "."):
        return None
    return normal


@dataclass(frozen=True)
class Manifest:
    """What ``META-INF/manifest.xml`` says: the package's media type and version, and the
    media type of each part it lists."""

    media_type: str
    version: str
    entries: dict[str, str]


def read_manifest(untrusted_xml: bytes) -> Manifest:
    """The manifest, parsed without DTD or entities; an encrypted package is refused."""
    root = parse_xml(untrusted_xml, MANIFEST)
    entries: dict[str, str] = {}
    media_type = version = ""
    for elem in root.iter(f"{{{MANIFEST_NS}}}file-entry", f"{{{MANIFEST_NS}}}encryption-data"):
        if etree.QName(elem).localname == "encryption-data":
            raise SanitizeError(Reason.ENCRYPTED, "encrypted OpenDocument entry")
        path = elem.get(f"{{{MANIFEST_NS}}}full-path") or ""
        ctype = (elem.get(f"{{{MANIFEST_NS}}}media-type") or "").strip()
        if path == "/":
            media_type = ctype
            version = elem.get(f"{{{MANIFEST_NS}}}version") or ""
        elif path and not path.endswith("/"):
            entries[path] = ctype
    return Manifest(media_type, version, entries)
