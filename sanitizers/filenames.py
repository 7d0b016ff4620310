"""The name a file is delivered under: derived from what it was rebuilt as, never from what the
sender claimed.

Threat model: the sender writes the name to make the recipient's system open the file with the
wrong program, or to make the recipient misread it. Windows drops trailing dots and spaces
(``invoice.doc.`` opens in Word as ``invoice.doc``; ``a.doc. . .`` too), reads ``a.pdf:x`` as a
stream of ``a.pdf`` (``file.txt::$DATA``), refuses ``<>:"|?*`` and device names (``CON``,
``NUL.txt``); bidi controls show ``請求書\\u202efdp.exe`` as ``請求書exe.pdf``; a PNG named
``請求書.html`` would open in a browser if it kept its name. So:

* :func:`clean_component` makes one name component safe to show and to save: no control,
  format (bidi, zero-width), separator or surrogate characters; the part before an NTFS stream
  colon; Windows-forbidden characters as ``_``; no trailing spaces or dots (ASCII, and the
  ideographic and full-width ones a reader cannot tell apart) and no leading ASCII ones; every
  space inside the name kept as written (U+3000 stays U+3000); no device
  name; bounded length;
* :func:`delivered_name` then gives the file the extension of the type it was rebuilt as:
  the sender's extension stays only when it is one of that type's (``.jpeg`` for a JPEG),
  otherwise it is replaced by the type's own (``請求書.html`` rebuilt as PNG becomes
  ``請求書.png``; ``invoice.doc.`` rebuilt as text becomes ``invoice.txt``).

Deliberately left alone: the text of the name itself (no NFKC, no width changes: Japanese
names arrive exactly as written, less what is listed above).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from sanitizers.filetype import extension_kind, kind_of_mime

__all__ = ["clean_component", "clean_name", "delivered_name"]

# Longest delivered name (characters); the extension is kept, the stem shortened.
MAX_NAME_CHARS: Final = 100
FALLBACK_STEM: Final = "attachment"

# Extensions a rebuilt file may carry, by its content type; the first is the one it gets when
# its own does not fit. A type not listed gets an extension of its kind that the sender used,
# else ``.bin``.
_EXTENSIONS: Final[dict[str, tuple[str, ...]]] = {
    "application/pdf": ("pdf",),
    "image/png": ("png",),
    "image/jpeg": ("jpg", "jpeg", "jpe", "jfif"),
    "application/zip": ("zip",),
    "text/plain": ("txt", "text", "log", "md", "json", "ics", "vcf"),
    "text/csv": ("csv",),
    "text/tab-separated-values": ("tsv",),
    "application/rtf": ("rtf",),
    "text/rtf": ("rtf",),
    "application/msword": ("doc", "dot"),
    "application/vnd.ms-excel": ("xls", "xlt", "xla"),
    "application/vnd.ms-powerpoint": ("ppt", "pot", "pps"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("docx",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template": ("dotx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("xlsx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template": ("xltx",),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ("pptx",),
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow": ("ppsx",),
    "application/vnd.openxmlformats-officedocument.presentationml.template": ("potx",),
    "application/vnd.ms-excel.sheet.binary.macroenabled.12": ("xlsb",),
    "image/svg+xml": ("svg",),
    "application/vnd.oasis.opendocument.text": ("odt",),
    "application/vnd.oasis.opendocument.text-template": ("ott",),
    "application/vnd.oasis.opendocument.spreadsheet": ("ods",),
    "application/vnd.oasis.opendocument.spreadsheet-template": ("ots",),
    "application/vnd.oasis.opendocument.presentation": ("odp",),
    "application/vnd.oasis.opendocument.presentation-template": ("otp",),
    "application/vnd.oasis.opendocument.graphics": ("odg",),
    "application/vnd.oasis.opendocument.graphics-template": ("otg",),
}
_UNKNOWN_EXTENSION: Final = "bin"
# Characters Windows refuses in a name (the colon is handled first, as a stream separator).
_FORBIDDEN: Final = re.compile(r'[<>"|?*]')
# Trailing characters a reader takes for nothing or for a dot: spaces of every kind
# and the ideographic and full-width full stops.
_EDGE: Final = " .\u3000\u3002\uff0e\uff61\ufe52\u2024"
# Leading characters removed: ASCII spaces and dots (a hidden or blank-looking name). Other
# spaces, the ideographic space U+3000 first, are the sender's text and stay where written.
_LEADING: Final = " ."
_DEVICE: Final = re.compile(r"(?:con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)", re.I)
# Unicode categories removed from names: controls, format (bidi, zero-width), line and
# paragraph separators, surrogates, private use and unassigned.
_REMOVED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def clean_component(untrusted_name: str) -> str:
    """One name component (no folders) made safe to show and to save; may be empty."""
    name = "".join(
        char for char in untrusted_name if unicodedata.category(char) not in _REMOVED_CATEGORIES
    )
    name = name.split(":", 1)[0]  # an NTFS stream: Windows opens the file before the colon
    name = _FORBIDDEN.sub("_", name).rstrip(_EDGE).lstrip(_LEADING)
    stem = name.split(".", 1)[0].rstrip(" ")
    if _DEVICE.fullmatch(stem):
        name = "_" + name
    return name


def clean_name(untrusted_name: str | None) -> str:
    """The last component of a sender's file name, cleaned (:func:`clean_component`)."""
    return clean_component(re.split(r"[\\/]", untrusted_name or "")[-1])


def delivered_name(untrusted_name: str | None, content_type: str, kind: str | None = None) -> str:
    """The name to deliver a file under whose rebuilt content is ``content_type``. ``kind``
    is given for a file kept as it came, whose type is libmagic's: when that type belongs to
    another kind (a .docx that libmagic calls application/zip), the kind decides."""
    stem, dot, extension = clean_name(untrusted_name).rpartition(".")
    if not dot:
        stem, extension = extension, ""
    stem = stem.rstrip(_EDGE) or FALLBACK_STEM
    mime = content_type.split(";", 1)[0].strip().lower()
    kind = kind or kind_of_mime(mime)
    allowed = _EXTENSIONS.get(mime) if kind == kind_of_mime(mime) else None
    if allowed is None:
        fits = kind is not None and kind != "executable" and extension_kind(extension) == kind
        allowed = (extension.lower(),) if fits else (_UNKNOWN_EXTENSION,)
    if extension.lower() not in allowed:
        extension = allowed[0]
    return f"{stem[: MAX_NAME_CHARS - len(extension) - 1]}.{extension}"
