"""What an attachment really is: its kind from its content, checked against its name and type.

Threat model: the declared Content-Type and the file name are written by the sender and lie
when that helps the attack (``invoice.pdf.exe``, ``photo\\u202egpj.exe`` shown as
``photoexe.jpg``, ``report.pdf.`` that Windows opens as ``report.pdf``, an executable declared
``application/pdf``); the content may be built to confuse detectors (polyglots, truncated or
corrupt containers, archives with huge directories). So:

* The content decides the kind: libmagic on the first :data:`HEAD_BYTES` (and on
  :data:`DEEP_BYTES` when that finds nothing, for signatures deep inside such as ISO 9660's),
  plus a few signatures libmagic misses (VHD/VHDX, DMG, OneNote, CHM) and, for ZIP files, the
  central directory read in memory with :mod:`zipfile` (bounded, nothing extracted):
  ``[Content_Types].xml`` makes ``ooxml`` (docm/xlsm/pptm included), a ``mimetype`` entry
  with ``content.xml`` or a manifest makes ``odf`` (odt/ods/odp…), an OOXML package whose
  workbook is ``xl/workbook.bin`` makes ``xlsb``; a JAR, APK, APPX/MSIX,
  VSIX or IPA makes ``executable``; anything else is ``zip``.
* A name or declared type can only make a file more dangerous, never less: an executable,
  script, shortcut, installer or disk-image extension (:data:`EXECUTABLE_EXTENSIONS`) or
  declared type makes the kind ``executable`` whatever the content; text declared or named as
  HTML is ``html`` (mail clients render by declaration).
* ``mismatch`` is set when the declared type (``application/octet-stream`` and unknown types
  declare nothing) or the extension maps to another kind than the content, and when the name
  plays tricks: bidi controls or other invisible format characters, control characters (a NUL
  that cuts the name in C code), trailing dots or spaces, or an NTFS stream (``a.pdf:x.exe``);
  and when the declared type is not a valid MIME type (it is then neither compared nor quoted:
  ``detail`` quotes nothing from the message but a valid type token and a plain extension).
  Extensions are compared lower-cased after removing invisible characters and trailing dots
  and spaces, as Windows does; every candidate name (before a NUL, before a colon) is checked.
* Never raises: a libmagic failure gives kind ``other`` (or more dangerous by name) with the
  failure in ``detail`` and ``mismatch`` set, so the caller fails closed.

Text that is a script by its content (``#!`` shells, batch files) is ``executable``; scripts
that libmagic sees only as text (PowerShell, VBScript, JScript) are caught by their extension,
and delivered as ``.txt`` (:mod:`sanitizers.filenames`) when the name hides it. Text that an
application opens as an active format whatever it is called is its own kind, decided by its
content (:data:`_ACTIVE_TEXT`): RTF (Word reads ``{\rt``), SVG, HTA, Remote Desktop files,
Excel web queries, shortcuts, registry files and script components (``executable``), Office
XML such as SpreadsheetML and SYLK (``other``: nothing disarms them).
Empty data has kind ``other`` (or ``executable`` by name) and no content to disagree with.

Only this module imports python-magic. libmagic handles are not thread-safe: one handle per
process is used under a lock (and replaced in a forked child).
"""

from __future__ import annotations

import io
import os
import re
import threading
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import Final

import magic

from sanitizers.safetext import C0, C1
from sanitizers.vocabulary import FileKind

__all__ = [
    "DEEP_BYTES",
    "EXECUTABLE_EXTENSIONS",
    "HEAD_BYTES",
    "KINDS",
    "TypeInfo",
    "detect",
    "extension_kind",
    "kind_of_mime",
]

KINDS: Final = tuple(kind.value for kind in FileKind)

# Measured on the 3,644 files of ../shared/corpus: libmagic on the first 8 KiB, and on 64 KiB
# when that says only application/octet-stream, gives the same kind as libmagic on the whole
# file for all but one (a mail libmagic misses when it sees the whole file). 8 KiB alone misses
# ISO 9660 images (signature at 32 KiB); 64 KiB for everything costs up to 5 ms on text, where
# libmagic spends about 1 ms per 8 KiB. Mean cost of detect() over the corpus: about 2 ms.
HEAD_BYTES: Final = 8 * 1024
DEEP_BYTES: Final = 64 * 1024


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Zip central directories larger than this are not read (an OOXML file has a few dozen entries).
_MAX_ZIP_ENTRIES: Final = 10_000
_MAX_ZIP_DIRECTORY_BYTES: Final = 4 * 1024 * 1024
_EOCD: Final = b"PK\x05\x06"
_EOCD_SEARCH: Final = 22 + 0xFFFF  # the record and the longest comment

