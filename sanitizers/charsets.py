"""Turn untrusted bytes from a mail into exact text, and Japanese text back into ISO-2022-JP.

Intent: Japanese text is preserved exactly (DESIGN rule 6). The charset a message declares is a
hint, never a fact: it may be missing, unknown, wrong, or carry Windows extensions that the
standard codecs reject. Every decode here either succeeds strictly, or says so: ``lossy`` is True
exactly when some input was replaced by U+FFFD, and ``detected`` is True when the declared
charset was missing, unknown or wrong and this module chose another one.

Threat model: every byte and every charset label comes from the sender.

* Labels are looked up only if they look like charset names, only text codecs are used, and
  codecs that are transformations rather than charsets (``unicode_escape``, ``idna``,
  ``punycode``, ``rot13``, ``base64``, …) are refused.
* Header text (``decode_header``, ``decode_param``, ``decode_header_bytes``) is
  :func:`sanitizers.safetext.display_text`: line breaks and tabs become a space, the other
  unsafe characters (controls, bidi controls, lone surrogates) are deleted and named in
  ``Decoded.removed``. That is a safety transformation, not a decoding failure, so it does not
  set ``lossy``. The result is display text, not a re-parseable header:
  a decoded display name may contain ``"``, ``,`` or ``<``, and callers must quote or re-encode.
* Bodies (``decode_body``) are decoded as they are; what to do with controls is the caller's job.
* Nothing here raises on bad input; cost is linear in the input (charset-normalizer, used only
  for mail that is neither UTF-8 nor Japanese, bounds its own work).

Decisions:

* ISO-2022-JP is decoded through CP932: JIS X 0208 pairs are read as Windows reads them, so the
  NEC row 13 characters (①, ㈱, ㍑, Ⅰ), the NEC-selected IBM extensions (rows 89-92: ⅰ, 髙, 﨑) and
  the six JIS/Windows mapping traps come out as the Windows sender typed them: 0x2141 is U+FF5E
  (～, not U+301C 〜), 0x2142 U+2225, 0x215D U+FF0D, 0x2171 U+FFE0, 0x2172 U+FFE1, 0x224C U+FFE2.
  ``ESC $ @`` is read as ``ESC $ B``, ``ESC ( J`` as ASCII (as CP932 reads 0x5C and 0x7E),
  ``ESC ( I`` as half-width katakana, ``ESC $ ( D`` as JIS X 0212; ``ESC & @`` is ignored; a
  missing final ``ESC ( B`` is accepted; line breaks do not reset the shift state.
* EUC-JP is tried as ``euc_jp`` (JIS mappings, e.g. U+301C), then as CP51932 (EUC-JP with the
  CP932 extensions and CP932 mappings: only a Windows sender produces those), then
  ``euc_jis_2004``. Shift_JIS and its aliases are decoded as CP932.
* Superset codecs are used for common labels: GB2312/GBK as GB18030, EUC-KR as CP949,
  ISO-8859-1 as windows-1252 (ISO-8859-1 only when windows-1252 rejects a byte). Any other
  label Python knows as a text codec is used (UTF-7 and UTF-16 included: they are charsets,
  and the result is only text); unknown labels are detected.
* In headers, ``charset`` lists the non-ASCII charsets used, comma-separated, in order
  (``"iso-2022-jp-ms,utf-8"``); ``lossy`` and ``detected`` hold if they hold for any part.
  Raw 8-bit header text has no declared charset, so its ``detected`` is True.
* Detection order, when the declared charset is missing, unknown or does not decode strictly:
  ISO-2022-JP (escape sequences present; if broken, still ISO-2022-JP, lossy), US-ASCII, UTF-8,
  damaged UTF-8 (a few broken sequences among many valid ones: lossy), the most plausible
  Japanese decoding (CP932 or EUC-JP, scored on kana and kanji against half-width punctuation,
  private-use characters and controls, which is what EUC-JP read as CP932 looks like; a long
  text without any kana is not Japanese), then the declared charset with replacements if they
  are rare (at most 1 in 100 characters), then charset-normalizer restricted to a few
  non-Japanese charsets, and last the lenient decoding that looks least damaged (``lossy``).
  Before the declared charset is believed: 7-bit data with ISO-2022-JP escape sequences is
  ISO-2022-JP whatever it declares, and a declared single-byte charset (ISO-8859-x,
  windows-125x), which decodes anything, yields to UTF-8 and to Japanese with kana.
* ``encode_iso2022jp`` writes half-width katakana with ``ESC ( I`` (as CP50221 does) so that
  text round-trips exactly; the IBM extensions are written as their NEC equivalents.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Final

from charset_normalizer import from_bytes

from sanitizers.safetext import display_text, unsafe_classes

__all__ = [
    "DEFAULT_JAPANESE_PRIOR",
    "Decoded",
    "Preferences",
    "carrier_of",
    "decode_body",
    "decode_header",
    "decode_header_bytes",
    "decode_html",
    "decode_param",
    "decode_raw_runs",
    "encode_iso2022jp",
    "header_bytes",
    "html_charset",
    "join_decoded",
    "preferences",
]


@dataclass(frozen=True, slots=True)
class Decoded:
    """Text decoded from untrusted bytes, with how it was decoded."""

    text: str
    charset: str
    lossy: bool
    detected: bool
    # Header text only: the unsafe classes of sanitizers.safetext that were removed.
    removed: frozenset[str] = frozenset()


# How strongly a valid Japanese reading is preferred to a Chinese or Korean one (see
# ``_foreign_wins``); the default of ``policy.charsets.japanese_prior``.
DEFAULT_JAPANESE_PRIOR: Final = 0.15
# Mail domains of the carrier whose ISO-2022-JP mail puts emoji in JIS rows 0x75-0x7C (au by
# KDDI, and UQ mobile on the same mail system).
_AU_DOMAINS: Final = ("ezweb.ne.jp", "au.com", "uqmobile.jp")


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a decoding may assume about the mail it is part of (set per message)."""

    japanese_prior: float = DEFAULT_JAPANESE_PRIOR
    # The sender's mobile carrier, when its address says so ("au"); None when unknown.
    carrier: str | None = None


