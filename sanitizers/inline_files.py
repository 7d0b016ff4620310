"""Files embedded in body text (uuencode, ``begin-base64``, yEnc, BinHex 4.0), taken out.

Threat model: a text body can carry a whole file as encoded lines; mail readers such as
Thunderbird and Becky! show such a block as an attachment that opens with one click, so a
text-only rule that forwards the text forwards the file, past every attachment check. Each
block found here is cut out of the text and handed back as a file, so the pipeline treats it
exactly like a MIME attachment (type detected, policy applied: an executable removed, a
document disarmed). A block that cannot be decoded whole (no end line, a bad line, a wrong
length or checksum) is still cut out, marked malformed, and never delivered (fail closed).
A block quoted in a reply (``> `` before each line) is found too, and read without the quote.
yEnc, 8-bit, is cut from the body's bytes before its charset is judged
(:func:`cut_yenc_blocks`); the text reader still catches one that a charset decoded. In an
HTML body the blocks are looked for in its source first (``markup``), because a block pasted
unescaped (in ``<pre>``) holds ``<`` and ``&`` that an HTML parser reads as tags and entities:
there a file's first line may follow tags and its last line precede them, and only a block
that decodes whole is cut (an escaped one reads right only in the converted text, where it is
looked for again).

Bounded: one pass over the lines; every decoder's output is bounded by its input (BinHex's
run-length expansion by ``max_bytes``); at most ``max_files`` blocks, then
:class:`LimitExceeded`. A block starts only at a line that a mail reader would take for a
file's first line, so ordinary text is left alone. Never raises on any text but the limit.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sanitizers.errors import LimitExceeded
from sanitizers.vocabulary import Reason

__all__ = ["InlineFile", "cut_yenc_blocks", "extract_inline_files"]

# The first lines mail readers recognise (and compose.py guards the output against).
_UU_BEGIN: Final = re.compile(r"begin(-base64)?[ \t]+[0-7]{1,4}[ \t]+(\S.*?)[ \t]*", re.IGNORECASE)
_YENC_BEGIN: Final = re.compile(r"=ybegin[ \t].*", re.IGNORECASE)
_YENC_NAME: Final = re.compile(r"[ \t]name=(.*?)[ \t]*$")
_YENC_SIZE: Final = re.compile(r"[ \t]size=(\d{1,15})(?:[ \t]|$)")
_YENC_CRC: Final = re.compile(r"[ \t](?:pcrc32|crc32)=([0-9a-fA-F]{1,8})(?:[ \t]|$)")
_BINHEX_BEGIN: Final = re.compile(r"\(This file must be converted with BinHex.*", re.IGNORECASE)
# A reply quotes a block with "> " before each of its lines: readers still show the file.
_QUOTE: Final = re.compile(r"(?:>[ \t]?)*")
_FIRST_LINE: Final = re.compile(
    r"^(?:>[ \t]?)*(?:begin|=ybegin|\(This file must be converted with BinHex)",
    re.IGNORECASE | re.MULTILINE,
)
# In HTML source: a tag right before a file's first line, and markup after its last line
# (each split off onto a line of its own: the block's lines are then what the readers expect).
_TAGGED_FIRST_LINE: Final = re.compile(
    r">[ \t]*(?=(?:begin(?:-base64)?[ \t]+[0-7]{1,4}[ \t]|=ybegin[ \t]"
    r"|\(This file must be converted))",
    re.IGNORECASE,
)
_TAGGED_LAST_LINE: Final = re.compile(
    r"^(end|====|=yend[^<\n]{0,500}|[^<\n]{0,500}:)[ \t]*(<[^\n]*)$",
    re.IGNORECASE | re.MULTILINE,
)
_UU_LINE: Final = re.compile("[ -`]+")
_BASE64_LINE: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_BINHEX_ALPHABET: Final = "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
_BINHEX_VALUES: Final = {char: value for value, char in enumerate(_BINHEX_ALPHABET)}
_BINHEX_LINE: Final = re.compile(f"[{re.escape(_BINHEX_ALPHABET)}:]*")
_BINHEX_RUN: Final = 0x90


@dataclass(frozen=True, slots=True)
class InlineFile:
    """One block cut out of the text: its encoding, the name it gives, and the decoded bytes
    (``None`` when it was malformed, with ``problem`` saying why)."""

    encoding: str  # "uuencode", "base64", "yenc" or "binhex"
    filename: str
    data: bytes | None
    problem: str = ""

    @property
    def declared_type(self) -> str:
        return _DECLARED_TYPES[self.encoding]


_DECLARED_TYPES: Final = {
    "uuencode": "application/x-uuencode",
    "base64": "application/x-uuencode",
    "yenc": "application/x-yenc",
    "binhex": "application/mac-binhex40",
}


_Reader = Callable[[list[str], int, int], tuple[InlineFile, int]]


def extract_inline_files(
    text: str, *, max_files: int, max_bytes: int, markup: bool = False
) -> tuple[str, list[InlineFile]]:
    """The text without its embedded file blocks, and those files in order of appearance.
    With ``markup`` (HTML source): tags may share a block's first and last lines, and only
    blocks that decode whole are cut (see the module docstring)."""
    original = text
    if markup:
        if _TAGGED_FIRST_LINE.search(text) is None:
            return text, []
        text = _TAGGED_LAST_LINE.sub("\\1\n\\2", _TAGGED_FIRST_LINE.sub(">\n", text))
    elif _FIRST_LINE.search(text) is None:  # the common case: one scan, no copy
        return text, []
    lines = text.split("\n")
    kept: list[str] = []
    files: list[InlineFile] = []
    index = 0
    while index < len(lines):
        line = lines[index].rstrip("\r")
        quote = _QUOTE.match(line)
        prefix = quote.group() if quote else ""
        reader = _reader_for(line[len(prefix) :])
        if reader is None:
            kept.append(lines[index])
            index += 1
            continue
        if len(files) >= max_files:
            raise LimitExceeded(Reason.LIMIT_PARTS, f"over {max_files} files in the text")
        start = index
        if prefix:
            found, used = reader(_unquoted(lines, index, prefix), 0, max_bytes)
            index += used
        else:
            found, index = reader(lines, index, max_bytes)
        if markup and found.data is None:
            kept += lines[start:index]  # left for the converted text
            continue
        files.append(found)
    return ("\n".join(kept), files) if files else (original, [])


def _unquoted(lines: list[str], start: int, prefix: str) -> list[str]:
    """The lines from ``start`` that carry the quote ``prefix``, without it (a quoted blank
    line may have lost the prefix's trailing space); the first other line ends them."""
    bare = prefix.rstrip(" \t")
    out: list[str] = []
    for line in lines[start:]:
        content = line.rstrip("\r")
        if content.startswith(prefix):
            out.append(content[len(prefix) :])
        elif content == bare:
            out.append("")
        else:
            break
    return out


def _reader_for(line: str) -> _Reader | None:
    if not line or len(line) > 1000 or line[0] not in "bB=(":
        return None
    if _UU_BEGIN.fullmatch(line):
        return _read_uu
    if _YENC_BEGIN.fullmatch(line):
        return _read_yenc
    if _BINHEX_BEGIN.fullmatch(line):
        return _read_binhex
    return None


# --- yEnc in the raw bytes, before the text's charset is judged ------------------------------

_YENC_BEGIN_BYTES: Final = re.compile(rb"^=ybegin[ \t]", re.IGNORECASE | re.MULTILINE)


def cut_yenc_blocks(
    payload: bytes, *, max_files: int, decode_name: Callable[[bytes], str]
) -> tuple[bytes, list[InlineFile]]:
    """The body bytes without their yEnc blocks, and those files decoded from the raw bytes.

    yEnc writes its data as 8-bit bytes: left in the body, they make a UTF-8 or Japanese
    text look binary and the charset judgement read the whole text in a wrong charset. So
    the blocks are cut out of the bytes first and decoded exactly (the text is then judged
    alone). ``decode_name`` decodes the file name the ``=ybegin`` line gives."""
    if _YENC_BEGIN_BYTES.search(payload) is None:
        return payload, []
    lines = payload.split(b"\n")
    kept: list[bytes] = []
    files: list[InlineFile] = []
    index = 0
    while index < len(lines):
        if not _YENC_BEGIN_BYTES.match(lines[index]) or len(lines[index]) > 1000:
            kept.append(lines[index])
            index += 1
            continue
        if len(files) >= max_files:
            raise LimitExceeded(Reason.LIMIT_PARTS, f"over {max_files} files in the text")
        found, index = _read_yenc_bytes(lines, index, decode_name)
        files.append(found)
    return b"\n".join(kept), files


def _read_yenc_bytes(
    lines: list[bytes], start: int, decode_name: Callable[[bytes], str]
) -> tuple[InlineFile, int]:
    """One yEnc block (yEnc 1.3): ``=ybegin`` (``part=`` when it is one part of several), an
    optional ``=ypart``, data lines in which ``=`` escapes the next byte, ``=yend`` with the
    size and CRC-32 checked. One part of a multi-part file is not the file: malformed."""
    header = lines[start].rstrip(b"\r")
    name_match = re.search(rb"[ \t]name=(.*?)[ \t]*$", header)
    name = decode_name(name_match.group(1)) if name_match else ""
    multipart = re.search(rb"[ \t]part=\d", header) is not None
    data = bytearray()
    index = start + 1
    if index < len(lines) and lines[index].lower().startswith(b"=ypart "):
        index += 1
    while index < len(lines):
        line = lines[index].rstrip(b"\r")
        index += 1
        if line.lower().startswith(b"=yend"):
            if multipart:
                return InlineFile("yenc", name, None, "one part of a multi-part file"), index
            return _checked_yenc(name, bytes(data), line.decode("latin-1")), index
        data += _yenc_decode(line)
    return InlineFile("yenc", name, None, "no =yend line"), index


# --- uuencode and begin-base64 ---------------------------------------------------------------


def _read_uu(lines: list[str], start: int, _max_bytes: int) -> tuple[InlineFile, int]:
    match = _UU_BEGIN.fullmatch(lines[start].rstrip("\r"))
    assert match is not None  # (the caller matched it)
    name = match.group(2)
    if match.group(1):
        return _read_base64(lines, start + 1, name)
    data = bytearray()
    index = start + 1
    while index < len(lines):
        line = lines[index].rstrip("\r")
        if line.strip().lower() == "end":
            return InlineFile("uuencode", name, bytes(data)), index + 1
        decoded = _uu_line(line)
        if decoded is None:
            return InlineFile("uuencode", name, None, "a line that is not uuencoded"), index
        data += decoded
        index += 1
    return InlineFile("uuencode", name, None, "no end line"), index


def _uu_line(line: str) -> bytes | None:
    """One uuencoded line, or ``None`` when the line is not one (alphabet or length)."""
    if not line:
        return b""
    if not _UU_LINE.fullmatch(line):
        return None
    count = (ord(line[0]) - 32) & 63
    if len(line) > 1 + (count + 2) // 3 * 4 + 2:  # (a checksum character may follow)
        return None
    try:
        return binascii.a2b_uu(line)
    except binascii.Error:
        return None


def _read_base64(lines: list[str], index: int, name: str) -> tuple[InlineFile, int]:
    chunks: list[str] = []
    while index < len(lines):
        line = lines[index].strip()
        if line == "====":
            try:
                data = binascii.a2b_base64("".join(chunks), strict_mode=True)
            except binascii.Error:
                return InlineFile("base64", name, None, "invalid base64"), index + 1
            return InlineFile("base64", name, data), index + 1
        if not line or not _BASE64_LINE.fullmatch(line):
            return InlineFile("base64", name, None, "a line that is not base64"), index
        chunks.append(line)
        index += 1
    return InlineFile("base64", name, None, "no ==== end line"), index


# --- yEnc ------------------------------------------------------------------------------------


def _read_yenc(lines: list[str], start: int, _max_bytes: int) -> tuple[InlineFile, int]:
    header = lines[start].rstrip("\r")
    name_match = _YENC_NAME.search(header)
    name = name_match.group(1) if name_match else ""
    data = bytearray()
    index = start + 1
    if index < len(lines) and lines[index].lower().startswith("=ypart "):
        index += 1
    while index < len(lines):
        line = lines[index].rstrip("\r")
        if line.lower().startswith("=yend"):
            return _checked_yenc(name, bytes(data), line), index + 1
        raw = _eight_bit(line)
        if raw is None:
            problem = "characters that are not 8-bit bytes"
            return InlineFile("yenc", name, None, problem), _past_block(lines, index)
        data += _yenc_decode(raw)
        index += 1
    return InlineFile("yenc", name, None, "no =yend line"), index


def _eight_bit(line: str) -> bytes | None:
    """The bytes of a line of 8-bit text, as the body's Western charset decoded them (ISO
    8859-1, or Windows-1252 as mail readers take it), or ``None``."""
    try:
        return line.encode("latin-1")
    except UnicodeEncodeError:
        pass
    out = bytearray()
    for char in line:
        if ord(char) < 256:
            out.append(ord(char))
            continue
        try:
            out += char.encode("cp1252")
        except UnicodeEncodeError:
            return None
    return bytes(out)


def _past_block(lines: list[str], index: int) -> int:
    """The index after a broken yEnc block: its data runs to its end line or a blank line."""
    while index < len(lines):
        line = lines[index].rstrip("\r")
        if not line:
            return index
        index += 1
        if line.lower().startswith("=yend"):
            return index
    return index


def _yenc_decode(raw: bytes) -> bytes:
    out = bytearray()
    escaped = False
    for byte in raw:
        if escaped:
            out.append((byte - 106) & 0xFF)  # 64 for the escape, 42 for the offset
            escaped = False
        elif byte == 0x3D:  # "="
            escaped = True
        else:
            out.append((byte - 42) & 0xFF)
    return bytes(out)


def _checked_yenc(name: str, data: bytes, trailer: str) -> InlineFile:
    size = _YENC_SIZE.search(trailer)
    if size is not None and int(size.group(1)) != len(data):
        return InlineFile("yenc", name, None, "size does not match =yend")
    crc = _YENC_CRC.search(trailer)
    if crc is not None and int(crc.group(1), 16) != binascii.crc32(data):
        return InlineFile("yenc", name, None, "CRC does not match =yend")
    return InlineFile("yenc", name, data)


# --- BinHex 4.0 ------------------------------------------------------------------------------


def _read_binhex(lines: list[str], start: int, max_bytes: int) -> tuple[InlineFile, int]:
    index = start + 1
    while index < len(lines) and not lines[index].strip():
        index += 1
    encoded: list[str] = []
    opened = False
    while index < len(lines):
        line = lines[index].strip()
        if not _BINHEX_LINE.fullmatch(line) or not line or (not opened and line[0] != ":"):
            return InlineFile("binhex", "", None, "a line that is not BinHex"), index
        index += 1
        if not opened:
            opened, line = True, line[1:]
        if ":" in line:
            encoded.append(line[: line.index(":")])
            return _decoded_binhex("".join(encoded), max_bytes), index
        encoded.append(line)
    return InlineFile("binhex", "", None, "no closing colon"), index


def _decoded_binhex(encoded: str, max_bytes: int) -> InlineFile:
    """The file of a BinHex stream; a malformed one keeps the name its header claims (for
    the notice) once the header is there to read."""
    packed = b""
    try:
        packed = _expand_runs(_six_bit(encoded), max_bytes)
        name, data = _binhex_data_fork(packed)
    except _Malformed as exc:
        claimed = packed[1 : 1 + packed[0]].decode("mac_roman") if packed else ""
        return InlineFile("binhex", claimed, None, str(exc))
    return InlineFile("binhex", name, data)


def _six_bit(encoded: str) -> bytes:
    out = bytearray()
    bits = value = 0
    for char in encoded:
        value = (value << 6) | _BINHEX_VALUES[char]
        bits += 6
        if bits >= 8:
            bits -= 8
            out.append((value >> bits) & 0xFF)
    return bytes(out)


def _expand_runs(packed: bytes, max_bytes: int) -> bytes:
    out = bytearray()
    index = 0
    while index < len(packed):
        byte = packed[index]
        if byte != _BINHEX_RUN:
            out.append(byte)
            index += 1
            continue
        if index + 1 >= len(packed):
            raise _Malformed("a run marker at the end")
        count = packed[index + 1]
        index += 2
        if count == 0:
            out.append(_BINHEX_RUN)
        elif not out:
            raise _Malformed("a run with nothing to repeat")
        else:
            out += bytes([out[-1]]) * (count - 1)
        if len(out) > max_bytes:
            raise _Malformed(f"expands over {max_bytes} bytes")
    return bytes(out)


def _binhex_data_fork(packed: bytes) -> tuple[str, bytes]:
    """The file name and data fork of a decoded BinHex stream, checksums verified."""
    if not packed:
        raise _Malformed("empty")
    name_length = packed[0]
    header_end = 1 + name_length + 1 + 4 + 4 + 2 + 4 + 4
    if len(packed) < header_end + 2:
        raise _Malformed("header cut short")
    name = packed[1 : 1 + name_length].decode("mac_roman")
    data_length = int.from_bytes(packed[header_end - 8 : header_end - 4], "big")
    header_crc = int.from_bytes(packed[header_end : header_end + 2], "big")
    if binascii.crc_hqx(packed[:header_end], 0) != header_crc:
        raise _Malformed("header checksum does not match")
    data_start = header_end + 2
    data = packed[data_start : data_start + data_length]
    data_crc = packed[data_start + data_length : data_start + data_length + 2]
    if len(data) != data_length or len(data_crc) != 2:
        raise _Malformed("data fork cut short")
    if binascii.crc_hqx(data, 0) != int.from_bytes(data_crc, "big"):
        raise _Malformed("data checksum does not match")
    return name, data


class _Malformed(Exception):
    """A block that cannot be decoded whole."""
