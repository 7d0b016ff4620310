"""Binary parts of an OOXML package (pictures, sound, video, fonts): kept only when their
content is what their type says.

Threat model: a package carries a payload as a "media" part — EICAR or a PE declared
``image/png``, an image with an executable appended, an SVG with script (XML, so the XML
rebuild alone would keep it), a font that is not a font. Whatever Office does not render is
still delivered, and a scanner or a curious user may open it.

What is done: raster pictures (PNG, JPEG, GIF, BMP, TIFF, WebP) are re-encoded from their
pixels by :class:`sanitizers.cdr.images.ImageSanitizer`, exactly as an image attachment is
(PNG and JPEG keep their format, the others become PNG and their content type says so; what
re-encoding took out, ``metadata``, ``trailing_data`` or ``frames``, is reported for the
document); Windows metafiles (EMF, WMF), JPEG XR,
sound, video and plain fonts are kept when their signature matches their type; SVG and
anything else are dropped. Embedded fonts that are obfuscated (Word's ``.odttf``, whose key is
stored elsewhere, PowerPoint's ``.fntdata``) cannot be checked: they are dropped without a
report (the text is shown in a substitute font). Removed-item codes: ``svg_image`` (an SVG
part), ``unknown_part`` (content that is not what its type says).

Deliberately left alone: what a metafile, sound, video or font contains beyond its signature
(these are passed to the viewer as they are).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from sanitizers.cdr.base import CdrContext
from sanitizers.cdr.images import ImageSanitizer, has_trailing_data
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.vocabulary import Action, RemovedItem

SVG_IMAGE: Final = RemovedItem.SVG_IMAGE
UNKNOWN_PART: Final = RemovedItem.UNKNOWN_PART
_RASTER: Final = frozenset(
    {
        "image/png", "image/x-png", "image/jpeg", "image/jpg", "image/pjpeg", "image/gif",
        "image/bmp", "image/x-bmp", "image/tiff", "image/webp",
    }
)  # fmt: skip
_FONT_SIGNATURES: Final = (b"\x00\x01\x00\x00", b"OTTO", b"true", b"ttcf", b"wOFF", b"wOF2")
# Fonts whose bytes cannot be checked without a key kept elsewhere: dropped silently.
_OPAQUE_FONTS: Final = frozenset(
    {"application/vnd.openxmlformats-officedocument.obfuscatedfont", "application/x-fontdata"}
)
_image = ImageSanitizer()


def _signature_ok(content: bytes, ctype: str) -> bool:
    """Whether a non-raster media part starts the way its type says."""
    low = ctype.lower()
    if low in ("image/x-emf", "image/emf"):
        return content[:4] == b"\x01\x00\x00\x00" and content[40:44] == b" EMF"
    if low in ("image/x-wmf", "image/wmf"):
        return content[:4] == b"\xd7\xcd\xc6\x9a" or content[:4] in (
            b"\x01\x00\x09\x00",
            b"\x02\x00\x09\x00",
        )
    if low in ("image/vnd.ms-photo", "image/jxr"):
        return content[:3] == b"II\xbc"
    if low.startswith(("audio/", "video/")):
        return (
            content[:4] in (b"RIFF", b"OggS", b"fLaC", b"MThd", b"\x1aE\xdf\xa3", b"0&\xb2u")
            or content[:3] == b"ID3"
            or content[4:8] == b"ftyp"
            or (len(content) > 1 and content[0] == 0xFF and content[1] & 0xE0 == 0xE0)
        )
    if low.startswith("font/") or low in (
        "application/x-font-ttf",
        "application/x-font",
        "application/vnd.ms-opentype",
    ):
        return content[:4] in _FONT_SIGNATURES
    return False


@dataclass(frozen=True)
class Media:
    """A binary part to keep: its (re-encoded) bytes, its content type, and what re-encoding
    took out of it (``metadata``, ``trailing_data``, ``frames``: as for an image attachment)."""

    content: bytes
    ctype: str
    removed: tuple[RemovedItem, ...] = ()


def rebuild_media(
    untrusted_content: bytes, ctype: str, name: str, policy: CdrPolicy
) -> Media | RemovedItem | Literal[""]:
    """The part to keep, or the removed-item code it is dropped with (``""``: dropped without
    a report)."""
    low = ctype.lower()
    if low == "image/svg+xml":
        return SVG_IMAGE
    if low in _OPAQUE_FONTS:
        return ""
    if low in _RASTER:
        outcome = _image.run(untrusted_content, name, CdrContext(policy=policy))
        if outcome.action is Action.SANITIZED and outcome.data is not None:
            return Media(outcome.data, outcome.content_type or ctype, outcome.removed)
        return UNKNOWN_PART
    if _signature_ok(untrusted_content, ctype):
        return Media(untrusted_content, ctype)
    return UNKNOWN_PART


def media_problem(content: bytes, ctype: str) -> RemovedItem | None:
    """Verification of a kept media part (``None`` when it is what its type says)."""
    low = ctype.lower()
    if low == "image/svg+xml":
        return SVG_IMAGE
    if low in ("image/png", "image/x-png"):
        ok = content[:8] == b"\x89PNG\r\n\x1a\n" and not has_trailing_data(content, "PNG")
    elif low in ("image/jpeg", "image/jpg", "image/pjpeg"):
        ok = content[:3] == b"\xff\xd8\xff" and not has_trailing_data(content, "JPEG")
    elif low in _RASTER:
        ok = False  # rebuilt rasters are PNG or JPEG
    else:
        ok = _signature_ok(content, ctype)
    return None if ok else UNKNOWN_PART