_PREFERENCES: Final[ContextVar[Preferences | None]] = ContextVar(
    "mukaika_charset_preferences", default=None
)
_DEFAULT_PREFERENCES: Final = Preferences()


def _preferences() -> Preferences:
    return _PREFERENCES.get() or _DEFAULT_PREFERENCES


@contextmanager
def preferences(chosen: Preferences) -> Iterator[None]:
    """Decode with ``chosen`` inside the ``with`` block (one message's sanitization)."""
    token = _PREFERENCES.set(chosen)
    try:
        yield
    finally:
        _PREFERENCES.reset(token)


def carrier_of(untrusted_address: str) -> str | None:
    """The mobile carrier whose emoji the mail of ``untrusted_address`` may carry, or None."""
    domain = untrusted_address.rpartition("@")[2].strip().strip(">").lower()
    if any(domain == known or domain.endswith("." + known) for known in _AU_DOMAINS):
        return "au"
    return None


# A decoding attempt that succeeded: the text and the (normalised) charset really used.
_Result = tuple[str, str]
# A lenient decoding: text, charset, lossy.
_Lenient = tuple[str, str, bool]
_Convert = Callable[[bytes], str]

# ---------------------------------------------------------------------------------------------
# JIS X 0208 read through CP932
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# ISO-2022-JP
# ---------------------------------------------------------------------------------------------

_AS_ASCII, _AS_KANJI, _AS_KANA, _AS_JIS0212, _AS_UNKNOWN = range(5)
_DESIGNATIONS: Final = {
    b"\x1b(B": _AS_ASCII,
    b"\x1b(J": _AS_ASCII,
    b"\x1b(I": _AS_KANA,
    b"\x1b$@": _AS_KANJI,
    b"\x1b$B": _AS_KANJI,
    b"\x1b$(B": _AS_KANJI,
    b"\x1b$(@": _AS_KANJI,
    b"\x1b$(D": _AS_JIS0212,
}
_ANNOUNCER: Final = b"\x1b&@"
# Shift out / shift in: half-width katakana in between, whatever G0 holds (CP50221/CP50222).
_SO, _SI = b"\x0e", b"\x0f"
_ESCAPE_SEQUENCE: Final = re.compile(rb"(\x1b[\x20-\x2f]{1,3}[\x30-\x7e]|\x0e|\x0f)")
_ISO2022JP_SIGNATURE: Final = re.compile(rb"\x1b(?:\$[@B]|\(I|\$\(D)|\x0e[\x21-\x5f]+\x0f")
# JIS rows that au (KDDI) mail uses for emoji: 0x75-0x78 are unassigned in CP932, 0x79-0x7C are
# also the NEC-selected IBM extensions (髙, 﨑), so they are read as emoji only in au mail or in
# text that also has codes of rows 0x75-0x78.
_AU_EMOJI_ROWS: Final = range(0x75, 0x7D)
_AU_ONLY_ROW: Final = re.compile(rb"\x1b\$[@B](?:[\x21-\x7e]{2})*?[\x75-\x78][\x21-\x7e]")
# Designations of JIS X 0213 (ISO-2022-JP-3 and -2004): Python's codecs read them.
_JIS_X_0213_SETS: Final = re.compile(rb"\x1b\$\([OPQ]")
# Inside a segment: runs of characters, runs of whitespace/controls, or bad bytes.
_ALL_PAIRS: Final = re.compile(rb"(?:[\x21-\x7e]{2})+")
_PAIR_TOKENS: Final = re.compile(
    rb"((?:[\x21-\x7e]{2})+)|([\x00-\x20]+)|([\x7f-\xff]+|[\x21-\x7e])"
)
_KANA_TOKENS: Final = re.compile(rb"([\x21-\x5f]+)|([\x00-\x20]+)|([\x60-\xff]+)")