# Extensions that run, install, mount or open something with code: Outlook's blocked-attachment
# list (level 1) without certificates and cabinets (an archive kind), plus scripts, Unix,
# macOS, mobile and app packages, disk images and OneNote. An extension here makes the kind
# "executable" whatever the content. Also the text formats that connect or fetch when opened:
# Remote Desktop (rdp), Excel web and database queries (iqy, dqy, oqy, rqy) and SYLK (slk,
# whose cells run DDE).
EXECUTABLE_EXTENSIONS: Final = frozenset(
    _words("""
    ade adp app appcontent-ms appref-ms application appx appxbundle apk asp aspx bas bash bat
    bgi chm cmd cnt com command cpl csh deb desktop diagcab dll dmg dqy drv exe fxp gadget grp
    hlp hpj hta htc img inf ins ipa iqy iso isp its jar jnlp js jse ksh library-ms lnk mad maf
    mag mam maq mar mas mat mau mav maw mcf mda mdb mde mdt mdw mdz msc msh msh1 msh1xml msh2
    msh2xml mshxml msi msix msixbundle msp mst msu ocx one onepkg ops oqy osd pcd pif pkg pl
    plg prf prg printerexport ps1 ps1xml ps2 ps2xml psc1 psc2 psd1 psdm1 psm1 py pyc pyo pyw
    pyz pyzw rdp reg rpm rqy run scf scr sct search-ms searchconnector-ms settingcontent-ms sh
    shb shs slk sys theme themepack deskthemepack tmp url vb vbe vbp vbs vhd vhdx vsix
    vsmacros vsw webpnp website ws wsb wsc wsf wsh xbap xll xnk zsh
    """)
)
_PLAIN_EXTENSION: Final = re.compile(r"[a-z0-9_{}+~-]{1,40}")
# A CLSID as an "extension" (file.{3050f4d8-98b5-11cf-bb82-00aa00bdce0b}) runs its handler.
# A name read the way a program that stops at the first control character reads it.
_CONTROLS: Final = re.compile(f"[{re.escape(C0 + C1)}]")
_CLSID_EXTENSION: Final = re.compile(r"\{[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\}")

_EXTENSION_KINDS: Final = {
    **dict.fromkeys(
        _words("""docx docm dotx dotm xlsx xlsm xltx xltm xlam pptx pptm potx potm ppsx
        ppsm ppam sldx sldm vsdx vsdm vstx vstm"""),
        "ooxml",
    ),
    **dict.fromkeys(_words("doc dot xls xlt xla ppt pot pps vsd pub mpp"), "ole"),
    "msg": "msg",
    "tnef": "tnef",
    # 一太郎 documents and templates: current (jtd, jtt, compressed jtdc, jttc) and older
    # generations (jfw, jvw, jsw, jaw, jtw, jbw, juw).
    **dict.fromkeys(_words("jtd jtt jtdc jttc jfw jvw jsw jaw jtw jbw juw"), "ichitaro"),
    "rtf": "rtf",
    "pdf": "pdf",
    **dict.fromkeys(_words("png jpg jpeg jpe jfif gif bmp dib tif tiff webp"), "image"),
    **dict.fromkeys(_words("svg svgz"), "svg"),
    **dict.fromkeys(_words("zip epub"), "zip"),
    "xlsb": "xlsb",
    **dict.fromkeys(_words("odt ods odp odg odf odc odb odm ott ots otp otg"), "odf"),
    **dict.fromkeys(
        _words("7z rar gz tgz bz2 tbz tbz2 xz txz tar arj lzh lha cpio zst lz lzma z ace"),
        "archive",
    ),
    **dict.fromkeys(_words("txt text csv tsv log md ics vcf json xml"), "text"),
    **dict.fromkeys(_words("html htm xhtml shtml"), "html"),
    **dict.fromkeys(_words("eml mht mhtml"), "message"),
    **dict.fromkeys(EXECUTABLE_EXTENSIONS, "executable"),
}

