"""Japanese text into ISO-2022-JP as Japanese Windows writes it (CP50221).

The CP932 repertoire, half-width katakana with ``ESC ( I``, the IBM extensions as their NEC
equivalents, always ending in ASCII; None for text that would not come back unchanged from
``decode_body(..., "iso-2022-jp")`` (ESC, SO, SI, private-use characters, the six characters
CP932 writes only one way, and an IBM-extension character standing alone whose code is also an
au emoji, which the decoder reports as ambiguous).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from sanitizers.charsets.iso2022jp import _ambiguous_positions
from sanitizers.charsets.jis import (
    _CP932_TO_JIS,
    _CP932_TO_JIS_CHARS,
    _EXTENSION_ONLY,
    _JIS_CP932_PAIRS,
    _TO_LOW,
    _jis_to_sjis,
)

__all__ = ["encode_iso2022jp"]

# Half-width katakana runs, and runs of double-byte characters, in Shift_JIS.
_SJIS_RUNS: Final = re.compile(rb"([\xa1-\xdf]+)|((?:[\x81-\x9f\xe0-\xef][\x40-\xfc])+)")
_NOT_JIS: Final = re.compile("[^\u2121-\u7e7e]")
_TO_KANJI, _TO_ASCII = b"\x1b$B", b"\x1b(B"
_KANJI_SEGMENTS: Final = re.compile(rb"\x1b\$B((?:[\x21-\x7e]{2})*)")
# ESC, SO and SI would change the shift state; the JIS-side mappings do not round-trip.
_NOT_ENCODABLE: Final = ("\x0e", "\x0f", "\x1b", *_JIS_CP932_PAIRS)


class _NotEncodableError(ValueError):
    """A character has no ISO-2022-JP form."""


@lru_cache(maxsize=1)
def _sjis_to_jis_table() -> dict[int, int]:
    """Shift_JIS code -> JIS code, for every pair of the CP932 repertoire that ISO-2022-JP can
    carry (JIS X 0208, NEC row 13, NEC-selected IBM rows 89-92). Built on first use."""
    table: dict[int, int] = {}
    for j1 in range(0x21, 0x7F):
        for j2 in range(0x21, 0x7F):
            sjis = _jis_to_sjis(j1, j2)
            try:
                sjis.decode("cp932")
            except UnicodeDecodeError:
                continue
            table[int.from_bytes(sjis, "big")] = (j1 << 8) | j2
    return table


@lru_cache(maxsize=1)
def _extended_runs() -> re.Pattern[str]:
    """Runs of characters Python's iso2022_jp cannot write: half-width katakana and the CP932
    extensions (compiled on first use)."""
    return re.compile(f"[{''.join(sorted(_EXTENSION_ONLY))}\uff61-\uff9f]+")


def _kanji_run(sjis: bytes) -> bytes:
    jis = sjis.decode("utf-16-be").translate(_sjis_to_jis_table())
    if _NOT_JIS.search(jis):
        raise _NotEncodableError
    return jis.encode("utf-16-be")


def _encode_extended(sjis: bytes) -> bytes:
    """The CP932 bytes of a run of half-width katakana and CP932 extensions as ISO-2022-JP,
    ending in ASCII. (Python's iso2022_jp writes everything else.)"""
    out: list[bytes] = []
    position = 0
    for match in _SJIS_RUNS.finditer(sjis):
        if match.start() != position:
            raise _NotEncodableError
        position = match.end()
        kana_run, kanji_run = match.groups()
        if kana_run is not None:
            out += (b"\x1b(I", kana_run.translate(_TO_LOW))
        else:
            out += (b"\x1b$B", _kanji_run(kanji_run))
    if position != len(sjis):
        raise _NotEncodableError
    out.append(b"\x1b(B")
    return b"".join(out)


def encode_iso2022jp(text: str) -> bytes | None:
    """``text`` in ISO-2022-JP as Japanese Windows writes it (CP50221: the CP932 repertoire,
    half-width katakana with ``ESC ( I``), ending in ASCII; None when a character cannot be
    written so that ``decode_body(..., "iso-2022-jp")`` gives ``text`` back. Outside the
    repertoire: ESC, SO and SI, user-defined (private-use) characters, and the six characters
    that CP932 only writes one way (U+301C, U+2016, U+2212, U+00A2, U+00A3, U+00AC)."""
    if any(char in text for char in _NOT_ENCODABLE):
        return None
    try:
        text.encode("cp932")
    except UnicodeEncodeError:
        return None
    if any(char in text for char in _CP932_TO_JIS_CHARS):
        text = text.translate(_CP932_TO_JIS)
    try:  # The common case in one codec call: JIS X 0208 and ASCII only.
        return text.encode("iso2022_jp")
    except UnicodeEncodeError:
        pass
    pieces: list[bytes] = []
    position = 0
    try:
        for match in _extended_runs().finditer(text):
            pieces.append(text[position : match.start()].encode("iso2022_jp"))
            pieces.append(_encode_extended(match.group().encode("cp932")))
            position = match.end()
        pieces.append(text[position:].encode("iso2022_jp"))
    except (UnicodeEncodeError, _NotEncodableError):
        return None
    data = _joined(pieces)
    for segment in _KANJI_SEGMENTS.finditer(data):
        if _ambiguous_positions(segment.group(1)):  # would come back as U+FFFD
            return None
    return data


def _joined(pieces: list[bytes]) -> bytes:
    """The pieces as one text, a kanji run that one piece ends and the next starts written as
    one segment (as Windows writes it: the decoder reads a code's neighbours in its segment)."""
    out: list[bytes] = []
    for piece in pieces:
        if out and piece.startswith(_TO_KANJI) and _ends_in_kanji(out[-1]):
            out[-1] = out[-1][: -len(_TO_ASCII)] + piece[len(_TO_KANJI) :]
        else:
            out.append(piece)
    return b"".join(out)


def _ends_in_kanji(piece: bytes) -> bool:
    """Whether ``piece`` ends with a kanji segment closed by a return to ASCII."""
    if not piece.endswith(_TO_ASCII):
        return False
    last = piece.rfind(b"\x1b", 0, len(piece) - len(_TO_ASCII))
    return last != -1 and piece.startswith(_TO_KANJI, last)