class _Iso2022Decoder:
    """One pass over ISO-2022-JP bytes, segment by segment (an escape sequence starts each).
    ``strict`` makes any invalid byte an error (ValueError); otherwise it becomes U+FFFD."""

    def __init__(self, *, strict: bool, au_emoji: bool = False) -> None:
        self.strict = strict
        self.au_emoji = au_emoji
        self.kana = False
        self.extended = False
        self.jis0212 = False

    def bad(self) -> str:
        if self.strict:
            raise ValueError("invalid ISO-2022-JP")
        return _REPLACEMENT

    def decode(self, data: bytes) -> str:
        parts = _ESCAPE_SEQUENCE.split(data)
        out = [self.ascii(parts[0])]
        mode = shifted_from = _AS_ASCII
        for index in range(1, len(parts), 2):
            escape, segment = parts[index], parts[index + 1]
            if escape == _SO:
                if mode != _AS_KANA:
                    shifted_from, mode = mode, _AS_KANA
            elif escape == _SI:
                mode = shifted_from if mode == _AS_KANA else mode
            elif escape != _ANNOUNCER:
                mode = shifted_from = _DESIGNATIONS.get(escape, _AS_UNKNOWN)
                if mode == _AS_UNKNOWN:
                    out.append(self.bad())
            if mode == _AS_KANJI and _ALL_PAIRS.fullmatch(segment):  # the common case
                out.append(self.kanji_run(segment))
            elif segment:
                out.append(self.segment(mode, segment))
        return "".join(out)

    def segment(self, mode: int, segment: bytes) -> str:
        if mode == _AS_ASCII:
            return self.ascii(segment)
        if mode == _AS_KANA:
            self.kana = True
            return self.tokens(_KANA_TOKENS, segment, self.kana_run)
        if mode == _AS_KANJI:
            return self.tokens(_PAIR_TOKENS, segment, self.kanji_run)
        if mode == _AS_JIS0212:
            self.jis0212 = True
            return self.tokens(_PAIR_TOKENS, segment, self.jis0212_run)
        return self.tokens(_PAIR_TOKENS, segment, lambda _run: self.bad())

    def ascii(self, segment: bytes) -> str:
        if segment.isascii() and b"\x1b" not in segment:
            return segment.decode("ascii")
        self.bad()
        return segment.decode("ascii", "replace").replace("\x1b", _REPLACEMENT)

    def tokens(self, pattern: re.Pattern[bytes], segment: bytes, convert: _Convert) -> str:
        """Runs of characters, whitespace/controls passed through, one U+FFFD per bad byte."""
        out: list[str] = []
        for match in pattern.finditer(segment):
            run, space, _bad = match.groups()
            if run is not None:
                out.append(convert(run))
            elif space is not None:
                out.append(space.decode("ascii"))
            else:
                out.append(self.bad() * len(match.group()))
        return "".join(out)

    def kanji_run(self, run: bytes) -> str:
        if self.au_emoji and any(run[i] in _AU_EMOJI_ROWS for i in range(0, len(run), 2)):
            return self.with_emoji(run)
        text, extended = _jis_pairs(run, strict=self.strict)
        self.extended |= extended
        return text

    def with_emoji(self, run: bytes) -> str:
        """A run with au emoji: no public table maps them here, so each is a replacement."""
        out: list[str] = []
        start = 0
        for index in range(0, len(run), 2):
            if run[index] in _AU_EMOJI_ROWS:
                if start < index:
                    out.append(self.kanji_run(run[start:index]))
                out.append(self.bad())
                start = index + 2
        if start < len(run):
            out.append(self.kanji_run(run[start:]))
        return "".join(out)

    @staticmethod
    def kana_run(run: bytes) -> str:
        return run.translate(_TO_HIGH).decode("cp932")

    def jis0212_run(self, run: bytes) -> str:
        high = run.translate(_TO_HIGH)
        euc = b"".join(b"\x8f" + high[i : i + 2] for i in range(0, len(high), 2))
        return euc.decode("euc_jp", "strict" if self.strict else "replace")

    def charset(self) -> str:
        if self.kana or self.extended:
            return "iso-2022-jp-ms"
        return "iso-2022-jp-1" if self.jis0212 else "iso-2022-jp"


