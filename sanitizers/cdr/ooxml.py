"""OOXML (docx/xlsx/pptx and the macro-enabled m-variants, templates, slide shows, add-ins).

Threat model: a package built to run code or reach out when opened — VBA projects, Excel 4
macro sheets, ActiveX controls, embedded OLE objects and packages (which carry their own
macros or executables), remote template injection (``attachedTemplate``), external
workbook links and data connections, frames and sub-documents, DDE/DDEAUTO and other
link-pulling fields (``LINK``, ``INCLUDETEXT``, ``INCLUDEPICTURE``, ``IMPORT``), DDE
formulas in cells (``=cmd|'/c calc'!A0``), PowerPoint "run program / macro" actions, the
ribbon customisation (``customUI``, whose callbacks call macros), Office web add-ins,
``altChunk`` (an imported RTF/HTML/MHT document), and XML attacks on the reader (DTDs,
external entities, entity expansion, deep nesting). Also zip bombs and confusing names.

What it does: the package is **rebuilt**, never patched. Parts are reached only by walking
relationships from the package root; each kept XML part is parsed with lxml (no DTD, no
entities, no network, no huge trees; a DTD anywhere removes the file) and serialised anew
from the tree; media (images, audio, video, fonts) are copied as bytes; anything else is
dropped — except an embedded macro-free OOXML package (a chart's data workbook, an embedded
document), which is rebuilt by the same rules up to two levels deep, with what was removed
inside it reported for the outer file. ``[Content_Types].xml`` and every ``.rels`` are
written from scratch, macro-enabled content types become macro-free and the file is renamed
(``.docm`` → ``.docx``, ``.xlsm`` → ``.xlsx``, ``.pptm`` → ``.pptx``, ``.dotm`` → ``.dotx``,
``.xltm`` → ``.xltx``, ``.potm`` → ``.potx``, ``.ppsm`` → ``.ppsx``, add-ins
``.xlam``/``.ppam`` → ``.xlsx``/``.pptx``).
Every element that referred to a dropped relationship is removed too (Office calls a
dangling ``r:id`` "unreadable content"); an external hyperlink's text is kept, only the link
goes. Output is verified independently: oletools finds no VBA and no OLE part, oleobj finds
no external relationship, no content type is macro-enabled, no DDE field remains and the
main part parses.

Removed-item codes (``CdrOutcome.removed``):

``vba`` VBA project, its signature, key-map customisations and attached toolbars;
``xlm_macro`` Excel 4 macro sheets and dialog sheets (and ``Auto_Open``-style names);
``activex`` ActiveX controls; ``ole_object`` embedded OLE objects; ``embedded_package``
embedded OOXML/other packages; ``alt_chunk`` imported alternative-format chunks;
``custom_ui`` ribbon customisation; ``web_extension`` Office web add-ins;
``external_relationship`` remote templates, frames, sub-documents and other external
targets; ``external_link`` links to other workbooks; ``data_connection`` external data
connections and query tables; ``hyperlink`` external hyperlinks (text kept);
``dde`` DDE/DDEAUTO fields and DDE formulas; ``data_connection`` also covers Word
mail-merge settings (data source, connection string, query); ``linked_field``
LINK/INCLUDE*/IMPORT fields (their last shown result is kept); ``program_action``
PowerPoint run-program/macro/OLE actions; ``unknown_part`` a non-XML part that is not a
known media type.

Deliberately left alone: text, formatting, styles, themes, charts, SmartArt, comments,
tracked changes, images and other media (copied, not re-encoded), document properties
(including custom properties, which are plain text), internal hyperlinks and bookmarks,
ordinary fields (PAGE, TOC, REF, HYPERLINK to an internal bookmark…), cell formulas without
DDE, and cached values of anything whose formula or link was removed. Binary workbooks
(``.xlsb``), Visio and XPS packages are not rebuilt: ``unsupported_type``. An OLE compound
file posing as OOXML is encrypted OOXML (``encrypted``) or not OOXML (``malformed``).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast
from urllib.parse import unquote

from lxml import etree

from sanitizers.cdr import olescan
from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.findings import rebuilt_outcome
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.vocabulary import Reason

CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
PR_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
R_STRICT_NS = "http://purl.oclc.org/ooxml/officeDocument/relationships"
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
S_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
P_NS = "http://schemas.openxmlformats.org/presentationml/2006/main"
O_NS = "urn:schemas-microsoft-com:office:office"

CONTENT_TYPES = "[Content_Types].xml"

# Main-part content types: macro-enabled → (macro-free type, extension); macro-free → itself.
_WML = "application/vnd.openxmlformats-officedocument.wordprocessingml"
_SML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_PML = "application/vnd.openxmlformats-officedocument.presentationml"
MAIN_TYPES: dict[str, tuple[str, str]] = {
    f"{_WML}.document.main+xml": (f"{_WML}.document.main+xml", ".docx"),
    f"{_WML}.template.main+xml": (f"{_WML}.template.main+xml", ".dotx"),
    "application/vnd.ms-word.document.macroEnabled.main+xml": (
        f"{_WML}.document.main+xml",
        ".docx",
    ),
    "application/vnd.ms-word.template.macroEnabledTemplate.main+xml": (
        f"{_WML}.template.main+xml",
        ".dotx",
    ),
    f"{_SML}.sheet.main+xml": (f"{_SML}.sheet.main+xml", ".xlsx"),
    f"{_SML}.template.main+xml": (f"{_SML}.template.main+xml", ".xltx"),
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml": (f"{_SML}.sheet.main+xml", ".xlsx"),
    "application/vnd.ms-excel.template.macroEnabled.main+xml": (
        f"{_SML}.template.main+xml",
        ".xltx",
    ),
    "application/vnd.ms-excel.addin.macroEnabled.main+xml": (f"{_SML}.sheet.main+xml", ".xlsx"),
    f"{_PML}.presentation.main+xml": (f"{_PML}.presentation.main+xml", ".pptx"),
    f"{_PML}.slideshow.main+xml": (f"{_PML}.slideshow.main+xml", ".ppsx"),
    f"{_PML}.template.main+xml": (f"{_PML}.template.main+xml", ".potx"),
    "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml": (
        f"{_PML}.presentation.main+xml",
        ".pptx",
    ),
    "application/vnd.ms-powerpoint.slideshow.macroEnabled.main+xml": (
        f"{_PML}.slideshow.main+xml",
        ".ppsx",
    ),
    "application/vnd.ms-powerpoint.template.macroEnabled.main+xml": (
        f"{_PML}.template.main+xml",
        ".potx",
    ),
    "application/vnd.ms-powerpoint.addin.macroEnabled.main+xml": (
        f"{_PML}.presentation.main+xml",
        ".pptx",
    ),
}
OUTPUT_CONTENT_TYPES = {
    ".docx": f"{_WML}.document",
    ".dotx": f"{_WML}.template",
    ".xlsx": f"{_SML}.sheet",
    ".xltx": f"{_SML}.template",
    ".pptx": f"{_PML}.presentation",
    ".ppsx": f"{_PML}.slideshow",
    ".potx": f"{_PML}.template",
}

# Relationship type (last segment, or a known suffix) → removed-item code.
REL_CODES: dict[str, str] = {
    "vbaProject": "vba",
    "wordVbaData": "vba",
    "vbaProjectSignature": "vba",
    "vbaProjectSignatureAgile": "vba",
    "vbaProjectSignatureV3": "vba",
    "keyMapCustomizations": "vba",
    "attachedToolbars": "vba",
    "xlMacrosheet": "xlm_macro",
    "xlIntlMacrosheet": "xlm_macro",
    "dialogsheet": "xlm_macro",
    "control": "activex",
    "activeXControlBinary": "activex",
    "activeXControl": "activex",
    "oleObject": "ole_object",
    "package": "embedded_package",
    "aFChunk": "alt_chunk",
    "extensibility": "custom_ui",
    "webextension": "web_extension",
    "webextensiontaskpanes": "web_extension",
    "connections": "data_connection",
    "queryTable": "data_connection",
    "externalLink": "external_link",
    "externalLinkPath": "external_link",
    "attachedTemplate": "external_relationship",
    "frame": "external_relationship",
    "subDocument": "external_relationship",
}
# Dropped without a report: harmless but opaque binary settings.
# (Digital signatures cannot survive a rebuild: they are dropped too.)
SILENT_REL_TYPES = frozenset({"printerSettings", "origin", "signature", "digital-signature"})

# Content types that are dangerous wherever they appear.
DANGEROUS_CT: dict[str, str] = {
    "application/vnd.ms-office.vbaproject": "vba",
    "application/vnd.ms-word.vbadata+xml": "vba",
    "application/vnd.ms-office.vbaprojectsignature": "vba",
    "application/vnd.ms-word.keymapcustomizations+xml": "vba",
    "application/vnd.ms-word.attachedtoolbars": "vba",
    "application/vnd.ms-excel.macrosheet+xml": "xlm_macro",
    "application/vnd.ms-excel.intlmacrosheet+xml": "xlm_macro",
    f"{_SML}.dialogsheet+xml".lower(): "xlm_macro",
    "application/vnd.ms-office.activex+xml": "activex",
    "application/vnd.ms-office.activex": "activex",
    "application/vnd.openxmlformats-officedocument.oleobject": "ole_object",
    "application/vnd.ms-office.customui+xml": "custom_ui",
}

# Embedded packages rebuilt recursively (content types of the package parts, as Office
# declares them for embeddings/*.xlsx, *.docx, *.pptx); and how deep.
NESTED_TYPES = frozenset(
    {
        f"{_SML}.sheet",
        f"{_WML}.document",
        f"{_PML}.presentation",
    }
)
NESTED_MAX = 2

# Binary parts copied as they are (by content type prefix or exact type).
MEDIA_PREFIXES = ("image/", "audio/", "video/", "font/")
MEDIA_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.obfuscatedfont",
        "application/x-fontdata",
        "application/x-font-ttf",
        "application/x-font",
        "application/vnd.ms-opentype",
    }
)
# Elements removed as a whole when they refer to a dropped relationship; others lose only the
# attribute. A Word hyperlink is unwrapped (its text stays).
REMOVE_ELEMENT = frozenset(
    {
        "OLEObject",
        "control",
        "oleObject",
        "oleObj",
        "externalReference",
        "attachedTemplate",
        "altChunk",
        "subDoc",
        "hlinkClick",
        "hlinkHover",
        "hlinkMouseOver",
        "sheet",
        "hyperlink",
        "webExtension",
        "taskpane",
        "customXmlPr",
        "externalData",
        "sourceFileName",
        "dataSource",
        "headerSource",
    }
)
EMPTY_CONTAINERS = frozenset(
    {
        "oleObjects",
        "controls",
        "externalReferences",
        "hyperlinks",
        "definedNames",
        "AlternateContent",
        "Choice",
        "Fallback",
    }
)
FIELD_DANGER = {
    "DDE": "dde",
    "DDEAUTO": "dde",
    "LINK": "linked_field",
    "INCLUDETEXT": "linked_field",
    "INCLUDEPICTURE": "linked_field",
    "IMPORT": "linked_field",
    "INCLUDE": "linked_field",
    "QUOTE": "linked_field",
}
PROGRAM_ACTIONS = ("ppaction://program", "ppaction://macro", "ppaction://ole")
AUTO_NAMES = re.compile(r"^(_xlnm\.)?auto_(open|close|activate|deactivate)", re.IGNORECASE)
_DDE_FORMULA = re.compile(r"\|")
_DDE_WORD = re.compile(r"\bDDE(AUTO)?\b", re.IGNORECASE)

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    dtd_validation=False,
    collect_ids=False,
)
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def parse_xml(untrusted_xml: bytes, name: str) -> etree._Element:
    """Parse one part without DTD, entities or network; a DTD is refused outright."""
    try:
        root = etree.fromstring(untrusted_xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SanitizeError(Reason.MALFORMED, f"{name}: {str(exc)[:80]}") from exc
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise SanitizeError(Reason.MALFORMED, f"{name}: DTD")
    return root


def is_element(node: etree._Element) -> bool:
    """False for comments, processing instructions and entity references."""
    return not isinstance(node, etree._Comment | etree._ProcessingInstruction | etree._Entity)


def serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def read_package(untrusted_data: bytes, policy: CdrPolicy) -> dict[str, bytes]:
    """Every file of the zip, bounded by the ZIP limits; names normalised, case-unique."""
    if olescan.is_ole(untrusted_data):
        if olescan.is_encrypted(untrusted_data):
            raise SanitizeError(Reason.ENCRYPTED, "EncryptedPackage")
        raise SanitizeError(Reason.MALFORMED, "OLE file, not OOXML")
    try:
        archive = zipfile.ZipFile(io.BytesIO(untrusted_data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise SanitizeError(Reason.MALFORMED, f"zip: {exc}"[:100]) from exc
    if len(infos) > policy.zip_max_entries:
        raise LimitExceeded(Reason.LIMIT_ENTRIES, f"{len(infos)} entries")
    parts: dict[str, bytes] = {}
    seen: set[str] = set()
    declared = 0
    with archive:
        for info in infos:
            name = info.filename
            if info.is_dir():
                continue
            if (
                not name
                or name.startswith("/")
                or "\\" in name
                or "\x00" in name
                or any(seg in ("", ".", "..") for seg in name.split("/"))
            ):
                raise SanitizeError(Reason.PATH_TRAVERSAL, repr(name)[:80])
            if name.lower() in seen:
                raise SanitizeError(Reason.MALFORMED, f"duplicate part {name!r}"[:80])
            seen.add(name.lower())
            if info.flag_bits & 0x1:
                raise SanitizeError(Reason.ENCRYPTED, "encrypted zip entry")
            declared += info.file_size
            if declared > policy.zip_max_total_bytes or info.file_size > policy.max_file_bytes:
                raise LimitExceeded(Reason.LIMIT_SIZE, "uncompressed size")
            if info.file_size >= policy.zip_ratio_min_bytes and (
                info.compress_size == 0
                or info.file_size / info.compress_size > policy.zip_max_ratio
            ):
                raise LimitExceeded(Reason.LIMIT_RATIO, name[:80])
            try:
                with archive.open(info) as stream:
                    content = stream.read(info.file_size + 1)
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
                raise SanitizeError(Reason.MALFORMED, f"{name}: {exc}"[:100]) from exc
            if len(content) != info.file_size:
                raise SanitizeError(Reason.MALFORMED, f"{name}: size mismatch"[:100])
            parts[name] = content
    return parts


def rels_name(part: str) -> str:
    head, tail = posixpath.split(part)
    return posixpath.join(head, "_rels", f"{tail}.rels")


@dataclass
class Rel:
    rid: str
    rtype: str
    target: str
    external: bool

    @property
    def short_type(self) -> str:
        return self.rtype.rstrip("/").rsplit("/", 1)[-1]


def resolve(source: str, target: str) -> str | None:
    """The part a relative target names, or None when it leaves the package."""
    target = unquote(target.split("#", 1)[0])
    if not target:
        return None
    if target.startswith("/"):
        joined = target.lstrip("/")
    else:
        joined = posixpath.join(posixpath.dirname(source), target)
    normal = posixpath.normpath(joined)
    if normal.startswith("../") or normal in ("..", "."):
        return None
    return normal


def parse_rels(data: bytes, name: str) -> list[Rel]:
    root = parse_xml(data, name)
    rels = []
    for elem in root:
        if not is_element(elem) or etree.QName(elem).localname != "Relationship":
            continue
        rid, rtype, target = elem.get("Id"), elem.get("Type"), elem.get("Target")
        if not rid or not rtype or target is None:
            continue
        rels.append(Rel(rid, rtype, target, (elem.get("TargetMode") or "") == "External"))
    return rels


class ContentTypes:
    def __init__(self, data: bytes) -> None:
        root = parse_xml(data, CONTENT_TYPES)
        self.defaults: dict[str, str] = {}
        self.overrides: dict[str, str] = {}
        for elem in root:
            if not is_element(elem):
                continue
            local = etree.QName(elem).localname
            ctype = (elem.get("ContentType") or "").strip()
            if local == "Default" and elem.get("Extension"):
                self.defaults[(elem.get("Extension") or "").lower()] = ctype
            elif local == "Override" and elem.get("PartName"):
                self.overrides[(elem.get("PartName") or "").lstrip("/").lower()] = ctype

    def of(self, part: str) -> str:
        found = self.overrides.get(part.lower())
        if found is None:
            ext = posixpath.splitext(part)[1].lstrip(".").lower()
            found = self.defaults.get(ext, "")
        return found


VML_TYPE = "application/vnd.openxmlformats-officedocument.vmldrawing"


def is_xml_type(ctype: str) -> bool:
    low = ctype.lower()
    return low.endswith("+xml") or low in ("application/xml", "text/xml", VML_TYPE)


def is_media_type(ctype: str) -> bool:
    low = ctype.lower()
    return low.startswith(MEDIA_PREFIXES) or low in MEDIA_TYPES


@dataclass
class Rebuild:
    """The state of one rebuild."""

    parts: dict[str, bytes]
    types: ContentTypes
    removed: list[str] = field(default_factory=list)
    kept_rels: dict[str, list[Rel]] = field(default_factory=dict)
    dropped_ids: dict[str, set[str]] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)  # part -> content type
    removed_sheets: set[str] = field(default_factory=set)
    policy: CdrPolicy = field(default_factory=CdrPolicy)
    level: int = 0
    nested: dict[str, bytes] = field(default_factory=dict)  # rebuilt embedded packages

    def note(self, code: str) -> None:
        if code not in self.removed:
            self.removed.append(code)


def classify(rel: Rel, target: str | None, ctype: str) -> str | None:
    """The code a relationship is dropped with, "" to drop silently, None to keep."""
    short = rel.short_type
    if rel.external:
        return (
            "hyperlink" if short == "hyperlink" else REL_CODES.get(short, "external_relationship")
        )
    if short in REL_CODES:
        return REL_CODES[short]
    if short == "officeDocument" and target is not None:
        return None  # the main part: its macro-enabled type is converted, not dropped
    if short in SILENT_REL_TYPES:
        return ""
    low = ctype.lower()
    if low in DANGEROUS_CT:
        return DANGEROUS_CT[low]
    if "macroenabled" in low or "vbaproject" in low:
        return "vba"
    if target is None:
        return ""
    if target.lower().startswith(("customui/",)):
        return "custom_ui"
    return None


def walk(state: Rebuild) -> str:
    """Walk relationships from the root; fill ``kept``/``kept_rels``; return the main part."""
    main: str | None = None
    queue = [""]
    visited = {""}
    while queue:
        source = queue.pop(0)
        name = "_rels/.rels" if source == "" else rels_name(source)
        data = state.parts.get(name)
        if data is None:
            continue
        kept: list[Rel] = []
        dropped: set[str] = set()
        for rel in parse_rels(data, name):
            target = None if rel.external else resolve(source, rel.target)
            if target is not None and target not in state.parts:
                target = None
            ctype = state.types.of(target) if target else ""
            is_main = source == "" and rel.short_type == "officeDocument" and target is not None
            code = None if is_main else classify(rel, target, ctype)
            binary = target is not None and not is_xml_type(ctype)
            if code is None and binary and not is_main and not is_media_type(ctype):
                code = "unknown_part"
            if code is None and target is None:
                code = ""
            if code is None and target is not None and ctype.lower() == VML_TYPE:
                code = _vml_verdict(state.parts[target], target)
            if code == "embedded_package" and target is not None:
                code = _nested_verdict(state, target, ctype)
            if code is not None:
                dropped.add(rel.rid)
                if code:
                    state.note(code)
                continue
            assert target is not None
            kept.append(Rel(rel.rid, rel.rtype, target, False))
            if source == "" and rel.short_type == "officeDocument" and main is None:
                main = target
            if target not in visited:
                visited.add(target)
                state.kept[target] = ctype
                queue.append(target)
        state.kept_rels[source] = kept
        state.dropped_ids[source] = dropped
    if main is None:
        raise SanitizeError(Reason.UNSUPPORTED_TYPE, "no officeDocument relationship")
    return main


def _nested_verdict(state: Rebuild, target: str, ctype: str) -> str | None:
    """An embedded macro-free OOXML package (a chart's data workbook, an embedded document)
    is rebuilt by the same rules, up to ``NESTED_MAX`` levels deep; what is removed inside
    it is reported for the outer file. Anything else, or a nested package that cannot be
    rebuilt, is dropped (``embedded_package``)."""
    if ctype.lower() not in NESTED_TYPES or state.level >= NESTED_MAX:
        return "embedded_package"
    try:
        package = rebuild_package(state.parts[target], state.policy, state.level + 1)
    except SanitizeError:
        return "embedded_package"
    state.nested[target] = package.data
    for code in package.removed:
        state.note(code)
    return None


def _vml_verdict(untrusted_xml: bytes, name: str) -> str | None:
    """VML (legacy drawings: comment boxes, form controls, OLE previews) is rebuilt like
    any XML part when it parses; Office often writes VML that is not well-formed, and such
    a part is dropped (with its references), not the whole file."""
    try:
        parse_xml(untrusted_xml, name)
    except SanitizeError:
        return ""
    return None


def _unwrap(elem: etree._Element) -> None:
    parent = elem.getparent()
    if parent is None:
        return
    index = parent.index(elem)
    for offset, child in enumerate(list(elem)):
        parent.insert(index + offset, child)
    _remove(elem)


def _remove(elem: etree._Element) -> None:
    parent = elem.getparent()
    if parent is None:
        return
    if elem.tail:
        previous = elem.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + elem.tail
        else:
            parent.text = (parent.text or "") + elem.tail
    parent.remove(elem)


def _ancestor(elem: etree._Element, localname: str) -> etree._Element | None:
    node = elem.getparent()
    while node is not None:
        if is_element(node) and etree.QName(node).localname == localname:
            return node
        node = node.getparent()
    return None


_REF_ATTRIBUTES = etree.XPath(
    "//@*[namespace-uri()=$r or namespace-uri()=$rs"
    " or (namespace-uri()=$o and local-name()='relid')]"
)


def drop_references(root: etree._Element, dropped: set[str], state: Rebuild) -> None:
    """Remove what refers to a dropped relationship id (see ``REMOVE_ELEMENT``)."""
    if not dropped:
        return
    doomed: list[tuple[etree._Element, str]] = []
    # Relationship references: any attribute in the r: namespace (transitional or strict),
    # and VML's o:relid. XPath finds them in C; each result knows its element and name.
    found: Any = _REF_ATTRIBUTES(root, r=R_NS, rs=R_STRICT_NS, o=O_NS)
    for value in found:
        if str(value) not in dropped:
            continue
        elem = value.getparent()
        local = etree.QName(elem).localname
        if local in REMOVE_ELEMENT:
            doomed.append((elem, local))
        elif value.attrname in elem.attrib:
            del elem.attrib[value.attrname]
    for elem, local in doomed:
        if local == "hyperlink" and etree.QName(elem).namespace == W_NS:
            _unwrap(elem)
            continue
        if local == "sheet" and elem.get("name"):
            state.removed_sheets.add(str(elem.get("name")))
        if local == "oleObj":
            frame = _ancestor(elem, "graphicFrame")
            if frame is not None and frame.getparent() is not None:
                _remove(frame)
                continue
        if elem.getparent() is not None:
            _remove(elem)


_CONTAINER_TAGS = tuple(f"{{*}}{name}" for name in sorted(EMPTY_CONTAINERS))


def drop_empty_containers(root: etree._Element) -> None:
    # Innermost first, so a container emptied by removing an empty child goes too.
    for elem in reversed(list(root.iter(*_CONTAINER_TAGS))):
        if len(elem) == 0 and elem.getparent() is not None:
            _remove(elem)


def _field_code(instruction: str) -> str | None:
    words = instruction.replace('"', " ").split()
    if not words:
        return None
    return FIELD_DANGER.get(words[0].upper())


def _w(local: str) -> str:
    return f"{{{W_NS}}}{local}"


@dataclass
class _Field:
    """One complex field being read: its instruction text and the runs that carry it."""

    instr: list[str] = field(default_factory=list)
    instr_runs: list[etree._Element] = field(default_factory=list)
    markers: list[etree._Element] = field(default_factory=list)
    in_result: bool = False


def disarm_fields(root: etree._Element, state: Rebuild) -> None:
    """Remove DDE/LINK/INCLUDE*/IMPORT fields from a WordprocessingML part, keeping the last
    shown result. Both simple fields and complex (begin/separate/end) fields, nested."""
    for simple in list(root.iter(_w("fldSimple"))):
        code = _field_code(simple.get(_w("instr")) or "")
        if code:
            state.note(code)
            _unwrap(simple)

    if next(root.iter(_w("fldChar")), None) is None:
        return
    stack: list[_Field] = []
    doomed: list[etree._Element] = []
    for run in list(root.iter(_w("r"))):
        char = run.find(_w("fldChar"))
        kind = char.get(_w("fldCharType")) if char is not None else None
        if kind == "begin":
            for outer in stack:
                if not outer.in_result:
                    outer.instr_runs.append(run)
            stack.append(_Field(markers=[run]))
            continue
        if kind in ("separate", "end") and stack:
            current = stack[-1]
            current.markers.append(run)
            for outer in stack[:-1]:
                if not outer.in_result:
                    outer.instr_runs.append(run)
            if kind == "separate":
                current.in_result = True
                continue
            stack.pop()
            instruction = "".join(current.instr)
            code = _field_code(instruction)
            if stack and not stack[-1].in_result:
                stack[-1].instr.append(" " + instruction + " ")
            if code or _DDE_WORD.search(instruction):
                state.note(code or "dde")
                doomed.extend(current.markers)
                doomed.extend(current.instr_runs)
            continue
        if stack:
            texts = [t.text or "" for t in run if t.tag in (_w("instrText"), _w("delInstrText"))]
            for outer in stack:
                if not outer.in_result:
                    outer.instr_runs.append(run)
            if texts and not stack[-1].in_result:
                stack[-1].instr.append("".join(texts))
    for run in doomed:
        if run.getparent() is not None:
            _remove(run)


def disarm_sheet(root: etree._Element, state: Rebuild) -> None:
    for formula in list(root.iter(f"{{{S_NS}}}f")):
        if formula.text and _DDE_FORMULA.search(formula.text):
            state.note("dde")
            _remove(formula)


def disarm_workbook(root: etree._Element, state: Rebuild) -> None:
    for name in list(root.iter(f"{{{S_NS}}}definedName")):
        label = name.get("name") or ""
        text = name.text or ""
        refers_removed = any(
            f"{sheet}!" in text or f"'{sheet}'!" in text for sheet in state.removed_sheets
        )
        if AUTO_NAMES.match(label) or refers_removed or _DDE_FORMULA.search(text):
            if AUTO_NAMES.match(label):
                state.note("xlm_macro")
            elif _DDE_FORMULA.search(text):
                state.note("dde")
            _remove(name)


def disarm_actions(root: etree._Element, state: Rebuild) -> None:
    for local in ("hlinkClick", "hlinkHover", "hlinkMouseOver"):
        for link in list(root.iter(f"{{{A_NS}}}{local}")):
            action = (link.get("action") or "").strip().lower()
            if action.startswith(PROGRAM_ACTIONS):
                state.note("program_action")
                _remove(link)


def rebuild_part(part: str, ctype: str, state: Rebuild) -> bytes:
    raw = state.parts[part]
    root = parse_xml(raw, part)
    dropped = state.dropped_ids.get(part, set())
    # Only walk the tree when a dropped id can occur at all (often only printer settings,
    # referenced from one attribute, were dropped).
    if any(rid.encode() in raw or rid.encode("utf-16-le") in raw for rid in dropped):
        drop_references(root, dropped, state)
    namespace = etree.QName(root).namespace
    if namespace == W_NS:
        disarm_fields(root, state)
        for merge in list(root.iter(_w("mailMerge"))):
            state.note("data_connection")
            _remove(merge)
    elif namespace == S_NS:
        disarm_sheet(root, state)
        if etree.QName(root).localname == "workbook":
            disarm_workbook(root, state)
    disarm_actions(root, state)
    drop_empty_containers(root)
    return serialize(root)


def write_rels(rels: list[Rel], source: str) -> bytes:
    root = etree.Element(f"{{{PR_NS}}}Relationships", nsmap=cast(Any, {None: PR_NS}))
    base = posixpath.dirname(source)
    for rel in rels:
        elem = etree.SubElement(root, f"{{{PR_NS}}}Relationship")
        elem.set("Id", rel.rid)
        elem.set("Type", rel.rtype)
        elem.set("Target", posixpath.relpath(rel.target, base or "."))
    return serialize(root)


def write_content_types(kept: dict[str, str], main: str, main_type: str) -> bytes:
    root = etree.Element(f"{{{CT_NS}}}Types", nsmap=cast(Any, {None: CT_NS}))
    etree.SubElement(
        root,
        f"{{{CT_NS}}}Default",
        Extension="rels",
        ContentType=("application/vnd.openxmlformats-package.relationships+xml"),
    )
    etree.SubElement(root, f"{{{CT_NS}}}Default", Extension="xml", ContentType="application/xml")
    for part, ctype in kept.items():
        value = main_type if part == main else ctype
        etree.SubElement(root, f"{{{CT_NS}}}Override", PartName="/" + part, ContentType=value)
    return serialize(root)


def output_name(filename: str, extension: str) -> str:
    stem, _ext = posixpath.splitext(filename.replace("\\", "/").rsplit("/", 1)[-1])
    return (stem or "document") + extension


@dataclass(frozen=True)
class Package:
    """A rebuilt package."""

    data: bytes
    extension: str
    removed: tuple[str, ...]


def rebuild_package(untrusted_data: bytes, policy: CdrPolicy, level: int = 0) -> Package:
    """Rebuild one package (``level`` > 0: a package embedded in another one)."""
    parts = read_package(untrusted_data, policy)
    if CONTENT_TYPES not in parts:
        raise SanitizeError(Reason.MALFORMED, "no [Content_Types].xml")
    state = Rebuild(
        parts=parts, types=ContentTypes(parts[CONTENT_TYPES]), policy=policy, level=level
    )
    main = walk(state)
    main_ctype = state.kept.get(main, "")
    if main_ctype not in MAIN_TYPES:
        raise SanitizeError(Reason.UNSUPPORTED_TYPE, f"main part {main_ctype or '?'}"[:100])
    new_main_type, extension = MAIN_TYPES[main_ctype]
    # Orphans (parts no kept relationship reaches) are not copied; dangerous ones count.
    reached = set(state.kept) | {CONTENT_TYPES}
    for name in parts:
        if name in reached or name.endswith(".rels"):
            continue
        code = DANGEROUS_CT.get(state.types.of(name).lower())
        if code is None and "vbaproject" in name.lower():
            code = "vba"
        if code:
            state.note(code)
    out_parts: dict[str, bytes] = {}
    for part, ctype in state.kept.items():
        if part in state.nested:
            out_parts[part] = state.nested[part]
        elif is_xml_type(ctype):
            out_parts[part] = rebuild_part(part, ctype, state)
        else:
            out_parts[part] = parts[part]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:

        def put(name: str, content: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, content)

        put(CONTENT_TYPES, write_content_types(state.kept, main, new_main_type))
        put("_rels/.rels", write_rels(state.kept_rels.get("", []), ""))
        for part in parts:
            if part in out_parts:
                put(part, out_parts[part])
                rels = state.kept_rels.get(part)
                if rels:
                    put(rels_name(part), write_rels(rels, part))
    return Package(buffer.getvalue(), extension, tuple(state.removed))


class OoxmlSanitizer(CdrSanitizer):
    """Rebuilds an OOXML package without active content; see the module docstring."""

    kind: ClassVar[str] = "ooxml"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        package = rebuild_package(untrusted_data, ctx.policy)
        return rebuilt_outcome(
            package.removed,
            original=untrusted_data,
            rebuilt=package.data,
            filename=filename,
            rebuilt_name=output_name(filename, package.extension),
            content_type=OUTPUT_CONTENT_TYPES[package.extension],
            keep_if_clean=ctx.keep_if_clean,
        )

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        found = find_dangerous(data, ctx.policy)
        if found:
            raise SanitizeError(Reason.VERIFY_FAILED, ",".join(sorted(found)))


def _source_of(rels: str) -> str:
    head, tail = posixpath.split(rels)
    return posixpath.join(posixpath.dirname(head), tail[: -len(".rels")])


def find_dangerous(data: bytes, policy: CdrPolicy | None = None, level: int = 0) -> set[str]:
    """An independent look at a package: what oletools and a plain scan still find.
    Embedded packages are looked into the same way (up to ``NESTED_MAX`` levels)."""
    parts = read_package(data, policy or CdrPolicy())
    found: set[str] = set()
    if CONTENT_TYPES not in parts or "_rels/.rels" not in parts:
        return {"no_content_types"}
    types = ContentTypes(parts[CONTENT_TYPES])
    for ctype in [*types.overrides.values(), *types.defaults.values()]:
        low = ctype.lower()
        if low in DANGEROUS_CT:
            found.add(DANGEROUS_CT[low])
        elif "macroenabled" in low:
            found.add("vba")
    for name, content in parts.items():
        low = name.lower()
        nested = content[:4] == b"PK\x03\x04"
        if nested and level < NESTED_MAX:
            found |= {f"{name}>{item}" for item in find_dangerous(content, policy, level + 1)}
        elif nested:
            found.add("nested too deep:" + name)
        if "vbaproject" in low or "/activex/" in low or ("/embeddings/" in low and not nested):
            found.add("part:" + name)
        if "macrosheets/" in low or "customui/" in low:
            found.add("part:" + name)
        if olescan.is_ole(content):
            found.add("ole_object")
        if name.endswith(".rels"):
            for rel in parse_rels(content, name):
                if rel.external:
                    found.add("external_relationship")
                if rel.short_type == "package" and not rel.external:
                    target = resolve(_source_of(name), rel.target)
                    if target is None or parts.get(target, b"")[:4] != b"PK\x03\x04":
                        found.add("embedded_package")
                elif rel.short_type in REL_CODES:
                    found.add(REL_CODES[rel.short_type])
        elif low.endswith(".xml") and (b"instr" in content):
            text = content.decode("utf-8", "replace")
            for match in re.finditer(r"instr(?:Text)?[^>]*>([^<]*)<|w:instr=\"([^\"]*)\"", text):
                instruction = (match.group(1) or match.group(2) or "").strip()
                if _DDE_WORD.search(instruction):
                    found.add("dde")
        if low.endswith(".xml") and re.search(rb"ppaction://(program|macro|ole)", content, re.I):
            found.add("program_action")
    rels = parse_rels(parts["_rels/.rels"], "_rels/.rels")
    mains = [resolve("", r.target) for r in rels if r.short_type == "officeDocument"]
    if not mains or mains[0] is None or mains[0] not in parts:
        found.add("no_main_part")
    else:
        parse_xml(parts[mains[0]], mains[0])
    found |= olescan.macros(data, "file.zip")
    ole_parts, external = olescan.ooxml_scan(data)
    if ole_parts:
        found.add("ole_object")
    if external:
        found.add("external_relationship")
    return found