# Content types, lower-case and without parameters.
_MIME_KINDS: Final = {
    **dict.fromkeys(
        _words("""application/x-ole-storage application/cdfv2 application/msword
        application/vnd.ms-excel application/vnd.ms-powerpoint application/vnd.ms-office
        application/vnd.visio application/vnd.ms-project application/x-mspublisher"""),
        "ole",
    ),
    # libmagic's "CDFV2 Encrypted": a compound file holding an EncryptedPackage, which only
    # password-protected OOXML documents are (legacy Office encrypts inside its own streams).
    "application/encrypted": "ooxml",
    **dict.fromkeys(_words("text/rtf application/rtf"), "rtf"),
    **dict.fromkeys(_words("application/pdf application/x-pdf"), "pdf"),
    **dict.fromkeys(_words("application/ms-tnef application/vnd.ms-tnef"), "tnef"),
    "application/vnd.ms-outlook": "msg",
    **dict.fromkeys(
        _words("""application/x-js-taro application/x-ichitaro4 application/x-ichitaro5
        application/x-ichitaro6"""),
        "ichitaro",
    ),
    **dict.fromkeys(
        _words("""image/png image/jpeg image/pjpeg image/gif image/bmp image/x-bmp image/x-ms-bmp
        image/tiff image/webp"""),
        "image",
    ),
    **dict.fromkeys(_words("image/svg+xml image/svg"), "svg"),
    "application/vnd.ms-excel.sheet.binary.macroenabled.12": "xlsb",
    **dict.fromkeys(
        _words(
            "application/zip application/x-zip application/x-zip-compressed application/epub+zip"
        ),
        "zip",
    ),
    **dict.fromkeys(
        _words("""application/x-7z-compressed application/x-rar application/x-rar-compressed
        application/vnd.rar application/gzip application/x-gzip application/x-bzip2
        application/x-bzip application/x-xz application/x-tar application/x-gtar
        application/vnd.ms-cab-compressed application/x-arj application/arj
        application/x-lzh-compressed application/x-lha application/x-lzh application/x-cpio
        application/zstd application/x-zstd application/x-lzip application/x-lzma
        application/x-compress application/x-ace-compressed application/x-archive
        application/x-lz4 application/x-stuffit"""),
        "archive",
    ),
    **dict.fromkeys(_words("text/html application/xhtml+xml"), "html"),
    **dict.fromkeys(_words("application/json application/xml application/csv"), "text"),
    **dict.fromkeys(
        _words("""application/x-dosexec application/vnd.microsoft.portable-executable
        application/x-msdownload application/x-msdos-program application/x-ms-ne-executable
        application/x-executable application/x-sharedlib application/x-pie-executable
        application/x-object application/x-mach-binary application/x-java-applet
        application/java-archive application/x-java-archive application/java-vm
        application/vnd.android.package-archive application/x-ms-shortcut
        application/x-mswinurl application/x-iso9660-image application/x-apple-diskimage
        application/x-msi application/x-ms-installer application/vnd.ms-msi
        application/vnd.ms-htmlhelp application/x-chm application/wasm
        application/x-ms-application application/x-virtualbox-vhd application/x-virtualbox-vhdx
        application/x-bytecode.python application/hta application/x-sh application/x-shellscript
        application/x-bat application/javascript application/x-javascript application/ecmascript
        application/x-vbscript application/x-powershell application/x-setupscript
        application/onenote application/msonenote
        text/x-shellscript text/x-sh text/x-msdos-batch text/x-python text/x-perl text/x-ruby
        text/x-php text/x-tcl text/x-lua text/x-awk text/javascript text/ecmascript
        text/vbscript text/vbs text/x-ms-regedit text/x-powershell"""),
        "executable",
    ),
}
_MIME_PREFIX_KINDS: Final = (
    ("application/vnd.openxmlformats-officedocument.", "ooxml"),
    ("application/vnd.oasis.opendocument.", "odf"),
    ("text/x-script.", "executable"),
    ("message/", "message"),
    ("text/", "text"),
    ("image/", "other"),
)
# Declarations that say nothing about the content.
_DECLARES_NOTHING: Final = frozenset(
    _words("""application/octet-stream binary/octet-stream application/binary application/unknown
    application/x-unknown application/force-download application/download""")
)
_MIME_TYPE: Final = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
# Declarations that are also consistent with text: browsers declare CSV as Excel.
_TEXT_ALSO: Final = frozenset({"application/vnd.ms-excel"})

