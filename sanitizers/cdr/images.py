"""Image sanitizer: decode with Pillow, then encode a new file from the pixels alone.

Threat model: the image is hostile. It may be a decompression bomb (a small file declaring
gigapixels), a polyglot (a ZIP, script or PE appended after the image's end, or hidden in a
comment or metadata chunk), carry metadata the sender did not mean to send (EXIF with GPS
position, camera serial numbers, XMP, comments, text chunks) or a crafted ICC profile or
EXIF block aimed at a viewer's parser, or be malformed to crash a decoder.

What is done: only PNG, JPEG, GIF, BMP, TIFF and WebP are opened (Pillow is told the formats,
so no other plugin, and never Ghostscript for EPS, can be reached); the declared size is
checked against ``CdrPolicy.image_max_pixels`` before any pixel is decoded (Pillow's bomb check
with the limit set for this call only, its warning turned into a ``limit_pixels`` removal); the
pixels are copied into a fresh image that has no ``info`` at all, and that image is encoded:

* PNG → PNG, JPEG → JPEG (quality 90, EXIF orientation applied to the pixels first, so the
  photo stays upright when EXIF is dropped);
* GIF, BMP, TIFF, WebP → PNG, with the file name's extension changed to ``.png``. Of a
  multi-frame image (animated GIF/WebP, multi-page TIFF) only the first frame is kept and
  the loss is reported (``frames``).

Removed-item codes: ``metadata`` (EXIF, XMP, ICC profile, comments, text chunks, any other
ancillary info), ``trailing_data`` (bytes after the image's end marker: PNG ``IEND``, JPEG
``EOI``, the RIFF size of WebP, the BMP file size), ``frames``.

Under ``keep_if_clean`` an image with anything to remove, or not in PNG or JPEG, is removed;
a clean one is delivered re-encoded like under ``sanitize``, never as the sender's bytes
(which may carry chunks or segments no decoder reads).

``verify`` re-opens the output with only its own format enabled, decodes it fully, checks the
pixel limit and that the file has no metadata and nothing after its end.

Deliberately left alone: what the pixels show (steganography, QR codes, phishing text in an
image are not detected), colour accuracy (dropping an ICC profile may shift colours slightly),
DPI/gamma hints. SVG is not a raster image: it is XML that can carry script, and has its own
sanitizer (:mod:`sanitizers.cdr.svg`).
"""

from __future__ import annotations

import io
import re
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from PIL import Image, ImageOps, UnidentifiedImageError

from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.filenames import delivered_name
from sanitizers.vocabulary import Action, Reason, RemovedItem

METADATA = RemovedItem.METADATA
TRAILING_DATA = RemovedItem.TRAILING_DATA
FRAMES = RemovedItem.FRAMES

_INPUT_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
# Format -> (output format, content type); the content type names the delivered extension.
_OUTPUT: dict[str, tuple[str, str]] = {
    "PNG": ("PNG", "image/png"),
    "JPEG": ("JPEG", "image/jpeg"),
}
_PNG_OUT = _OUTPUT["PNG"]
# ``info`` keys that describe the encoding, not the content: not counted as metadata.
_ENCODING_INFO = frozenset(
    {
        "dpi", "aspect", "gamma", "srgb", "chromaticity", "interlace", "transparency",
        "background", "duration", "loop", "version", "extension", "compression", "progressive",
        "progression", "jfif", "jfif_version", "jfif_unit", "jfif_density", "adobe",
        "adobe_transform", "resolution", "unit", "sizes", "frame", "loop_count", "timestamp",
        "bbox", "mp", "dispose_extensions", "disposal", "blend", "default_image",
        "compression_type", "animated",
    }
)  # fmt: skip
_PNG_MODES = frozenset({"1", "L", "LA", "RGB", "RGBA", "I", "I;16"})
_JPEG_MODES = frozenset({"L", "RGB", "CMYK"})

_pixel_lock = threading.Lock()
# What Pillow raises on truncated or corrupt data (a removal as ``malformed``).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)
# In entropy-coded JPEG data, 0xFF is followed by 0x00 (stuffing) or a restart marker; any
# other byte after one or more 0xFF starts a real marker.
_JPEG_MARKER = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")


@contextmanager
def _pixel_limit(limit: int) -> Iterator[None]:
    """Pillow's bomb check uses a module global: set it for this call only, under a lock,
    and turn its warning (between 1x and 2x the limit) into an error."""
    with _pixel_lock:
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            with warnings.catch_warnings():
                # Pillow's other warnings (corrupt EXIF…) concern what is dropped anyway.
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def _open(data: bytes, formats: tuple[str, ...], limit: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=list(formats))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LimitExceeded(Reason.LIMIT_PIXELS, str(exc)[:200]) from exc
    except UnidentifiedImageError as exc:
        raise SanitizeError(Reason.MALFORMED, "not a supported image") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise SanitizeError(Reason.MALFORMED, f"size {width}x{height}")
    if width * height > limit:
        raise LimitExceeded(Reason.LIMIT_PIXELS, f"{width}x{height} > {limit} pixels")
    return image


def _png_end(data: bytes) -> int | None:
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos
    return None


def _jpeg_end(data: bytes) -> int | None:
    pos = 2
    size = len(data)
    while pos + 2 <= size:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return pos + 2
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if pos + 4 > size:
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        pos += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data until the next real marker
            found = _JPEG_MARKER.search(data, pos)
            if found is None:
                return None
            pos = found.start()
    return None


