"""Image sanitizer: the contract, plus metadata, polyglots and pixel bombs built with Pillow."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
import zlib
from collections.abc import Sequence

import pytest
from PIL import Image, ImageChops, ImageStat, PngImagePlugin

from sanitizers.cdr.base import CdrContext
from sanitizers.cdr.images import ImageSanitizer
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.vocabulary import Action, Reason
from tests.sanitizers.cdr.contract import Case, CdrContract


def _picture(mode: str = "RGB", size: tuple[int, int] = (64, 48)) -> Image.Image:
    image = Image.new(mode, size, "white" if mode != "P" else 0)
    for x in range(0, size[0], 4):
        for y in range(size[1]):
            image.putpixel((x, y), (x * 3 % 256, 0, y * 5 % 256) if mode == "RGB" else x % 200)
    return image


def _save(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0131] = "secret-software"
    gps = {1: "N", 2: (35.0, 41.0, 22.0), 3: "E", 4: (139.0, 41.0, 30.0)}
    exif[0x8825] = gps
    return exif.tobytes()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("run.vbs", 'CreateObject("WScript.Shell").Run "calc"')
    return out.getvalue()


def _png_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta/>")
    return _save(_picture(), "PNG", pnginfo=info)


def _pixel_bomb(width: int, height: int) -> bytes:
    """A 1-bit PNG declaring width x height, with one tiny compressed IDAT (valid CRCs)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def metadata_and_trailers(data: bytes) -> set[str]:
    """Independent byte-level check: metadata chunks/segments and bytes after the end."""
    found: set[str] = set()
    if b"PK\x03\x04" in data:
        found.add("zip_polyglot")
    if data.startswith(b"\x89PNG"):
        pos = 8
        while pos + 8 <= len(data):
            length = int.from_bytes(data[pos : pos + 4], "big")
            kind = data[pos + 4 : pos + 8]
            if kind in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"tIME"):
                found.add(kind.decode())
            pos += 12 + length
            if kind == b"IEND":
                break
        if pos < len(data):
            found.add("trailing")
    elif data.startswith(b"\xff\xd8"):
        for marker, name in ((b"\xff\xe1", "APP1"), (b"\xff\xe2", "APP2"), (b"\xff\xfe", "COM")):
            if marker in data:
                found.add(name)
        if not data.rstrip(b"\0").endswith(b"\xff\xd9"):
            found.add("trailing")
    elif data.startswith(b"GIF8") and b"\x21\xfe" in data:
        found.add("gif_comment")
    return found


class TestImageContract(CdrContract):
    kind = "image"
    keep_if_clean_rebuilds = True

    def hostile_cases(self) -> Sequence[Case]:
        jpeg = _save(_picture(), "JPEG", quality=95)
        return [
            Case(
                "jpeg-exif-gps-comment",
                _save(_picture(), "JPEG", exif=_exif(), comment=b"hi"),
                "p.jpg",
                frozenset({"metadata"}),
                reason=Reason.METADATA,
            ),
            Case(
                "jpeg-icc",
                _save(_picture(), "JPEG", icc_profile=b"\0" * 128),
                "icc.jpg",
                frozenset({"metadata"}),
            ),
            Case("png-text-xmp", _png_text(), "t.png", frozenset({"metadata"})),
            Case("jpeg-zip-polyglot", jpeg + _zip(), "poly.jpg", frozenset({"trailing_data"})),
            Case(
                "png-zip-polyglot",
                _save(_picture(), "PNG") + _zip(),
                "poly.png",
                frozenset({"trailing_data"}),
            ),
            Case(
                "gif-comment",
                _save(_picture("P"), "GIF", comment=b"payload"),
                "c.gif",
                frozenset({"metadata"}),
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [
            Case("png", _save(_picture(), "PNG"), "a.png"),
            Case("jpeg", _save(_picture(), "JPEG", quality=90), "a.jpg"),
            Case("png-grey", _save(_picture().convert("L"), "PNG"), "g.png"),
        ]

    def bomb_cases(self) -> Sequence[Case]:
        return [
            Case("pixel-bomb-2x", _pixel_bomb(100_000, 100_000), "bomb.png", action=Action.REMOVED),
            Case("pixel-bomb-1x", _pixel_bomb(8_000, 8_000), "bomb.png", action=Action.REMOVED),
        ]

    def dangerous_items(self, data: bytes) -> set[str]:
        return metadata_and_trailers(data)

    def assert_parses(self, data: bytes) -> None:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            assert image.format in ("PNG", "JPEG")

    def assert_benign_kept(self, case: Case, output: bytes) -> None:
        with Image.open(io.BytesIO(case.data)) as before, Image.open(io.BytesIO(output)) as after:
            assert before.size == after.size
            diff = ImageChops.difference(before.convert("RGB"), after.convert("RGB"))
            assert max(ImageStat.Stat(diff).mean) < 8, f"pixels changed in {case.name}"


def _ctx(**limits: int) -> CdrContext:
    return CdrContext(policy=CdrPolicy(**limits))  # type: ignore[arg-type]


def test_pixel_limit_is_per_call_and_restored() -> None:
    before = Image.MAX_IMAGE_PIXELS
    outcome = ImageSanitizer().run(_save(_picture(), "PNG"), "a.png", _ctx(image_max_pixels=100))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_PIXELS)
    assert before == Image.MAX_IMAGE_PIXELS


def test_bomb_warning_range_is_a_decision_not_a_warning() -> None:
    # 64 M pixels: between Pillow's 1x and 2x of the 50 M default, where it only warns.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outcome = ImageSanitizer().run(_pixel_bomb(8000, 8000), "b.png", _ctx())
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_PIXELS)


