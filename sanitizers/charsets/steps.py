"""One named way to decode bytes, strictly or leniently.

A step is a Python codec name or one of the special steps here: UTF-8 (with an optional BOM),
US-ASCII, ISO-2022-JP, EUC-JP as ``euc_jp`` (JIS mappings), CP51932/eucJP-ms (EUC-JP with the
CP932 repertoire and mappings, JIS X 0212 and the eucJP-ms IBM extensions), and CP932 without
its user-defined area 0xF040-0xF9FC (carrier emoji: the Unicode emoji of the sender's carrier's
table when the sender's address names a carrier and the table has the code, else a strict
failure, U+FFFD when lenient), and with au mail's emoji codes 0xEB40-0xEEFC: emoji in au mail
(the sender is au, or the text has a code of leads 0xEB-0xEC, which only au uses); otherwise
0xED-0xEE are the NEC-selected IBM extensions (髙, 﨑), read as kanji beside a JIS X 0208
kanji (a name: 髙橋) or when a code of the block is no au emoji, and alone a code that is
both is ambiguous: U+FFFD (a strict failure), never a guessed kanji or emoji.
Strict steps return None on any error; lenient ones replace and say so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from sanitizers.charsets.carrier_emoji import au_mail_emoji, carrier_emoji
from sanitizers.charsets.decoded import _Lenient, _preferences, _Result
from sanitizers.charsets.iso2022jp import _iso2022jp_lenient, _iso2022jp_strict
from sanitizers.charsets.jis import _REPLACEMENT, _TO_LOW, _jis_pairs


def _utf8(data: bytes) -> _Result:
    return data.decode("utf-8-sig"), "utf-8"


def _ascii(data: bytes) -> _Result:
    return data.decode("ascii"), "us-ascii"


def _euc_jp(data: bytes) -> _Result:
    return data.decode("euc_jp"), "euc-jp"


# A declared charset is still believed when at most 1 in this many characters is replaced.
_TOLERATED_ERROR_RATE: Final = 100
# EUC-JP tokens: runs of JIS X 0208 pairs, runs of SS2 half-width katakana, ASCII, a bad byte.
_EUC_TOKENS: Final = re.compile(
    rb"((?:[\xa1-\xfe]{2})+)|((?:\x8e[\xa1-\xdf])+)|([\x00-\x7f]+)|(\x8f[\xa1-\xfe]{2})"
    rb"|([\x80-\xff])"
)
# eucJP-ms puts the IBM extensions that JIS X 0212 lacks at 0x8FF3F3-0x8FF4FE, in this order
# (source: the EUC-JP-MS charmap of the GNU C Library, localedata/charmaps/EUC-JP-MS). Read as
# JIS X 0213 plane 2 (euc_jis_2004) they would be other, real kanji.
_EUCJP_MS_IBM: Final = (
    "ⅰⅱⅲⅳⅴⅵⅶⅷⅸⅹⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩ＇＂㈱№℡炻仼僴凬匇匤﨎咊坙﨏塚增寬峵嵓"
    "﨑德悅愠敎昻晥晴朗栁﨓﨔橫櫢淸淲瀨凞猪甁皂皞益礰礼神祥福竧靖精綠緖羽荢﨟薰蘒﨡蠇"
    "諸譿賴赶﨣﨤逸郞都鄕﨧﨨閒隆﨩霻靍靑飯飼館馞髙魲鶴黑"
)
_EUCJP_MS_IBM_FIRST_ROW, _EUCJP_MS_IBM_FIRST_CELL = 0xF3, 0xF3


# Bytes that can occur in EUC-JP (0x80-0x8D, 0x90-0xA0 and 0xFF never do).
_EUC_BYTES: Final = bytes((*range(0x80), 0x8E, 0x8F, *range(0xA1, 0xFF)))


def _euc_as_cp932(data: bytes, *, strict: bool) -> str:
    """EUC-JP read with the CP932 repertoire and mappings, as CP51932 and eucJP-ms do: JIS X
    0212 and the eucJP-ms IBM extensions after 0x8F; user-defined characters (rows 0xF5-0xFE)
    are not characters anyone else can read. Raises ValueError, when ``strict``, for a byte
    it cannot read."""
    out: list[str] = []
    for match in _EUC_TOKENS.finditer(data):
        pairs, kana, ascii_run, supplementary, _bad = match.groups()
        if pairs is not None:
            out.append(_jis_pairs(pairs.translate(_TO_LOW), strict=strict)[0])
        elif kana is not None:
            out.append(kana.decode("euc_jp"))
        elif ascii_run is not None:
            out.append(ascii_run.decode("ascii"))
        elif supplementary is not None and (char := _jis0212(supplementary)) is not None:
            out.append(char)
        elif strict:
            raise ValueError("invalid CP51932")
        else:
            out.append(_REPLACEMENT)
    return "".join(out)


def _jis0212(triple: bytes) -> str | None:
    """The character of an EUC-JP 0x8F triple (JIS X 0212, or an eucJP-ms IBM extension)."""
    row, cell = triple[1], triple[2]
    if row >= _EUCJP_MS_IBM_FIRST_ROW:
        index = (row - _EUCJP_MS_IBM_FIRST_ROW) * 94 + cell - _EUCJP_MS_IBM_FIRST_CELL
        return _EUCJP_MS_IBM[index] if 0 <= index < len(_EUCJP_MS_IBM) else None
    try:
        return triple.decode("euc_jp")
    except UnicodeDecodeError:
        return None


def _cp51932(data: bytes) -> _Result:
    return _euc_as_cp932(data, strict=True), "eucjp-ms" if b"\x8f" in data else "cp51932"


# CP932 reads its user-defined area (0xF040-0xF9FC) as private-use characters; that is where
# the carriers' Shift_JIS emoji are (DoCoMo 0xF89F-0xF9FC, au 0xF340-0xF7FC, SoftBank
# 0xF741-0xFBD7, overlapping). No other reader shows the sender's character there.
_USER_DEFINED: Final = re.compile("[\ue000-\ue757]")
_USER_DEFINED_LEAD: Final = re.compile(rb"[\xf0-\xf9]")


# au mail's emoji codes (its ISO-2022-JP rows 0x75-0x7C), found at a character boundary: the
# regular expression steps over whole characters, so a trail byte never counts.
_AU_MAIL_CHARACTER: Final = re.compile(
    rb"(?:[\x81-\x9f\xe0-\xea\xef-\xfc][\x40-\x7e\x80-\xfc]|[\x00-\x80\xa0-\xdf\xfd-\xff])*"
    rb"[\xeb-\xee][\x40-\x7e\x80-\xfc]"
)
_SJIS_CHARACTER: Final = re.compile(rb"[\x81-\x9f\xe0-\xfc][\x40-\x7e\x80-\xfc]|[\x00-\xff]")
_AU_ONLY_LEADS: Final = frozenset({0xEB, 0xEC})  # unassigned in CP932
_AU_MAIL_LEADS: Final = range(0xEB, 0xEF)
_JIS_KANJI_LEADS: Final = frozenset({*range(0x88, 0xA0), *range(0xE0, 0xEB)})


def _cp932_decode(data: bytes, errors: str, *, declared: bool = True) -> str:
    """CP932 with au mail's emoji codes read as the module docstring says (``errors``: as
    for ``bytes.decode``; a code left ambiguous is U+FFFD either way). Undeclared bytes
    (``declared`` false) are au mail only when the sender is au: leads 0xEB-0xEC there are
    more likely EUC-JP kanji, which CP932 then fails to read."""
    if _AU_MAIL_CHARACTER.match(data) is None:
        return data.decode("cp932", errors)
    characters = _SJIS_CHARACTER.findall(data)
    au = _preferences().carrier == "au" or (
        declared
        and any(len(character) == 2 and character[0] in _AU_ONLY_LEADS for character in characters)
    )
    pieces: list[str] = []
    plain: list[bytes] = []
    index = 0
    while index < len(characters):
        if len(characters[index]) < 2 or characters[index][0] not in _AU_MAIL_LEADS:
            plain.append(characters[index])
            index += 1
            continue
        end = index
        while (
            end < len(characters)
            and len(characters[end]) == 2
            and characters[end][0] in _AU_MAIL_LEADS
        ):
            end += 1
        block = characters[index:end]
        emoji = [au_mail_emoji(int.from_bytes(code, "big")) for code in block]
        if not au:
            beside_kanji = (index > 0 and _is_jis_kanji(characters[index - 1])) or (
                end < len(characters) and _is_jis_kanji(characters[end])
            )
            never_kanji = any(code[0] in _AU_ONLY_LEADS for code in block)
            if beside_kanji or never_kanji or not all(emoji):  # kanji, or CP932 fails
                plain += block
                index = end
                continue
            emoji = [None] * len(block)  # both, alone: ambiguous
        pieces.append(b"".join(plain).decode("cp932", errors))
        plain.clear()
        pieces += [found or _REPLACEMENT for found in emoji]
        index = end
    pieces.append(b"".join(plain).decode("cp932", errors))
    return "".join(pieces)


def _is_jis_kanji(character: bytes) -> bool:
    return len(character) == 2 and character[0] in _JIS_KANJI_LEADS


def _cp932(data: bytes) -> _Result:
    text = _cp932_decode(data, "strict")
    if _REPLACEMENT in text:
        raise ValueError("an au mail emoji code that is also an IBM-extension kanji")
    if _may_have_user_defined(data) and _USER_DEFINED.search(text):
        text = _user_defined_replaced(text)
        if _REPLACEMENT in text:
            raise ValueError("CP932 user-defined characters (carrier emoji)")
    return text, "cp932"


def _carrier_emoji(found: re.Match[str]) -> str:
    """The Unicode emoji for a CP932 user-defined character, in the table of the sender's
    carrier (when the sender's address names one), else U+FFFD."""
    carrier = _preferences().carrier
    if carrier is None:
        return _REPLACEMENT
    code = int.from_bytes(found.group().encode("cp932"), "big")
    return carrier_emoji(carrier, code) or _REPLACEMENT


def _user_defined_replaced(text: str) -> str:
    """CP932 text with its user-defined characters read as carrier emoji, else U+FFFD."""
    return _USER_DEFINED.sub(_carrier_emoji, text)


def _may_have_user_defined(data: bytes) -> bool:
    """Whether a byte that can lead a user-defined character occurs (a fast pre-check)."""
    return _USER_DEFINED_LEAD.search(data) is not None


def _cp932_lenient(data: bytes) -> _Lenient:
    text = _user_defined_replaced(_cp932_decode(data, "replace"))
    return text, "cp932", _REPLACEMENT in text


def _cp51932_lenient(data: bytes) -> _Lenient:
    """EUC-JP with replacements: with the CP932 extensions when it is mostly EUC-JP, else
    (garbage, where the token loop would be slow) at codec speed without them."""
    never_euc = len(data.translate(None, _EUC_BYTES))
    if never_euc * _TOLERATED_ERROR_RATE > len(data):
        rough = data.decode("euc_jp", "replace")
        return rough, "euc-jp", _REPLACEMENT in rough
    text = _euc_as_cp932(data, strict=False)
    return text, "cp51932", _REPLACEMENT in text


def _iso2022jp(data: bytes) -> _Result:
    result = _iso2022jp_strict(data)
    if result is None:
        raise ValueError("invalid ISO-2022-JP")
    return result


# Steps whose decoding is more than one stdlib codec call. A step not listed here is a Python
# codec name, decoded with ``bytes.decode`` and reported with "_" written as "-".
_SPECIAL_STEPS: Final[dict[str, Callable[[bytes], _Result]]] = {
    "utf-8": _utf8,
    "us-ascii": _ascii,
    "iso-2022-jp": _iso2022jp,
    "euc-jp": _euc_jp,
    "cp51932": _cp51932,
    "cp932": _cp932,
}
_LENIENT_STEPS: Final[dict[str, Callable[[bytes], _Lenient]]] = {
    "iso-2022-jp": _iso2022jp_lenient,
    "euc-jp": _cp51932_lenient,
    "cp932": _cp932_lenient,
}
_LENIENT_CODECS: Final = {"utf-8": "utf-8-sig", "us-ascii": "ascii"}


def _strict(step: str, data: bytes) -> _Result | None:
    special = _SPECIAL_STEPS.get(step)
    try:
        if special is not None:
            return special(data)
        return data.decode(step), step.replace("_", "-")
    except ValueError:  # UnicodeDecodeError included
        return None


def _lenient(step: str, data: bytes) -> _Lenient:
    special = _LENIENT_STEPS.get(step)
    if special is not None:
        return special(data)
    text = data.decode(_LENIENT_CODECS.get(step, step), "replace")
    return text, step.replace("_", "-"), _REPLACEMENT in text
