"""Archives built in code for the archive tests: a small ``-lh0-`` LZH writer, a stored RAR 4
writer, tar and compressed streams, 7z through py7zr; and an independent check of what an
archive holds (its libraries read directly, never the sanitizer's readers)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import math
import struct
import tarfile
import zlib

import lhafile
import py7zr
import py7zr.io
import rarfile

from tests.sanitizers.cdr.test_zip import zip_findings

EXE = b"MZ\x90\x00" + bytes(200)


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (polynomial 0xA001, reflected), the checksum of LZH members."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def lzh(
    members: list[tuple[bytes, bytes]], method: bytes = b"-lh0-", declared: int | None = None
) -> bytes:
    """An LZH archive with level-0 headers, its members stored (``-lh0-``) or compressed with
    :func:`lh5` (``-lh5-``); names are raw bytes (Shift_JIS for a Japanese Windows archive).
    ``declared`` overrides every member's declared size (a member that lies about it)."""
    out = bytearray()
    for name, data in members:
        packed = data if method == b"-lh0-" else lh5(list(data))
        body = (
            method
            + struct.pack("<II", len(packed), len(data) if declared is None else declared)
            + struct.pack("<HH", 0, (2024 - 1980) << 9 | 4 << 5 | 1)  # time, date
            + bytes([0x20, 0, len(name)])
            + name
            + struct.pack("<H", crc16_arc(data))
        )
        out += bytes([len(body), sum(body) & 0xFF]) + body + packed
    return bytes(out + b"\x00")


class _BitWriter:
    def __init__(self):
        self.bits = []

    def put(self, value, count):
        for shift in range(count - 1, -1, -1):
            self.bits.append((value >> shift) & 1)

    def data(self):
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def lh5(tokens, pbit=4):
    """Encode tokens (an int byte, or ("run", n): the previous byte n more times, 3..256)
    as one -lh5- block per 65535 tokens, with complete canonical codes."""
    out = _BitWriter()
    for start in range(0, len(tokens), 65535):
        block = tokens[start : start + 65535]
        symbols = sorted({t if isinstance(t, int) else 256 + t[1] - 3 for t in block})
        width = max(1, math.ceil(math.log2(len(symbols))))
        padded = list(symbols)
        filler = 0
        while len(padded) < 1 << width:
            if filler not in padded:
                padded.append(filler)
            filler += 1
        padded.sort()
        codes = {symbol: rank for rank, symbol in enumerate(padded)}
        out.put(len(block), 16)
        # The table of the code lengths: symbols 0 (one zero) and width + 2, one bit each.
        top = width + 2
        out.put(top + 1, 5)
        for index in range(top + 1):
            out.put(1 if index in (0, top) else 0, 3)
            if index == 2:
                out.put(0, 2)
        n = max(padded) + 1
        out.put(n, 9)
        for symbol in range(n):
            out.put(1 if symbol in codes else 0, 1)  # pt code: 0 -> zero, 1 -> width
        out.put(0, pbit)  # positions: one constant code, 0 (distance 1)
        out.put(0, pbit)
        for token in block:
            symbol = token if isinstance(token, int) else 256 + token[1] - 3
            out.put(codes[symbol], width)
    return out.data()


def _rar_block(kind: int, flags: int, body: bytes) -> bytes:
    header = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(header) & 0xFFFF) + header


RAR4_FILE_ENCRYPTED = 0x0004  # a file header's flag: its data is encrypted
RAR4_HEADERS_ENCRYPTED = 0x0080  # the main header's flag: every later header is encrypted


def rar4(members: list[tuple[bytes, bytes]], *, file_flags: int = 0, main_flags: int = 0) -> bytes:
    """A RAR 4 archive of stored members (method 0x30), Windows names as raw bytes;
    ``file_flags``/``main_flags`` are or-ed into the file and main header flags (the
    encryption flags mark it encrypted whatever the bytes are)."""
    out = bytearray(b"Rar!\x1a\x07\x00")
    out += _rar_block(0x73, main_flags, bytes(6))
    if main_flags & RAR4_HEADERS_ENCRYPTED:
        return bytes(out + bytes(8) + bytes(range(64)))  # the salt, then ciphertext
    for name, data in members:
        body = struct.pack(
            "<IIBIIBBHI",
            len(data),
            len(data),
            2,  # host: Windows
            zlib.crc32(data),
            0x58210000,  # DOS date and time
            20,
            0x30,  # stored
            len(name),
            0x20,
        )
        out += _rar_block(0x74, 0x8000 | file_flags, body + name) + data
    out += _rar_block(0x7B, 0x4000, b"")
    return bytes(out)