@pytest.mark.parametrize(
    ("fmt", "suffix"), [("GIF", ".gif"), ("BMP", ".bmp"), ("TIFF", ".tif"), ("WEBP", ".webp")]
)
def test_other_formats_become_png(fmt: str, suffix: str) -> None:
    image = _picture("P") if fmt == "GIF" else _picture()
    outcome = ImageSanitizer().run(_save(image, fmt), f"scan{suffix}", _ctx())
    assert outcome.action == Action.SANITIZED, outcome
    assert outcome.filename == "scan.png"
    assert outcome.content_type == "image/png"
    assert outcome.data is not None
    assert outcome.data.startswith(b"\x89PNG")


def test_exif_orientation_applied_before_dropping() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    data = _save(_picture(size=(80, 40)), "JPEG", exif=exif.tobytes())
    outcome = ImageSanitizer().run(data, "r.jpg", _ctx())
    assert outcome.data is not None
    with Image.open(io.BytesIO(outcome.data)) as image:
        assert image.size == (40, 80)
        assert not image.getexif()


def test_animated_gif_keeps_first_frame_and_says_so() -> None:
    frames = [_picture("P"), _picture("P").rotate(90)]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0)
    outcome = ImageSanitizer().run(data, "anim.gif", _ctx())
    assert outcome.action == Action.SANITIZED
    assert "frames" in outcome.removed


def test_unsupported_format_is_not_opened() -> None:
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    outcome = ImageSanitizer().run(eps, "x.eps", _ctx())
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.MALFORMED)


def test_truncated_image_is_malformed() -> None:
    data = _save(_picture(size=(200, 200)), "JPEG", quality=95)
    outcome = ImageSanitizer().run(data[: len(data) * 2 // 3], "t.jpg", _ctx())
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.MALFORMED)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _with_unread_bytes(fmt: str) -> bytes:
    """A clean image carrying a payload where no decoder looks: a private PNG chunk, a JPEG
    APP15 segment."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 20, 30)).save(buffer, fmt)
    data = buffer.getvalue()
    payload = b"MZ\x90\x00payload-marker-img"
    if fmt == "PNG":
        return data[:33] + _png_chunk(b"prVt", payload) + data[33:]
    return data[:2] + b"\xff\xef" + struct.pack(">H", 2 + len(payload)) + payload + data[2:]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_keep_if_clean_never_delivers_unread_bytes(fmt: str) -> None:
    data = _with_unread_bytes(fmt)
    ctx = CdrContext(policy=CdrPolicy(), keep_if_clean=True)
    outcome = ImageSanitizer().run(data, "a." + fmt.lower(), ctx)
    assert outcome.action == Action.SANITIZED, outcome
    assert outcome.data is not None
    assert b"payload-marker-img" not in outcome.data
