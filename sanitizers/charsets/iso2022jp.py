"""ISO-2022-JP as Japanese mail writes it, read through CP932.

Threat model: escape sequences and shifts come from the sender; an unknown designation, a
byte outside its set, or a code CP932 lacks is an error (strict) or U+FFFD (lenient).
``ESC $ @`` is read as ``ESC $ B``, ``ESC ( J`` as ASCII (as CP932 reads 0x5C and 0x7E),
``ESC ( I`` and SO ... SI (CP50221/CP50222) as half-width katakana, ``ESC $ ( D`` as JIS X 0212;
``ESC & @`` is ignored; a missing final ``ESC ( B`` is accepted; line breaks do not reset the
shift state. JIS X 0213 text (``ESC $ ( O/P/Q``) is read by Python's ISO-2022-JP-2004 codec.
au (KDDI) emoji sit in JIS rows 0x75-0x7C and become the Unicode emoji of Unicode's
EmojiSources.txt (:mod:`.carrier_emoji`; U+FFFD, lossy, for the few it lists none for). Rows
0x79-0x7C are also the NEC-selected IBM extensions (髙, 﨑), so they are read as emoji for an au
sender or in text that also has rows 0x75-0x78, which only au uses; otherwise a code that is
both is read as a kanji beside a JIS X 0208 kanji (a name: 髙橋, 山﨑) or beside a code au
never uses (ⅰ, 髙); alone (after kana, punctuation or ASCII, where au mail puts emoji) it is
ambiguous: U+FFFD, lossy, never a guessed kanji or emoji.
"""

from __future__ import annotations

import codecs
import re
from typing import Final

from sanitizers.charsets.carrier_emoji import au_mail_emoji
from sanitizers.charsets.decoded import _Convert, _Lenient, _preferences, _Result
from sanitizers.charsets.jis import (
    _REPLACEMENT,
    _TO_HIGH,
    _cp932_mapping,
    _jis_pairs,
    _jis_table,
    _jis_to_sjis,
)

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
# The rows au shares with the NEC-selected IBM extensions, and the JIS X 0208 kanji rows whose
# characters beside such a code make it a kanji (of a name) rather than an emoji.
_SHARED_ROWS: Final = range(0x79, 0x7D)
_KANJI_ROWS: Final = range(0x30, 0x75)
_AU_ONLY_ROW: Final = re.compile(rb"\x1b\$[@B](?:[\x21-\x7e]{2})*?[\x75-\x78][\x21-\x7e]")
# Designations of JIS X 0213 (ISO-2022-JP-3 and -2004): Python's codecs read them.
_JIS_X_0213_SETS: Final = re.compile(rb"\x1b\$\([OPQ]")
# Inside a segment: runs of characters, runs of whitespace/controls, or bad bytes.
_ALL_PAIRS: Final = re.compile(rb"(?:[\x21-\x7e]{2})+")
# A byte that may lead a pair of the shared rows (a cheap test before the exact decoder runs).
_SHARED_ROW_PAIR: Final = re.compile(rb"[\x79-\x7c][\x21-\x7e]")
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
        leads = run[::2]
        if self.au_emoji and any(lead in _AU_EMOJI_ROWS for lead in leads):
            return self.with_emoji(run, _emoji_positions(run))
        if not self.au_emoji and any(lead in _SHARED_ROWS for lead in leads):
            ambiguous = _ambiguous_positions(run)
            if ambiguous:
                return self.with_emoji(run, ambiguous, read=False)
        return self.pairs(run)

    def pairs(self, run: bytes) -> str:
        text, extended = _jis_pairs(run, strict=self.strict)
        self.extended |= extended
        return text

    def with_emoji(self, run: bytes, positions: list[int], *, read: bool = True) -> str:
        """A run whose pairs at ``positions`` are au emoji: each becomes its Unicode emoji
        (when ``read``, and Unicode lists one), else a replacement."""
        out: list[str] = []
        start = 0
        for index in positions:
            if start < index:
                out.append(self.pairs(run[start:index]))
            emoji = _au_emoji_char(run[index : index + 2]) if read else None
            out.append(emoji if emoji is not None else self.bad())
            start = index + 2
        if start < len(run):
            out.append(self.pairs(run[start:]))
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


def _au_emoji_char(pair: bytes) -> str | None:
    """The Unicode emoji for the au mail emoji at JIS code ``pair``, or None."""
    return au_mail_emoji(int.from_bytes(_jis_to_sjis(pair[0], pair[1]), "big"))


def _emoji_positions(run: bytes) -> list[int]:
    """Where the pairs of au emoji rows are in ``run`` (an au sender's text)."""
    return [index for index in range(0, len(run), 2) if run[index] in _AU_EMOJI_ROWS]


def _ambiguous_positions(run: bytes) -> list[int]:
    """Where ``run`` (text not known to be au's) has codes that read as well as an au emoji
    as an IBM-extension character: in a block of shared-row codes that are all au emoji
    codes (a code au never uses proves the block is Windows text), with no JIS X 0208 kanji
    right before or after it (a name: 髙橋, 山﨑)."""
    ambiguous: list[int] = []
    index = 0
    while index < len(run):
        if run[index] not in _SHARED_ROWS:
            index += 2
            continue
        end = index
        while end < len(run) and run[end] in _SHARED_ROWS:
            end += 2
        block = range(index, end, 2)
        beside_kanji = (index > 0 and run[index - 2] in _KANJI_ROWS) or (
            end < len(run) and run[end] in _KANJI_ROWS
        )
        if not beside_kanji and all(_au_emoji_char(run[at : at + 2]) for at in block):
            ambiguous += block
        index = end
    return ambiguous


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
    if _SO in data:  # Python passes SO/SI through as text.
        return None
    try:  # JIS X 0208 only: no extension rows, so no au emoji either
        text, charset = data.decode("iso2022_jp"), "iso-2022-jp"
    except UnicodeDecodeError:
        if _au_emoji(data) or _SHARED_ROW_PAIR.search(data):
            return None  # rows 0x79-0x7C may be emoji, not IBM-extension kanji: decided slowly
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