# Containers that libmagic does not recognise from the head but that mount or run: (offset from
# the start, or from the end when negative; signature).
_SIGNATURES: Final = (
    (0, b"vhdxfile"),  # Hyper-V disk
    (0, b"conectix"),  # VHD, dynamic (a copy of the footer at the start)
    (-512, b"conectix"),  # VHD, fixed (footer only)
    (-512, b"koly"),  # Apple disk image (UDIF trailer)
    (0, bytes.fromhex("e4525c7b8cd8a74daeb15378d02996d3")),  # OneNote section
    (0, b"ITSF\x03\x00\x00\x00"),  # compiled HTML help (CHM)
)

# Text that an application opens as something active whatever its name (libmagic says
# text/plain, text/xml or text/html for most): (kind, pattern on the lower-cased start of the
# text, read as UTF-8 or, after a byte-order mark, UTF-16). The first that matches decides.
# Patterns start with a literal where they can: this runs on every text attachment.
_ACTIVE_TEXT: Final = (
    ("rtf", re.compile(rb"\A\s*\{\\rt")),  # Word takes "{\rt" for RTF, objects and all
    # An SVG document: <svg> is the root, after any XML declaration, comments and doctype
    # (an inline <svg> inside HTML is HTML's business).
    (
        "svg",
        re.compile(rb"\A(?:\s|<\?[^>]*>|<!--.*?-->|<!doctype[^>]*>)*<(?:[\w.-]+:)?svg[\s>/]", re.S),
    ),
    ("executable", re.compile(rb"<hta:application[\s>/]")),
    # Remote Desktop connections (.rdp): a host to connect to, a program to start there.
    (
        "executable",
        re.compile(
            rb"(?:full address|alternate shell|remoteapplicationprogram|gatewayhostname):[is]:"
        ),
    ),
    # Excel web and database queries (.iqy, .dqy): fetched and run when opened.
    ("executable", re.compile(rb"\A\s*(?:web|xlodbc)[ \t]*\r?\n[ \t]*1[ \t]*\r?\n")),
    # Internet and shell shortcuts, desktop entries (.url, .scf, .desktop, desktop.ini).
    ("executable", re.compile(rb"\[(?:internetshortcut|shell|desktop entry|\.shellclassinfo)\]")),
    ("executable", re.compile(rb"\A\s*(?:windows registry editor version|regedit4)")),
    # Script components, settings shortcuts, library and search-connector descriptions.
    (
        "executable",
        re.compile(
            rb"<(?:scriptlet|pcsettings|librarydescription|searchconnectordescription)[\s>]"
        ),
    ),
    # Office documents written as XML or SYLK (Word 2003 XML, SpreadsheetML with DDE formulas):
    # Office opens them by content; nothing here disarms them.
    ("other", re.compile(rb"<\?mso-application[\s?]")),
    ("other", re.compile(rb"urn:schemas-microsoft-com:office:(?:spreadsheet|word)")),
    ("other", re.compile(rb"schemas\.microsoft\.com/office/word/2003/wordml")),
    ("other", re.compile(rb"\Aid;p")),
)

# Outlook's TNEF stream (winmail.dat) and compound files (OLE2/CFB), with the root entries that
# tell an Outlook message and a 一太郎 document from legacy Office.
_TNEF_SIGNATURE: Final = b"\x78\x9f\x3e\x22"
_OLE_MAGIC: Final = bytes.fromhex("d0cf11e0a1b11ae1")
_MAX_OLE_ROOT_ENTRIES: Final = 10_000
_MSG_PROPERTIES: Final = "__properties_version1.0"
_MSG_PROPERTY: Final = "__substg1.0_"
_ICHITARO_TEXT: Final = "DocumentText"
_ICHITARO_TEXT_MAGIC: Final = b"SsmgV.01"
# 一太郎 before the compound-file generations (versions 4 to 6: .jsw, .jaw, .jbw and their
# templates .jtw, .juw, which libmagic does not know): "DOC", five NULs, eight spaces.
_ICHITARO_OLD: Final = b"DOC" + bytes(5) + b" " * 8
_ICHITARO_COMPRESSED: Final = "JSCompDocument"

