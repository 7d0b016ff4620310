"""JIS X 0208 codes read as Windows (CP932) reads them.

Intent: text written on Japanese Windows comes back as typed: NEC row 13 (①, ㈱, ㍑), the
NEC-selected IBM extensions (rows 89-92: ⅰ, 髙, 﨑) and the six codes on which JIS and CP932
map differently (0x2141 is U+FF5E ～, not U+301C 〜). A code CP932 does not have is U+FFFD,
never a private-use character. Used by ISO-2022-JP, EUC-JP and the encoder.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

_JIS_ROWS_EXTENDED: Final = (0x2D, 0x79, 0x7A, 0x7B, 0x7C)  # NEC row 13, NEC-selected IBM
_TO_HIGH: Final = bytes.maketrans(bytes(range(0x21, 0x7F)), bytes(range(0xA1, 0xFF)))
_TO_LOW: Final = bytes.maketrans(bytes(range(0xA1, 0xFF)), bytes(range(0x21, 0x7F)))
_REPLACEMENT: Final = "\ufffd"
# Where Python's JIS mappings (euc_jp, iso2022_jp) and CP932 disagree on a JIS X 0208 code.
_JIS_CP932_PAIRS: Final = {
    "\u301c": "\uff5e",  # 0x2141 WAVE DASH -> FULLWIDTH TILDE
    "\u2016": "\u2225",  # 0x2142 DOUBLE VERTICAL LINE -> PARALLEL TO
    "\u2212": "\uff0d",  # 0x215D MINUS SIGN -> FULLWIDTH HYPHEN-MINUS
    "\u00a2": "\uffe0",  # 0x2171 CENT SIGN -> FULLWIDTH CENT SIGN
    "\u00a3": "\uffe1",  # 0x2172 POUND SIGN -> FULLWIDTH POUND SIGN
    "\u00ac": "\uffe2",  # 0x224C NOT SIGN -> FULLWIDTH NOT SIGN
}
_CP932_TO_JIS: Final = str.maketrans({cp932: jis for jis, cp932 in _JIS_CP932_PAIRS.items()})
_CP932_TO_JIS_CHARS: Final = tuple(_JIS_CP932_PAIRS.values())


def _jis_to_sjis(j1: int, j2: int) -> bytes:
    """The Shift_JIS bytes of the JIS X 0208 code (j1, j2), both in 0x21..0x7E."""
    s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
    s2 = j2 + (0x1F if j2 <= 0x5F else 0x20) if j1 & 1 else j2 + 0x7E
    return bytes((s1, s2))


@lru_cache(maxsize=1)
def _jis_table() -> dict[int, str]:
    """Every JIS X 0208 code (j1 << 8 | j2) -> the character CP932 reads, or U+FFFD where CP932
    has none. Built on first use (only text with CP932 extensions needs it)."""
    table: dict[int, str] = {}
    for j1 in range(0x21, 0x7F):
        for j2 in range(0x21, 0x7F):
            try:
                table[(j1 << 8) | j2] = _jis_to_sjis(j1, j2).decode("cp932")
            except UnicodeDecodeError:
                table[(j1 << 8) | j2] = _REPLACEMENT
    return table


def _extension_only_chars() -> frozenset[str]:
    """The characters of the CP932 extension rows that JIS X 0208 does not have."""
    only = set()
    for j1 in _JIS_ROWS_EXTENDED:
        for j2 in range(0x21, 0x7F):
            try:
                char = _jis_to_sjis(j1, j2).decode("cp932")
                char.encode("iso2022_jp")
            except UnicodeDecodeError:
                continue
            except UnicodeEncodeError:
                only.add(char)
    return frozenset(only)


_EXTENSION_ONLY: Final = _extension_only_chars()


def _cp932_mapping(text: str) -> str:
    """Re-map the six JIS X 0208 codes on which JIS and CP932 disagree to the CP932 side."""
    for jis, cp932 in _JIS_CP932_PAIRS.items():
        if jis in text:
            # str.replace runs at memchr speed; a dict-table translate is per character.
            text = text.replace(jis, cp932)
    return text


def _jis_pairs(jis: bytes, *, strict: bool) -> tuple[str, bool]:
    """Read a run of JIS X 0208 pairs (bytes 0x21..0x7E, even length) as CP932 does; True
    when CP932 extension characters were needed. Python's euc_jp reads the common case; a run
    it rejects goes through the full table, still at codec speed (one str.translate). Raises
    ValueError, when ``strict``, for a code CP932 does not have."""
    try:
        return _cp932_mapping(jis.translate(_TO_HIGH).decode("euc_jp")), False
    except UnicodeDecodeError:
        text = jis.decode("utf-16-be").translate(_jis_table())
    if strict and _REPLACEMENT in text:
        raise ValueError("JIS X 0208 code that CP932 does not have")
    # A CP932 code outside JIS X 0208 was read (NEC row 13 has duplicates of JIS characters).
    return text, True
