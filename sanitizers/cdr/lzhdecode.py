"""The LHA ``-lh5-``, ``-lh6-`` and ``-lh7-`` decoder (LZSS with static Huffman blocks), in
Python, never producing more than the member's declared size.

Threat model: the compressed stream is hostile. lhafile's C decoder runs to the end of the
input whatever size the header declares (a few bytes of tables can describe megabytes of
output: a one-symbol table costs no bits per symbol) and crashes the process when its output
cannot be written; this decoder stops at the declared size, refuses a match that reaches
before the start of the output and tables that describe no valid code (``malformed``), and
reads past the end of the input as zeros, as LHA does (the CRC then fails).
"""

from __future__ import annotations

from typing import Final

from sanitizers.errors import SanitizeError
from sanitizers.vocabulary import Reason

# Window bits and position-table width per method (LHA's dicbit and pbit).
METHODS: Final = {b"-lh5-": (13, 4), b"-lh6-": (15, 5), b"-lh7-": (16, 5)}
_NC: Final = 510  # 256 literals + match lengths 3..256
_CBIT: Final = 9
_NT: Final = 19
_TBIT: Final = 5
_THRESHOLD: Final = 3


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC16: Final = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC-16/ARC, the checksum LHA stores for each member."""
    crc = 0
    table = _CRC16
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


class _Bits:
    """MSB-first bit reader over a small buffer; past the end it reads zeros."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._buf = 0
        self._count = 0

    def _fill(self, need: int) -> None:
        while self._count < need:
            byte = self._data[self._pos] if self._pos < len(self._data) else 0
            self._pos += 1
            self._buf = (self._buf << 8) | byte
            self._count += 8

    def peek(self, count: int) -> int:
        self._fill(count)
        return (self._buf >> (self._count - count)) & ((1 << count) - 1)

    def skip(self, count: int) -> None:
        self._fill(count)
        self._count -= count
        self._buf &= (1 << self._count) - 1

    def take(self, count: int) -> int:
        value = self.peek(count)
        self.skip(count)
        return value


class _Code:
    """A canonical Huffman code (LHA's make_table order: by length, then by symbol), decoded
    through a table of the longest code's width; a one-symbol code costs no bits."""

    def __init__(self, lengths: list[int], constant: int | None = None) -> None:
        self.constant = constant
        if constant is not None:
            return
        width = max(lengths) if lengths else 0
        if width == 0 or width > 16:
            raise SanitizeError(Reason.MALFORMED, "lzh: Huffman table without codes")
        self.width = width
        self.table: list[tuple[int, int]] = [(-1, 0)] * (1 << width)
        code = 0
        for length in range(1, width + 1):
            for symbol, symbol_length in enumerate(lengths):
                if symbol_length != length:
                    continue
                span = 1 << (width - length)
                start = code << (width - length)
                if start + span > len(self.table):
                    raise SanitizeError(Reason.MALFORMED, "lzh: oversubscribed Huffman table")
                self.table[start : start + span] = [(symbol, length)] * span
                code += 1
            code <<= 1

    def decode(self, bits: _Bits) -> int:
        if self.constant is not None:
            return self.constant
        symbol, length = self.table[bits.peek(self.width)]
        if symbol < 0:
            raise SanitizeError(Reason.MALFORMED, "lzh: bits that are no code")
        bits.skip(length)
        return symbol


def _read_pt(bits: _Bits, count: int, nbit: int, special: int) -> _Code:
    n = bits.take(nbit)
    if n == 0:
        return _Code([], constant=bits.take(nbit))
    if n > count:
        raise SanitizeError(Reason.MALFORMED, "lzh: table too long")
    lengths: list[int] = []
    while len(lengths) < n:
        length = bits.peek(3)
        if length == 7:
            bits.skip(3)
            while bits.take(1):
                length += 1
                if length > 16:
                    raise SanitizeError(Reason.MALFORMED, "lzh: code length over 16")
        else:
            bits.skip(3)
        lengths.append(length)
        if len(lengths) == special:
            lengths.extend([0] * bits.take(2))
    return _Code(lengths[:count] + [0] * (count - min(len(lengths), count)))


def _read_c(bits: _Bits, pt: _Code) -> _Code:
    n = bits.take(_CBIT)
    if n == 0:
        return _Code([], constant=bits.take(_CBIT))
    if n > _NC:
        raise SanitizeError(Reason.MALFORMED, "lzh: table too long")
    lengths: list[int] = []
    while len(lengths) < n:
        c = pt.decode(bits)
        if c == 0:
            lengths.append(0)
        elif c == 1:
            lengths.extend([0] * (bits.take(4) + 3))
        elif c == 2:
            lengths.extend([0] * (bits.take(_CBIT) + 20))
        else:
            lengths.append(c - 2)
    if len(lengths) > _NC:
        raise SanitizeError(Reason.MALFORMED, "lzh: table too long")
    return _Code(lengths + [0] * (_NC - len(lengths)))


def decode(method: bytes, untrusted_data: bytes, size: int) -> bytes:
    """The first ``size`` bytes the stream decodes to (never more)."""
    dicbit, pbit = METHODS[method]
    bits = _Bits(untrusted_data)
    out = bytearray()
    remaining = 0
    codes: _Code | None = None
    positions: _Code | None = None
    while len(out) < size:
        if remaining == 0:
            remaining = bits.take(16)
            if remaining == 0:
                raise SanitizeError(Reason.MALFORMED, "lzh: empty block")
            pt = _read_pt(bits, _NT, _TBIT, 3)
            codes = _read_c(bits, pt)
            positions = _read_pt(bits, dicbit + 1, pbit, -1)
        assert codes is not None
        assert positions is not None
        remaining -= 1
        c = codes.decode(bits)
        if c < 256:
            out.append(c)
            continue
        length = c - 256 + _THRESHOLD
        p = positions.decode(bits)
        if p > dicbit:
            raise SanitizeError(Reason.MALFORMED, "lzh: position code out of range")
        distance = ((1 << (p - 1)) + bits.take(p - 1) if p > 1 else p) + 1
        if distance > len(out):
            raise SanitizeError(Reason.MALFORMED, "lzh: match before the start")
        start = len(out) - distance
        length = min(length, size - len(out))
        if distance >= length:
            out += out[start : start + length]
        else:
            for index in range(length):
                out.append(out[start + index])
    return bytes(out)