# Entries that make a ZIP something that installs or runs.
_ZIP_EXECUTABLE_ENTRIES: Final = frozenset(
    {
        "appxmanifest.xml",
        "appxmetadata/appxbundlemanifest.xml",
        "extension.vsixmanifest",
        "androidmanifest.xml",
    }
)


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """The detected kind of one attachment (one of :data:`KINDS`)."""

    kind: str
    detected_mime: str  # from libmagic on the content, lower-case
    mismatch: bool  # the declared type or the name disagrees with the content, or the name lies
    # Human-readable when mismatch, e.g. "declared application/pdf, extension .pdf, content
    # application/vnd.microsoft.portable-executable", then any tricks found in the name.
    detail: str


def detect(untrusted_data: bytes, declared_type: str, filename: str | None) -> TypeInfo:
    """The kind of ``untrusted_data``; see the module docstring. Never raises."""
    name = _examine_name(filename)
    declared, invalid = _declared_mime(declared_type)
    content_mime, problem = _libmagic_mime(untrusted_data)
    content_kind = _content_kind(untrusted_data, content_mime)
    declared_claim = _claimed_kind(declared, content_kind)
    claims = [claim for claim in (declared_claim, extension_kind(name.extension)) if claim]
    if name.dangerous:
        claims.append("executable")
    kind = _final_kind(content_kind, claims)
    disagree = bool(untrusted_data) and any(not _agrees(claim, content_kind) for claim in claims)
    notes = [note for note in (*name.notes, invalid, problem) if note]
    if not (disagree or notes):
        return TypeInfo(kind, content_mime, False, "")
    extension = _shown_extension(name.extension)
    facts = f"declared {declared or 'nothing'}, extension {extension}, content {content_mime}"
    return TypeInfo(kind, content_mime, True, "; ".join([facts, *notes]))


# --- names -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Name:
    extension: str  # lower-case, without the dot; "" when there is none
    dangerous: bool  # an executable extension on any reading of the name
    notes: tuple[str, ...]  # tricks found in the name


def _examine_name(untrusted_filename: str | None) -> _Name:
    if not untrusted_filename:
        return _Name("", False, ())
    base = re.split(r"[\\/]", untrusted_filename.rstrip("\\/"))[-1]
    notes: list[str] = []
    if any(unicodedata.category(char) == "Cf" for char in base):
        notes.append("invisible or bidi control characters in the file name")
        base = "".join(char for char in base if unicodedata.category(char) != "Cf")
    readings = [base]
    if any(unicodedata.category(char) == "Cc" for char in base):
        notes.append("control characters in the file name")
        readings.append(_CONTROLS.split(base)[0])
    if ":" in base:
        notes.append("a colon (NTFS stream) in the file name")
        readings.append(base.split(":")[0])
    if base != base.rstrip(". "):
        notes.append("trailing dots or spaces in the file name")
    extensions = [_extension(reading) for reading in readings]
    dangerous = any(_is_executable_extension(extension) for extension in extensions)
    return _Name(extensions[0], dangerous, tuple(notes))


def _extension(name: str) -> str:
    _stem, dot, extension = name.rstrip(". ").rpartition(".")
    return extension.strip().lower() if dot else ""


def extension_kind(extension: str) -> str | None:
    """The kind an extension (lower-case, without the dot) claims, or None."""
    if _is_executable_extension(extension):
        return "executable"
    return _EXTENSION_KINDS.get(extension)


def _shown_extension(extension: str) -> str:
    """The extension as ``detail`` may quote it: only a plain ASCII token, never raw name text."""
    if not extension:
        return "none"
    return f".{extension}" if _PLAIN_EXTENSION.fullmatch(extension) else "(unusual characters)"


def _is_executable_extension(extension: str) -> bool:
    return extension in EXECUTABLE_EXTENSIONS or bool(_CLSID_EXTENSION.fullmatch(extension))


