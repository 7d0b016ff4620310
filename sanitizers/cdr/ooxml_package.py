"""The OOXML package layer: zip reading with limits, XML parsing, relationships, content
types, and the one place where ISO/IEC 29500 Strict and Transitional names are made one.

Threat model: the zip and every XML part are hostile (traversal names, duplicate names that
differ in case, bombs, encrypted entries, DTDs and entities, deep trees); the same document
may be written with the Strict namespaces (``http://purl.oclc.org/ooxml/...``) so that a
check for the Transitional name alone misses it. Every element test in the OOXML sanitizer
goes through :func:`tags` / :func:`canonical` here, which accept both spellings;
relationship types are compared by their last segment (:attr:`Rel.short_type`), which is
the same in both.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote

from lxml import etree

from sanitizers.cdr import olescan
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import LimitExceeded, Locked, SanitizeError
from sanitizers.vocabulary import Reason, RemovedItem

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
XLSB_MAIN = "application/vnd.ms-excel.sheet.binary.macroEnabled.main"
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
    # The binary workbook's main part is named macro-enabled whether or not it has macros.
    XLSB_MAIN: (XLSB_MAIN, ".xlsb"),
}
OUTPUT_CONTENT_TYPES = {
    ".docx": f"{_WML}.document",
    ".dotx": f"{_WML}.template",
    ".xlsx": f"{_SML}.sheet",
    ".xltx": f"{_SML}.template",
    ".pptx": f"{_PML}.presentation",
    ".ppsx": f"{_PML}.slideshow",
    ".potx": f"{_PML}.template",
    ".xlsb": "application/vnd.ms-excel.sheet.binary.macroEnabled.12",
}

# Relationship type (last segment, or a known suffix) → removed-item code.
REL_CODES: dict[str, RemovedItem] = {
    "vbaProject": RemovedItem.VBA,
    "wordVbaData": RemovedItem.VBA,
    "vbaProjectSignature": RemovedItem.VBA,
    "vbaProjectSignatureAgile": RemovedItem.VBA,
    "vbaProjectSignatureV3": RemovedItem.VBA,
    "keyMapCustomizations": RemovedItem.VBA,
    "attachedToolbars": RemovedItem.VBA,
    "xlMacrosheet": RemovedItem.XLM_MACRO,
    "xlIntlMacrosheet": RemovedItem.XLM_MACRO,
    "dialogsheet": RemovedItem.XLM_MACRO,
    "control": RemovedItem.ACTIVEX,
    "activeXControlBinary": RemovedItem.ACTIVEX,
    "activeXControl": RemovedItem.ACTIVEX,
    "oleObject": RemovedItem.OLE_OBJECT,
    "package": RemovedItem.EMBEDDED_PACKAGE,
    "aFChunk": RemovedItem.ALT_CHUNK,
    "extensibility": RemovedItem.CUSTOM_UI,
    "webextension": RemovedItem.WEB_EXTENSION,
    "webextensiontaskpanes": RemovedItem.WEB_EXTENSION,
    "connections": RemovedItem.DATA_CONNECTION,
    "queryTable": RemovedItem.DATA_CONNECTION,
    "externalLink": RemovedItem.EXTERNAL_LINK,
    "externalLinkPath": RemovedItem.EXTERNAL_LINK,
    "attachedTemplate": RemovedItem.EXTERNAL_RELATIONSHIP,
    "frame": RemovedItem.EXTERNAL_RELATIONSHIP,
    "subDocument": RemovedItem.EXTERNAL_RELATIONSHIP,
}
# Dropped without a report: harmless but opaque binary settings.
# (Digital signatures cannot survive a rebuild: they are dropped too.)
SILENT_REL_TYPES = frozenset({"printerSettings", "origin", "signature", "digital-signature"})

# Content types that are dangerous wherever they appear.
DANGEROUS_CT: dict[str, RemovedItem] = {
    "application/vnd.ms-office.vbaproject": RemovedItem.VBA,
    "application/vnd.ms-word.vbadata+xml": RemovedItem.VBA,
    "application/vnd.ms-office.vbaprojectsignature": RemovedItem.VBA,
    "application/vnd.ms-word.keymapcustomizations+xml": RemovedItem.VBA,
    "application/vnd.ms-word.attachedtoolbars": RemovedItem.VBA,
    "application/vnd.ms-excel.macrosheet+xml": RemovedItem.XLM_MACRO,
    "application/vnd.ms-excel.intlmacrosheet+xml": RemovedItem.XLM_MACRO,
    f"{_SML}.dialogsheet+xml".lower(): RemovedItem.XLM_MACRO,
    "application/vnd.ms-office.activex+xml": RemovedItem.ACTIVEX,
    "application/vnd.ms-office.activex": RemovedItem.ACTIVEX,
    "application/vnd.openxmlformats-officedocument.oleobject": RemovedItem.OLE_OBJECT,
    "application/vnd.ms-office.customui+xml": RemovedItem.CUSTOM_UI,
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

VML_TYPE = "application/vnd.openxmlformats-officedocument.vmldrawing"
_STRICT_PREFIX = "http://purl.oclc.org/ooxml/"
_TRANSITIONAL_PREFIX = "http://schemas.openxmlformats.org/"


def canonical(namespace: str | None) -> str:
    """The Transitional spelling of a namespace (Strict ``purl.oclc.org/ooxml/X/Y`` is
    Transitional ``schemas.openxmlformats.org/X/2006/Y``); others are returned unchanged."""
    if not namespace:
        return ""
    if namespace.startswith(_STRICT_PREFIX):
        head, _, tail = namespace[len(_STRICT_PREFIX) :].rpartition("/")
        return f"{_TRANSITIONAL_PREFIX}{head}/2006/{tail}"
    return namespace


def strict(namespace: str) -> str:
    """The Strict spelling of a Transitional namespace (the inverse of :func:`canonical`)."""
    rest = namespace.removeprefix(_TRANSITIONAL_PREFIX)
    head, _, tail = rest.rpartition("/")
    return _STRICT_PREFIX + head.removesuffix("/2006") + "/" + tail


def tags(namespace: str, *locals_: str) -> tuple[str, ...]:
    """Clark names of ``locals_`` in both spellings of ``namespace`` (for ``iter``/``find``)."""
    spellings = (namespace, strict(namespace))
    return tuple(f"{{{ns}}}{local}" for ns in spellings for local in locals_)


def is_named(elem: etree._Element, namespace: str, local: str) -> bool:
    """Whether ``elem`` is ``namespace:local`` in either spelling."""
    if not is_element(elem):
        return False
    name = etree.QName(elem)
    return name.localname == local and canonical(name.namespace) == namespace


def attribute(elem: etree._Element, namespace: str, local: str) -> str | None:
    """An attribute ``namespace:local`` in either spelling."""
    for ns in (namespace, strict(namespace)):
        value = elem.get(f"{{{ns}}}{local}")
        if value is not None:
            return str(value)
    return None


_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    dtd_validation=False,
    collect_ids=False,
)
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # zip entry dates of a rebuilt package


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
            raise Locked(Reason.ENCRYPTED, "EncryptedPackage")
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


# Binary parts kept (by content type prefix or exact type) once their content is checked.
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


def is_xml_type(ctype: str) -> bool:
    low = ctype.lower()
    return low.endswith("+xml") or low in ("application/xml", "text/xml", VML_TYPE)


def is_media_type(ctype: str) -> bool:
    low = ctype.lower()
    return low.startswith(MEDIA_PREFIXES) or low in MEDIA_TYPES


def remove(elem: etree._Element) -> None:
    """Remove ``elem``, keeping the text that followed it."""
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


def unwrap(elem: etree._Element) -> None:
    """Replace ``elem`` by its text and children."""
    parent = elem.getparent()
    if parent is None:
        return
    if elem.text:
        previous = elem.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + elem.text
        else:
            parent.text = (parent.text or "") + elem.text
    index = parent.index(elem)
    for offset, child in enumerate(list(elem)):
        parent.insert(index + offset, child)
    remove(elem)


def ancestor(elem: etree._Element, localname: str) -> etree._Element | None:
    node = elem.getparent()
    while node is not None:
        if is_element(node) and etree.QName(node).localname == localname:
            return node
        node = node.getparent()
    return None


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