def tar(members: list[tarfile.TarInfo | tuple[str, bytes]], fmt: str = "") -> bytes:
    out = io.BytesIO()
    mode = f"w:{fmt}" if fmt else "w"
    with tarfile.open(fileobj=out, mode=mode, format=tarfile.PAX_FORMAT) as archive:  # type: ignore[call-overload]
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def special(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def sevenzip(members: list[tuple[str, bytes]], password: str | None = None) -> bytes:
    """A 7z archive; py7zr refuses to write ``..`` names, so those are written as ``__`` in a
    plain (unencoded) header and put back afterwards, with the header CRCs recomputed."""
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", password=password) as archive:
        archive.set_encoded_header_mode(False)
        for name, data in members:
            archive.writestr(data, name.replace("..", "__"))
    data = bytearray(out.getvalue())
    if not any(".." in name for name, _ in members):
        return bytes(data)
    offset, size = struct.unpack("<QQ", data[12:28])
    start, end = 32 + offset, 32 + offset + size
    header = bytes(data[start:end]).replace("__/".encode("utf-16-le"), "../".encode("utf-16-le"))
    data[start:end] = header
    struct.pack_into("<I", data, 28, zlib.crc32(header))
    struct.pack_into("<I", data, 8, zlib.crc32(bytes(data[12:32])))
    return bytes(data)


def _traversal(name: str) -> bool:
    name = name.replace("\\", "/")
    return name.startswith("/") or ".." in name.split("/") or name[1:2] == ":"


def _payload_findings(contents: list[bytes]) -> set[str]:
    found: set[str] = set()
    for content in contents:
        if content.startswith(b"MZ") or b"/JavaScript" in content:
            found.add("payload")
        if content.startswith(b"PK\x03\x04"):
            found |= {f"nested:{f}" for f in zip_findings(content)}
    return found


def archive_findings(data: bytes) -> set[str]:
    """Independent check of any archive kind: traversal, specials, bombs, payloads."""
    if data.startswith(b"PK\x03\x04"):
        return zip_findings(data)
    if data.startswith(b"7z\xbc\xaf\x27\x1c"):
        archive = py7zr.SevenZipFile(io.BytesIO(data))
        if archive.needs_password():
            return {"encrypted"}
        names = archive.getnames()
        total = sum(f.uncompressed for f in archive.files)
        if total > 1_000_000 and total > 200 * len(data):
            return {"ratio"}
        factory = py7zr.io.BytesIOFactory(10_000_000)
        archive.extract(factory=factory)
        contents = [factory.get(name).read() for name in factory.products]
        return {"traversal" for n in names if _traversal(n)} | _payload_findings(contents)
    if data.startswith(b"Rar!"):
        rar = rarfile.RarFile(io.BytesIO(data))
        if rar.needs_password() or any(info.needs_password() for info in rar.infolist()):
            return {"encrypted"}
        found = {
            "traversal"
            for info in rar.infolist()
            if _traversal(info.orig_filename.decode("latin-1"))
        }
        return found or _payload_findings([rar.read(info) for info in rar.infolist()])
    if data[2:5] == b"-lh":
        lha = lhafile.LhaFile(io.BytesIO(data))
        names = [info.filename for info in lha.infolist()]
        found = {"traversal" for n in names if _traversal(n)}
        return found | _payload_findings([lha.read(name) for name in names])
    for signature, opener in (
        (b"\x1f\x8b", gzip.open),
        (b"BZh", bz2.open),
        (b"\xfd7zXZ", lzma.open),
    ):
        if data.startswith(signature):
            with opener(io.BytesIO(data)) as stream:  # type: ignore[operator]
                content = stream.read(1_000_001)
            if len(content) > 1_000_000:
                return {"ratio"}
            return (
                archive_findings(content)
                if content[257:262] == b"ustar"
                else _payload_findings([content])
            )
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        found = set()
        for info in archive.getmembers():
            if _traversal(info.name):
                found.add("traversal")
            if not (info.isreg() or info.isdir()):
                found.add("special")
        contents = [archive.extractfile(i).read() for i in archive.getmembers() if i.isreg()]  # type: ignore[union-attr]
        return found | _payload_findings(contents)