# --- declared types --------------------------------------------------------------------------


def _declared_mime(untrusted_declared: str) -> tuple[str, str]:
    """The declared type, lower-case without parameters ("" when it declares nothing), and a
    note when it is not a valid type (which is then neither compared nor repeated)."""
    mime = untrusted_declared.split(";", 1)[0].strip(" \t\r\n").lower()
    if not mime or mime in _DECLARES_NOTHING:
        return "", ""
    if not _MIME_TYPE.fullmatch(mime):
        return "", "the declared type is not a valid MIME type"
    return mime, ""


def _claimed_kind(declared: str, content_kind: str) -> str | None:
    """The kind the declaration claims; ``None`` when it declares nothing or nothing known."""
    if not declared:
        return None
    if declared in _TEXT_ALSO and content_kind == "text":
        return "text"
    return kind_of_mime(declared)


def kind_of_mime(mime: str) -> str | None:
    kind = _MIME_KINDS.get(mime)
    if kind is not None:
        return kind
    if "macroenabled" in mime:  # application/vnd.ms-word.document.macroenabled.12 and kin
        return "ooxml"
    for prefix, prefixed_kind in _MIME_PREFIX_KINDS:
        if mime.startswith(prefix):
            return prefixed_kind
    return None


# --- content ---------------------------------------------------------------------------------


class _LibMagic:
    """One libmagic handle per process, used under a lock (python-magic is not thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handle: magic.Magic | None = None

    def reset(self) -> None:
        """In a forked child: the parent's lock may be held by a thread that does not exist."""
        self._lock = threading.Lock()
        self._handle = None

    def mime(self, data: bytes) -> str:
        with self._lock:
            if self._handle is None:
                self._handle = magic.Magic(mime=True)
            return str(self._handle.from_buffer(data)).lower()


_LIBMAGIC: Final = _LibMagic()
os.register_at_fork(after_in_child=_LIBMAGIC.reset)


def _libmagic_mime(untrusted_data: bytes) -> tuple[str, str]:
    """libmagic's content type and, when it failed, why."""
    if not untrusted_data:
        return "application/x-empty", ""
    try:
        mime = _LIBMAGIC.mime(untrusted_data[:HEAD_BYTES])
        if mime == "application/octet-stream" and len(untrusted_data) > HEAD_BYTES:
            mime = _LIBMAGIC.mime(untrusted_data[:DEEP_BYTES])
    except Exception as exc:  # noqa: BLE001 - a C parser fed hostile bytes: any failure is "unknown"
        return "application/octet-stream", f"libmagic failed ({type(exc).__name__})"
    return mime, ""


def _content_kind(untrusted_data: bytes, mime: str) -> str:
    if not untrusted_data:
        return "other"
    if _has_signature(untrusted_data):
        return "executable"
    if untrusted_data.startswith(_TNEF_SIGNATURE):
        return "tnef"
    if untrusted_data.startswith(_ICHITARO_OLD):
        return "ichitaro"
    kind = kind_of_mime(mime)
    if mime == "application/encrypted":
        return "ooxml"  # a compound file, not a ZIP: its package is inside, encrypted
    if kind in ("zip", "ooxml", "xlsb") or untrusted_data.startswith(b"PK\x03\x04"):
        return _zip_kind(untrusted_data)
    if kind in ("ole", "msg", "ichitaro") and untrusted_data.startswith(_OLE_MAGIC):
        return _ole_kind(untrusted_data)
    if kind in ("text", "html"):
        return _active_text_kind(untrusted_data) or kind
    return kind or "other"


def _active_text_kind(untrusted_data: bytes) -> str | None:
    """The kind of text that is really an active format (:data:`_ACTIVE_TEXT`), else None."""
    head = untrusted_data[:HEAD_BYTES]
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            head = head[2:].decode(codec, "ignore").encode("utf-8", "ignore")
    head = head.removeprefix(b"\xef\xbb\xbf").lower()
    for kind, pattern in _ACTIVE_TEXT:
        if pattern.search(head):
            return kind
    return None