def _jis_extension(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler for Python's iso2022_jp, which rejects the CP932 extension rows in
    JIS X 0208 mode: the character CP932 reads for the rejected pair, else the error stands.
    The codec reuses one exception object per call: a call costs a Python call, not a copy."""
    if isinstance(exc, UnicodeDecodeError) and exc.end - exc.start == 2:
        pair = exc.object[exc.start : exc.end]
        char = _jis_table().get(int.from_bytes(pair, "big"), _REPLACEMENT)
        if char != _REPLACEMENT:
            return char, exc.end
    raise exc


_JIS_EXTENSION: Final = "mukaika.jis-cp932-extension"
codecs.register_error(_JIS_EXTENSION, _jis_extension)


def _iso2022jp_fast(data: bytes) -> _Result | None:
    """The common case at codec speed: Python's iso2022_jp, read through CP932."""
    if b"\x1b(J" in data:  # Python reads JIS-Roman 0x5C and 0x7E as U+00A5 and U+203E.
        return None
    if _SO in data or _au_emoji(data):  # Python passes SO/SI through; au emoji are not kanji.
        return None
    try:
        text, charset = data.decode("iso2022_jp"), "iso-2022-jp"
    except UnicodeDecodeError:
        try:
            text, charset = data.decode("iso2022_jp", _JIS_EXTENSION), "iso-2022-jp-ms"
        except UnicodeDecodeError:
            return None
    if "\x1b" in text:  # Python passes an escape it does not know through as text.
        return None
    return _cp932_mapping(text), charset


def _iso2022jp_strict(data: bytes) -> _Result | None:
    fast = _iso2022jp_fast(data)
    if fast is not None:
        return fast
    decoder = _Iso2022Decoder(strict=True, au_emoji=_au_emoji(data))
    try:
        text = decoder.decode(data)
    except ValueError:
        return _other_iso2022(data)
    return text, decoder.charset()


def _au_emoji(data: bytes) -> bool:
    """Whether JIS rows 0x75-0x7C are au emoji: the sender is au, or the text has a code of
    the rows only au uses."""
    return _preferences().carrier == "au" or _AU_ONLY_ROW.search(data) is not None


def _other_iso2022(data: bytes) -> _Result | None:
    """ISO-2022-JP-2004 or -3 (JIS X 0213) text, whatever its label, read by Python's codecs."""
    if _JIS_X_0213_SETS.search(data) is None:
        return None
    for codec in ("iso2022_jp_2004", "iso2022_jp_3"):
        try:
            return data.decode(codec), codec.replace("_", "-").replace("iso2022", "iso-2022")
        except UnicodeDecodeError:
            continue
    return None


def _iso2022jp_lenient(data: bytes) -> _Lenient:
    decoder = _Iso2022Decoder(strict=False, au_emoji=_au_emoji(data))
    text = decoder.decode(data)
    return text, decoder.charset(), _REPLACEMENT in text


# ---------------------------------------------------------------------------------------------
# Decoding steps: one named way to decode bytes, strictly or leniently
# ---------------------------------------------------------------------------------------------


def _utf8(data: bytes) -> _Result:
    return data.decode("utf-8-sig"), "utf-8"


def _ascii(data: bytes) -> _Result:
    return data.decode("ascii"), "us-ascii"


def _euc_jp(data: bytes) -> _Result:
    return data.decode("euc_jp"), "euc-jp"


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


def _cp932(data: bytes) -> _Result:
    text = data.decode("cp932")
    if _USER_DEFINED.search(text):
        raise ValueError("CP932 user-defined characters (carrier emoji)")
    return text, "cp932"


def _cp932_lenient(data: bytes) -> _Lenient:
    text = _USER_DEFINED.sub(_REPLACEMENT, data.decode("cp932", "replace"))
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


# ---------------------------------------------------------------------------------------------
# Charset labels -> plans (the steps to try, in order)
# ---------------------------------------------------------------------------------------------

_Plan = tuple[str, ...]
_EUC_JP_PLAN: Final = ("euc-jp", "cp51932", "euc_jis_2004")
_PLAN_ALIASES: Final[dict[_Plan, tuple[str, ...]]] = {
    ("utf-8",): ("utf-8", "utf8", "unicode-1-1-utf-8", "x-unicode20utf8"),
    ("us-ascii",): (
        "us-ascii",
        "ascii",
        "us",
        "ansi_x3.4-1968",
        "ansi_x3.4-1986",
        "iso646-us",
        "iso-ir-6",
        "iso_646.irv:1991",
        "cp367",
        "ibm367",
        "csascii",
    ),
    ("iso-2022-jp",): (
        "iso-2022-jp",
        "iso2022jp",
        "iso2022_jp",
        "csiso2022jp",
        "iso-2022-jp-ms",
        "iso-2022-jp-1",
        "cp50220",
        "cp50221",
        "cp50222",
        "x-cp50220",
        "x-cp50221",
        "x-cp50222",
        "jis",
    ),
    ("iso-2022-jp", "iso2022_jp_2"): ("iso-2022-jp-2", "csiso2022jp2"),
    ("iso-2022-jp", "iso2022_jp_2004"): ("iso-2022-jp-3", "iso-2022-jp-2004"),
    ("cp932",): (
        "cp932",
        "ms932",
        "x-ms-cp932",
        "windows-31j",
        "cswindows31j",
        "shift_jis",
        "shift-jis",
        "shiftjis",
        "sjis",
        "s-jis",
        "x-sjis",
        "ms_kanji",
        "ms-kanji",
        "csshiftjis",
        "sjis-open",
        "sjis-win",
        "ibm-943",
        "x-mac-japanese",
    ),
    ("shift_jis_2004", "cp932"): ("shift_jis_2004", "shift-jis-2004", "shift_jisx0213"),
    _EUC_JP_PLAN: (
        "euc-jp",
        "euc_jp",
        "eucjp",
        "x-euc-jp",
        "x-euc",
        "ujis",
        "cseucpkdfmtjapanese",
        "cp51932",
        "ms51932",
        "eucjp-win",
        "eucjp-ms",
        "euc-jp-ms",
        "eucjp-open",
    ),
    ("euc_jis_2004", "euc-jp"): ("euc-jis-2004", "euc_jis_2004", "euc-jisx0213"),
}
# Every name this module reports in ``Decoded.charset`` is a label here or a Python codec name.
_PLANS: Final = {label: plan for plan, labels in _PLAN_ALIASES.items() for label in labels}
# Supersets that mail software means when it writes these labels (Python codec names).
_SUPERSETS: Final[dict[str, _Plan]] = {
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "euc_kr": ("cp949",),
    "iso8859-1": ("cp1252", "iso8859-1"),
}
# Text codecs that are transformations, not charsets of mail text.
_REFUSED_CODECS: Final = frozenset(
    {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape", "charmap"}
)
_LABEL_SYNTAX: Final = re.compile(r"[a-z0-9][a-z0-9._:+-]{0,39}")


@lru_cache(maxsize=256)
def _plan(untrusted_label: str | None) -> _Plan | None:
    """The steps for a declared charset label, or None when it is missing or unusable."""
    if untrusted_label is None:
        return None
    label = untrusted_label.strip().strip("\"'").strip().lower()
    known = _PLANS.get(label)
    if known is not None or not _LABEL_SYNTAX.fullmatch(label):
        return known
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    name = info.name
    if not getattr(info, "_is_text_encoding", True) or name.replace("_", "-") in _REFUSED_CODECS:
        return None
    return _SUPERSETS.get(name, (name,))


def _strict_plan(plan: _Plan, data: bytes) -> _Result | None:
    for step in plan:
        result = _strict(step, data)
        if result is not None:
            return result
    return None


# ---------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------

_KANA: Final = re.compile("[\u3041-\u3096\u30a1-\u30fa\u30fc]")
_KANJI: Final = re.compile("[\u4e00-\u9fff\uf900-\ufaff]")
_JAPANESE_SYMBOLS: Final = re.compile(
    "[\u3000-\u303f\uff01-\uff5e\uffe0-\uffe5\u2460-\u24ff\u3200-\u33ff\u2150-\u218f"
    "\u2010-\u2312\u2500-\u25ff\u0391-\u03c9\u0401-\u0451]"
)
_HALFWIDTH_KANA: Final = re.compile("[\uff66-\uff9f]")
_HALFWIDTH_PUNCTUATION: Final = re.compile("[\uff61-\uff65]")
# The voiced marks after a half-width katakana: real half-width text has them; EUC-JP kanji
# read as CP932 (two half-width katakana each) seldom do.
_HALFWIDTH_MARKS: Final = re.compile("(?<=[\uff66-\uff9d])[\uff9e\uff9f]")
# A half-width katakana right beside a kanji or a full-width kana: what EUC-JP read as CP932
# gives, and seldom what anyone writes.
_WIDTH_CLASH: Final = re.compile(
    "[\uff66-\uff9f](?=[\u3041-\u30ff\u4e00-\u9fff])|[\u3041-\u30ff\u4e00-\u9fff](?=[\uff66-\uff9f])"
)
_GARBAGE: Final = re.compile("[\ue000-\uf8ff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Evidence for another language: characters that make up a large share of running Chinese
# (simplified and traditional) or Korean text, from the languages' frequency lists (the most
# frequent function characters and syllables). Japanese bytes read in these charsets give
# characters spread over the whole table, so they seldom hit these.
_CHINESE_MARKERS: Final = (
    "的一是不了在人有我他这這个個们們中来來上大为為和国國到以说說时時要就出会會可也你对對生能"
    "而子那得于於着著下自之年过過发發后後作里裡用道行所然家种種事成方多经經么麼去法学學如都同"
    "现現当當没沒动動面起看定天分还還吗嗎呢"
)
_KOREAN_MARKERS: Final = (
    "이다에의는로하을가고지서한은기으년대사시를리도인스일니요습있수것들나정자해어아전부적제주비"
)
_FOREIGN_READINGS: Final = (
    ("gb18030", re.compile(f"[{_CHINESE_MARKERS}]")),
    ("big5", re.compile(f"[{_CHINESE_MARKERS}]")),
    ("cp949", re.compile(f"[{_KOREAN_MARKERS}]")),
)
# Fewer marker characters than this are never strong evidence (a short name or subject).
_MIN_FOREIGN_MARKERS: Final = 2
# A Japanese reading overrules a declared Chinese or Korean charset only with this share of
# kana among its non-ASCII characters.
_KANA_SHARE_OVERRULES: Final = 0.2
_OTHER_CANDIDATES: Final = [
    "cp1252",
    "iso8859_15",
    "gb18030",
    "big5",
    "cp949",
    "cp1251",
    "koi8_r",
    "cp1250",
    "cp1253",
]
_FALLBACK_STEPS: Final = ("utf-8", "cp932", "euc-jp")
# Declared Chinese and Korean charsets (plan steps) that Japanese mail is mislabelled as.
_FOREIGN_CJK: Final = frozenset({"gb18030", "big5", "cp949", "big5hkscs", "euc_kr"})
# A declared charset is still believed when at most 1 in this many characters is replaced.
_TOLERATED_ERROR_RATE: Final = 100
# Damaged UTF-8: at most 2 or 1 in 50 characters replaced, and this many valid multi-byte
# characters per replacement.
_DAMAGED_UTF8_RATE: Final = 50
_UTF8_EVIDENCE: Final = 4


def _japanese_score(text: str) -> float:
    """How much ``text`` looks like Japanese: kana weigh most, then kanji and symbols (a kanji
    weighs more than the two half-width katakana its EUC-JP bytes read as in CP932);
    half-width punctuation, private-use characters and controls (what EUC-JP read as CP932,
    or CP932 read as EUC-JP, produces) weigh against."""
    kana = len(_KANA.findall(text))
    return (
        3.0 * kana
        + len(_KANJI.findall(text))
        + len(_JAPANESE_SYMBOLS.findall(text))
        + 0.4 * len(_HALFWIDTH_KANA.findall(text))
        + 1.1 * len(_HALFWIDTH_MARKS.findall(text))
        - len(_WIDTH_CLASH.findall(text))
        - len(_HALFWIDTH_PUNCTUATION.findall(text))
        - 3.0 * len(_GARBAGE.findall(text))
    )


def _japanese_guess(data: bytes) -> _Lenient | None:
    """The more plausible Japanese decoding, CP932 or the EUC-JP family (CP932 wins a tie), if
    it looks Japanese at all. Strict but for carrier emoji (CP932 user-defined characters),
    which become replacements: the result is then lossy."""
    candidates = [_cp932_with_emoji(data), _strict_plan(_EUC_JP_PLAN, data)]
    scored = [(_japanese_score(found[0]), found) for found in candidates if found is not None]
    score, best = max(scored, key=lambda pair: pair[0], default=(0.0, None))
    if best is None or score <= 0:
        return None
    return best[0], best[1], _REPLACEMENT in best[0]


def _cp932_with_emoji(data: bytes) -> _Result | None:
    try:
        text = data.decode("cp932")
    except UnicodeDecodeError:
        return None
    return _USER_DEFINED.sub(_REPLACEMENT, text), "cp932"


def _share(pattern: re.Pattern[str], text: str) -> tuple[int, float]:
    """How many characters of ``text`` match, and their share of its non-ASCII characters."""
    hits = len(pattern.findall(text))
    return hits, hits / max(1, len(text) - len(text.encode("ascii", "ignore")))


def _foreign_reading(japanese: str, data: bytes, codecs_: tuple[str, ...] = ()) -> _Result | None:
    """A Chinese or Korean reading of ``data`` with strong evidence against the Japanese one:
    at least ``_MIN_FOREIGN_MARKERS`` marker characters, and a share of them above the share
    of kana in the Japanese reading plus ``japanese_prior`` (so a prior of 1 means never)."""
    prior = _preferences().japanese_prior
    threshold = _share(_KANA, japanese)[1] + prior
    best: tuple[float, _Result] | None = None
    for codec, markers in _FOREIGN_READINGS:
        if codecs_ and codec not in codecs_:
            continue
        found = _strict(codec, data)
        if found is None:
            continue
        hits, share = _share(markers, found[0])
        if hits >= _MIN_FOREIGN_MARKERS and share > threshold and (best is None or share > best[0]):
            best = (share, found)
    return None if best is None else best[1]


def _has_jis_escapes(data: bytes) -> bool:
    return b"\x1b" in data and _ISO2022JP_SIGNATURE.search(data) is not None


@lru_cache(maxsize=64)
def _is_single_byte(step: str) -> bool:
    """True for codecs that decode nearly any byte string (ISO-8859-x, windows-125x, …): a
    strict success in one of them proves nothing about the charset."""
    if step in _SPECIAL_STEPS:
        return False
    return len(bytes(range(256)).decode(step, "replace")) == 256


def _kana_japanese(data: bytes) -> _Lenient | None:
    """A Japanese decoding that has kana in at least 1 of 5 non-ASCII characters: enough to
    overrule a declared charset that decodes nearly anything."""
    found = _japanese_guess(data)
    if found is None:
        return None
    return found if _share(_KANA, found[0])[1] >= _KANA_SHARE_OVERRULES else None


def _kanji_japanese(data: bytes) -> _Lenient | None:
    """A Japanese decoding of two or more kanji or kana in which every 8-bit byte is part of a
    double-byte character (no half-width katakana, which is what Latin text read as CP932
    gives): kanji labelled as a single-byte charset."""
    found = _japanese_guess(data)
    if found is None or _HALFWIDTH_KANA.search(found[0]) or _HALFWIDTH_PUNCTUATION.search(found[0]):
        return None
    if len(_KANA.findall(found[0])) + len(_KANJI.findall(found[0])) < _MIN_FOREIGN_MARKERS:
        return None
    return found


def _mislabelled(plan: _Plan, data: bytes) -> _Lenient | None:
    """Common mislabels: ISO-2022-JP declared as anything else (US-ASCII, ISO-8859-1, UTF-8
    all read its escape sequences as text); UTF-8 or Japanese declared as a single-byte
    charset, which decodes anything; Japanese declared as Chinese or Korean (whose
    double-byte tables read Japanese bytes as other real characters)."""
    if data.isascii():
        if plan[0] != "iso-2022-jp" and _has_jis_escapes(data):
            found = _iso2022jp_strict(data)
            return None if found is None else (*found, False)
        return None
    if plan[0] in _FOREIGN_CJK:
        japanese = _kana_japanese(data)
        if japanese is None or _foreign_reading(japanese[0], data, (plan[0],)) is not None:
            return None
        return japanese
    if not _is_single_byte(plan[0]):
        return None
    utf8 = _strict("utf-8", data)
    if utf8 is not None:
        return (*utf8, False)
    return _kana_japanese(data) or _kanji_japanese(data)


def _declared_lenient(plan: _Plan, data: bytes) -> Decoded | None:
    """The declared charset with replacements, if they are rare (a few broken bytes)."""
    if plan == ("us-ascii",):  # 8-bit data declared as US-ASCII is mislabelled, not broken.
        return None
    text, charset, lossy = _lenient(plan[0], data)
    if text.count(_REPLACEMENT) > max(1, len(text) // _TOLERATED_ERROR_RATE):
        return None
    return Decoded(text, charset, lossy=lossy, detected=False)


def _normalizer_guess(data: bytes) -> _Result | None:
    """charset-normalizer, for mail that is neither UTF-8 nor Japanese."""
    match = from_bytes(data, cp_isolation=_OTHER_CANDIDATES).best()
    if match is None:
        return None
    return _strict(codecs.lookup(match.encoding).name, data)


def _damage(text: str) -> int:
    """Replacements, private-use characters and controls: what a wrong decoding produces."""
    return text.count(_REPLACEMENT) + len(_GARBAGE.findall(text))


def _damaged_utf8(data: bytes) -> _Result | None:
    """UTF-8 with a few broken sequences (a truncated header, a cut line): many valid
    multi-byte characters and few replacements. Other charsets rarely look like this."""
    text = data.decode("utf-8-sig", "replace")
    bad = text.count(_REPLACEMENT)
    good = len(text) - len(text.encode("ascii", "ignore")) - bad
    if bad > max(2, len(text) // _DAMAGED_UTF8_RATE) or good < _UTF8_EVIDENCE * bad:
        return None
    return text, "utf-8"


def _least_lossy(plan: _Plan | None, data: bytes) -> Decoded:
    """Last resort: the lenient decoding with the fewest replacements (the declared one wins
    ties)."""
    steps = (*(plan or ())[:1], *_FALLBACK_STEPS)
    attempts = [_lenient(step, data) for step in steps]
    best = min(range(len(attempts)), key=lambda index: _damage(attempts[index][0]))
    text, charset, lossy = attempts[best]
    return Decoded(text, charset, lossy=lossy, detected=plan is None or best > 0)


def _guess(data: bytes, plan: _Plan | None) -> Decoded:
    """Decode bytes whose declared charset (if any) failed strictly; see the module docstring
    for the order."""
    if _has_jis_escapes(data):  # Broken ISO-2022-JP is still best read as ISO-2022-JP.
        detected = plan != ("iso-2022-jp",)
        result = _iso2022jp_strict(data)
        if result is not None:
            return Decoded(*result, lossy=False, detected=detected)
        text, charset, lossy = _iso2022jp_lenient(data)
        return Decoded(text, charset, lossy=lossy, detected=detected)
    if data.isascii():
        return Decoded(*_ascii(data), lossy=False, detected=plan is not None)
    utf8 = _strict("utf-8", data)
    if utf8 is not None:
        return Decoded(*utf8, lossy=False, detected=True)
    damaged = _damaged_utf8(data)
    if damaged is not None:
        return Decoded(*damaged, lossy=True, detected=plan is None or plan[0] != "utf-8")
    japanese = _japanese_guess(data)
    if japanese is not None:
        foreign = _foreign_reading(japanese[0], data)
        if foreign is not None:
            return Decoded(*foreign, lossy=False, detected=True)
        return Decoded(*japanese, detected=plan is None or japanese[1] not in plan)
    lenient = None if plan is None else _declared_lenient(plan, data)
    if lenient is not None:
        return lenient
    other = _normalizer_guess(data)
    if other is not None:
        return Decoded(*other, lossy=False, detected=True)
    return _least_lossy(plan, data)


_UTF16_BOMS: Final = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _utf16_bom(data: bytes, plan: _Plan | None) -> Decoded | None:
    """Text that starts with a UTF-16 byte-order mark is UTF-16 whatever it declares (as in
    browsers), if it decodes strictly."""
    if len(data) <= 2 or len(data) % 2 or not data.startswith(_UTF16_BOMS):
        return None
    try:
        text = data.decode("utf-16")
    except UnicodeDecodeError:
        return None
    return Decoded(text, "utf-16", lossy=False, detected=plan is None or plan[0] != "utf-16")


def _decode(data: bytes, plan: _Plan | None) -> Decoded:
    bom = _utf16_bom(data, plan)
    if bom is not None:
        return bom
    if plan is not None:
        mislabelled = _mislabelled(plan, data)
        if mislabelled is not None:
            return Decoded(*mislabelled, detected=True)
        declared = _strict_plan(plan, data)
        if declared is not None:
            return Decoded(*declared, lossy=False, detected=False)
    return _guess(data, plan)


def decode_body(untrusted_data: bytes, declared: str | None) -> Decoded:
    """Decode a body (after its transfer encoding is undone) that declares ``declared``."""
    return _decode(untrusted_data, _plan(declared))


# Where HTML states its charset: <meta charset=X> or <meta http-equiv=Content-Type
# content="...; charset=X">, looked for in the first bytes only, as browsers do.
_META_CHARSET: Final = re.compile(
    rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE
)
_META_PRESCAN_BYTES: Final = 2048


def html_charset(untrusted_html: bytes) -> str | None:
    """The charset label a ``<meta>`` element of this HTML states, or None."""
    found = _META_CHARSET.search(untrusted_html[:_META_PRESCAN_BYTES])
    return None if found is None else found.group(1).decode("ascii")


def decode_html(untrusted_data: bytes, declared: str | None) -> Decoded:
    """Decode an HTML body or file: the charset its MIME header declares, else (missing,
    unknown or failing strictly) the one its ``<meta>`` states, else detection."""
    plan = _plan(declared)
    meta = _plan(html_charset(untrusted_data))
    if (
        meta is not None
        and meta != plan
        and _utf16_bom(untrusted_data, plan) is None
        and (plan is None or _strict_plan(plan, untrusted_data) is None)
    ):
        found = _strict_plan(meta, untrusted_data)
        if found is not None:
            return Decoded(*found, lossy=False, detected=plan is not None)
    return _decode(untrusted_data, plan)


def decode_param(charset: str | None, untrusted_value: bytes) -> Decoded:
    """Decode an RFC 2231 parameter value (already percent-decoded) in the charset it names.
    The result is header text: no controls (see the module docstring)."""
    decoded = _decode(untrusted_value, _plan(charset))
    return _without_controls(decoded)


# ---------------------------------------------------------------------------------------------
# Header text
# ---------------------------------------------------------------------------------------------

_FOLD: Final = re.compile(rb"(?:\r\n|\r|\n)(?=[ \t])")
_ENCODED_WORD: Final = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_BASE64: Final = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_BASE64_SPACE: Final = re.compile(rb"[ \t\r\n]+")
_WHITESPACE: Final = re.compile(rb"[ \t\r\n]*")


def _without_controls(decoded: Decoded) -> Decoded:
    """Header text as :func:`sanitizers.safetext.display_text` shows it, with the unsafe
    classes it had recorded in ``removed``."""
    removed = unsafe_classes(decoded.text)
    text = display_text(decoded.text)
    if text == decoded.text and not removed:
        return decoded
    return Decoded(text, decoded.charset, decoded.lossy, decoded.detected, removed)


def header_bytes(untrusted_value: str) -> tuple[bytes, bool]:
    """The bytes of a raw header value as the compat32 parser keeps it (8-bit bytes as lone
    surrogates), unfolded. Other non-ASCII characters are taken as UTF-8. The flag is True
    when a surrogate that no byte can stand for had to be replaced."""
    try:
        raw, lossy = untrusted_value.encode("utf-8", "surrogateescape"), False
    except UnicodeEncodeError:
        raw, lossy = untrusted_value.encode("utf-8", "replace"), True
    return _FOLD.sub(b"", raw), lossy


def _word_bytes(encoding: bytes, payload: bytes) -> bytes | None:
    """The bytes an encoded-word carries, or None when it is malformed (then it stays text).
    Base64 may lack its padding or contain whitespace; anything else is malformed."""
    if encoding in b"qQ":
        return binascii.a2b_qp(payload, header=True)
    letters = _BASE64_SPACE.sub(b"", payload)
    if not _BASE64.fullmatch(letters):
        return None
    letters = letters.rstrip(b"=")
    if len(letters) % 4 == 1:
        return None
    return binascii.a2b_base64(letters + b"=" * (-len(letters) % 4))


def _pieces(raw: bytes) -> list[tuple[str | None, bytes]]:
    """Split header bytes into (charset label, bytes) pieces: None for plain text. Whitespace
    between encoded-words is dropped and adjacent words of one charset are joined as bytes."""
    pieces: list[tuple[str | None, bytes]] = []
    position = 0
    after_word = False
    for match in _ENCODED_WORD.finditer(raw):
        label_bytes, encoding, payload = match.groups()
        carried = _word_bytes(encoding, payload)
        if carried is None:
            continue
        between = raw[position : match.start()]
        if between and not (after_word and _WHITESPACE.fullmatch(between)):
            pieces.append((None, between))
        label = label_bytes.split(b"*", 1)[0].decode("ascii", "replace").lower()
        if after_word and pieces[-1][0] == label:
            pieces[-1] = (label, pieces[-1][1] + carried)
        else:
            pieces.append((label, carried))
        position, after_word = match.end(), True
    if position < len(raw):
        pieces.append((None, raw[position:]))
    return pieces


def join_decoded(parts: list[Decoded]) -> Decoded:
    """Pieces of one header value as one: charsets listed in order, lossy if any piece is."""
    charsets = dict.fromkeys(part.charset for part in parts if part.charset != "us-ascii")
    return Decoded(
        "".join(part.text for part in parts),
        ",".join(charsets) or "us-ascii",
        lossy=any(part.lossy for part in parts),
        detected=any(part.detected for part in parts),
    )


def decode_header_bytes(untrusted_raw: bytes, *, encoded_words: bool = True) -> Decoded:
    """Decode unfolded header bytes: RFC 2047 encoded-words (when ``encoded_words``) and raw
    8-bit text. ``charset`` lists the non-ASCII charsets used, comma-separated, in order."""
    plain = not (encoded_words and b"=?" in untrusted_raw)
    if plain and untrusted_raw.isascii() and b"\x1b" not in untrusted_raw:
        return _without_controls(Decoded(untrusted_raw.decode("ascii"), "us-ascii", False, False))
    pieces = _pieces(untrusted_raw) if encoded_words else [(None, untrusted_raw)]
    return _without_controls(join_decoded([_decode(data, _plan(label)) for label, data in pieces]))


def decode_raw_runs(untrusted_runs: list[bytes]) -> list[Decoded]:
    """Decode the raw 8-bit (or raw ISO-2022-JP) runs of one header value together, so that
    the charset is chosen on all of them; each result is header text."""
    if not untrusted_runs:
        return []
    joined = _decode(b"\n".join(untrusted_runs), None)
    texts = joined.text.split("\n")
    if len(texts) != len(untrusted_runs):  # a line feed was inside a multi-byte character
        return [_without_controls(_decode(run, None)) for run in untrusted_runs]
    return [
        _without_controls(Decoded(text, joined.charset, joined.lossy, joined.detected))
        for text in texts
    ]


def decode_header(untrusted_value: str) -> Decoded:
    """Decode a raw header value (a compat32 ``str``) into display text without controls."""
    raw, lossy = header_bytes(untrusted_value)
    decoded = decode_header_bytes(raw)
    return replace(decoded, lossy=decoded.lossy or lossy)


# ---------------------------------------------------------------------------------------------
# Encoding to ISO-2022-JP
# ---------------------------------------------------------------------------------------------

# Half-width katakana runs, and runs of double-byte characters, in Shift_JIS.
_SJIS_RUNS: Final = re.compile(rb"([\xa1-\xdf]+)|((?:[\x81-\x9f\xe0-\xef][\x40-\xfc])+)")
_NOT_JIS: Final = re.compile("[^\u2121-\u7e7e]")
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
    return b"".join(pieces)