def image_end(data: bytes, fmt: str) -> int | None:
    """Where the image ends by its own structure, or ``None`` when not known for ``fmt``."""
    if fmt == "PNG":
        return _png_end(data)
    if fmt == "JPEG":
        return _jpeg_end(data)
    if fmt == "WEBP" and len(data) >= 8:
        return 8 + int(struct.unpack("<I", data[4:8])[0])
    if fmt == "BMP" and len(data) >= 6:
        return int(struct.unpack("<I", data[2:6])[0])
    return None


def has_trailing_data(data: bytes, fmt: str) -> bool:
    end = image_end(data, fmt)
    # A BMP's size field is often 0 or wrong in benign files: only a larger file counts.
    return end is not None and 0 < end < len(data) and data[end:].strip(b"\0") != b""


def metadata_keys(image: Image.Image) -> list[str]:
    keys = [str(key) for key in image.info if key not in _ENCODING_INFO]
    text = getattr(image, "text", None)  # PNG tEXt/iTXt/zTXt chunks
    if text:
        keys.append("text")
    return sorted(set(keys))


def _fresh(image: Image.Image, out_format: str) -> Image.Image:
    """A new image holding only the pixels of ``image`` (no ``info``, no palette tricks)."""
    allowed = _JPEG_MODES if out_format == "JPEG" else _PNG_MODES
    if image.mode not in allowed:
        if image.mode in ("F", "I;16B", "I;16L", "I;16N"):
            target = "L" if out_format == "JPEG" else "I"
        elif image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
            image.mode == "P" and "transparency" in image.info
        ):
            target = "RGB" if out_format == "JPEG" else "RGBA"
        else:
            target = "RGB"
        image = image.convert(target)
    return Image.frombytes(image.mode, image.size, image.tobytes())


class ImageSanitizer(CdrSanitizer):
    """Re-encodes raster images from their pixels alone."""

    kind: ClassVar[str] = "image"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        try:
            fmt, removed, fresh = self._decode(untrusted_data, ctx)
        except _DECODE_ERRORS as exc:  # truncated or corrupt image data
            raise SanitizeError(Reason.MALFORMED, f"{type(exc).__name__}: {exc}"[:200]) from exc
        out_format, content_type = _OUTPUT.get(fmt, _PNG_OUT)
        codes = tuple(sorted(removed))
        if ctx.keep_if_clean and (codes or fmt not in _OUTPUT):
            # keep_if_clean keeps a file in its own format with nothing to remove, or nothing.
            return CdrOutcome.drop(Reason.METADATA if codes else Reason.POLICY, fmt)
        # Clean under keep_if_clean too, the pixels are encoded anew: the sender's bytes may
        # hold chunks or segments no decoder reads (a private PNG chunk, a JPEG APPn segment).
        out = io.BytesIO()
        if out_format == "JPEG":
            fresh.save(out, "JPEG", quality=90, optimize=False)
        else:
            fresh.save(out, "PNG", optimize=False, compress_level=6)
        return CdrOutcome(
            action=Action.SANITIZED,
            reason=Reason.METADATA if codes else Reason.CLEAN,
            data=out.getvalue(),
            filename=delivered_name(filename, content_type),
            content_type=content_type,
            removed=codes,
        )

    def _decode(
        self, untrusted_data: bytes, ctx: CdrContext
    ) -> tuple[str, set[RemovedItem], Image.Image]:
        """(format, removed codes, a fresh image holding only the first frame's pixels)."""
        limit = ctx.policy.image_max_pixels
        removed: set[RemovedItem] = set()
        with _pixel_limit(limit), _open(untrusted_data, _INPUT_FORMATS, limit) as image:
            fmt = str(image.format)
            frames = int(getattr(image, "n_frames", 1))
            if frames > ctx.policy.image_max_frames:
                raise LimitExceeded(Reason.LIMIT_ENTRIES, f"{frames} frames")
            if frames > 1:
                removed.add(FRAMES)
            if metadata_keys(image):
                removed.add(METADATA)
            if has_trailing_data(untrusted_data, fmt):
                removed.add(TRAILING_DATA)
            image.load()
            out_format = _OUTPUT.get(fmt, _PNG_OUT)[0]
            pixels = ImageOps.exif_transpose(image) if fmt == "JPEG" else image
            return fmt, removed, _fresh(pixels, out_format)

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        limit = ctx.policy.image_max_pixels
        fmt = "JPEG" if data[:2] == b"\xff\xd8" else "PNG"
        with _pixel_limit(limit), _open(data, (fmt,), limit) as image:
            try:
                image.load()
            except _DECODE_ERRORS as exc:
                raise SanitizeError(Reason.VERIFY_FAILED, f"output does not decode: {exc}") from exc
            if getattr(image, "n_frames", 1) != 1:
                raise SanitizeError(Reason.VERIFY_FAILED, "more than one frame")
            found = metadata_keys(image)
            if found:
                raise SanitizeError(Reason.VERIFY_FAILED, "metadata: " + ", ".join(found))
        if image_end(data, fmt) is None or has_trailing_data(data, fmt):
            raise SanitizeError(Reason.VERIFY_FAILED, "data after the end of the image")