def _has_signature(untrusted_data: bytes) -> bool:
    size = len(untrusted_data)
    return any(
        untrusted_data.startswith(signature, offset if offset >= 0 else size + offset)
        for offset, signature in _SIGNATURES
        if offset >= 0 or size >= -offset
    )


def _zip_kind(untrusted_data: bytes) -> str:
    names = _zip_names(untrusted_data)
    if names is None:
        return "zip"  # unreadable or too large a directory: the ZIP sanitizer decides
    if names & _ZIP_EXECUTABLE_ENTRIES or _is_java_or_ios_app(names):
        return "executable"
    if "[content_types].xml" in names:
        return "xlsb" if "xl/workbook.bin" in names else "ooxml"
    if "mimetype" in names and ("content.xml" in names or "meta-inf/manifest.xml" in names):
        return "odf"  # its own kind: not an archive of loose files
    return "zip"


def _is_java_or_ios_app(names: frozenset[str]) -> bool:
    if "meta-inf/manifest.mf" in names and any(name.endswith(".class") for name in names):
        return True
    return any(name.startswith("payload/") and ".app/" in name for name in names)


def _zip_names(untrusted_data: bytes) -> frozenset[str] | None:
    """Lower-cased entry names from the central directory, or ``None`` when it is unreadable or
    larger than the limits (checked in the end record before :mod:`zipfile` reads anything).
    The last complete end record counts: appended junk (a stray signature) hides nothing."""
    start, end = max(0, len(untrusted_data) - _EOCD_SEARCH), len(untrusted_data)
    while True:
        end = untrusted_data.rfind(_EOCD, start, end)
        if end < 0:
            return None
        if len(untrusted_data) >= end + 22:
            break
    entries = int.from_bytes(untrusted_data[end + 10 : end + 12], "little")
    directory_size = int.from_bytes(untrusted_data[end + 12 : end + 16], "little")
    comment = int.from_bytes(untrusted_data[end + 20 : end + 22], "little")
    if entries > _MAX_ZIP_ENTRIES or directory_size > _MAX_ZIP_DIRECTORY_BYTES:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(untrusted_data[: end + 22 + comment])) as archive:
            return frozenset(name.lower() for name in archive.namelist())
    except Exception:  # noqa: BLE001 - zipfile raises many types on hostile input (fuzzed)
        return None


def _ole_kind(untrusted_data: bytes) -> str:
    """What a compound file holds, by the streams at its root: an Outlook message
    (``__properties_version1.0`` and ``__substg1.0_…`` property streams), a 一太郎 document
    (its ``DocumentText`` stream, or ``JSCompDocument`` in a compressed one) or anything else
    (``ole``: the legacy-Office sanitizer decides, and refuses what it does not know)."""
    import olefile  # only for compound files (a small pure-Python reader)

    try:
        with olefile.OleFileIO(io.BytesIO(untrusted_data)) as ole:
            root = {entry.name for entry in ole.root.kids[:_MAX_OLE_ROOT_ENTRIES]}
            text = ole.openstream(_ICHITARO_TEXT).read(8) if _ICHITARO_TEXT in root else b""
    except Exception:  # noqa: BLE001 - olefile raises many types on hostile input
        return "ole"
    if _ICHITARO_TEXT in root and text.startswith(_ICHITARO_TEXT_MAGIC):
        return "ichitaro"
    if _ICHITARO_COMPRESSED in root:
        return "ichitaro"
    if _MSG_PROPERTIES in root and any(name.startswith(_MSG_PROPERTY) for name in root):
        return "msg"
    return "ole"


# --- decision ----------------------------------------------------------------------------------


def _final_kind(content_kind: str, claims: list[str]) -> str:
    """The content's kind, made more dangerous by what the name or declaration claims."""
    if "executable" in claims:
        return "executable"
    if content_kind == "text" and "html" in claims:
        return "html"
    return content_kind


def _agrees(claim: str, content_kind: str) -> bool:
    if claim == content_kind:
        return True
    if content_kind == "text":  # HTML, scripts and mail are all text
        return claim in ("html", "executable", "message")
    if content_kind in ("ooxml", "odf", "xlsb"):  # an Office document is a ZIP
        return claim == "zip" or {claim, content_kind} == {"ooxml", "xlsb"}
    return content_kind == "html" and claim == "executable"  # an HTA is HTML
