"""Which charset, when the declared one is missing, unknown or wrong.

Before the declared charset is believed: a UTF-16 BOM wins; 7-bit data with ISO-2022-JP
escape sequences is ISO-2022-JP whatever it declares; a declared single-byte charset (which
decodes anything) yields to UTF-8 and to a Japanese reading (with kana, or two or more kanji
in double-byte characters only); a declared Chinese or Korean charset yields to a Japanese
reading with kana or mostly frequent Japanese kanji unless that language's evidence is strong.

A declared UTF-8 yields to a Japanese reading when its own reading is no alphabet's text,
has code points without characters, or is short text of another charset's shape; a declared
Western charset yields to one Japanese kanji whose Western reading nobody writes.

Detection order: ISO-2022-JP (escapes present; if broken, still ISO-2022-JP, lossy), US-ASCII,
UTF-8 (unless all its characters have two-byte forms, as EUC-JP kanji give, and a Japanese
reading has the evidence: kana and frequent kanji; or it is short, reads as Japanese double-
byte characters too, and looks like CP932 read as UTF-8), damaged UTF-8 (a few broken sequences
among many valid ones: lossy), the most plausible Japanese reading (CP932 or EUC-JP, scored on
kana, kanji and voiced marks against half-width punctuation, misplaced marks, private-use
characters and controls; lossy when the other reading is about as plausible), unless a Chinese
or Korean reading has strong evidence (``Preferences.japanese_prior``; with only a few of its
marker characters the Japanese reading stays, lossy), then the declared charset with rare
replacements, then charset-normalizer over a few non-Japanese charsets, and last the least
damaged lenient reading (lossy). HTML: the MIME charset, else (missing, unknown or failing) its
``<meta>``.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import replace
from functools import lru_cache
from typing import Final

from charset_normalizer import from_bytes

from sanitizers.charsets.decoded import Decoded, _Lenient, _preferences, _Result
from sanitizers.charsets.iso2022jp import (
    _ISO2022JP_SIGNATURE,
    _iso2022jp_lenient,
    _iso2022jp_strict,
)
from sanitizers.charsets.jis import _REPLACEMENT
from sanitizers.charsets.labels import _EUC_JP_PLAN, _Plan, _plan, _strict_plan
from sanitizers.charsets.steps import (
    _SPECIAL_STEPS,
    _TOLERATED_ERROR_RATE,
    _ascii,
    _cp932_decode,
    _lenient,
    _may_have_user_defined,
    _strict,
    _user_defined_replaced,
)
from sanitizers.safetext import C0, C1, SURROGATES

__all__ = ["decode_body", "decode_html", "html_charset"]

_KANA: Final = re.compile("[\u3041-\u3096\u30a1-\u30fa\u30fc]")
_KANJI: Final = re.compile("[\u4e00-\u9fff\uf900-\ufaff]")
_JAPANESE_SYMBOLS: Final = re.compile(
    "[\u3000-\u303f\uff01-\uff5e\uffe0-\uffe5\u2460-\u24ff\u3200-\u33ff\u2150-\u218f"
    "\u2010-\u2312\u2500-\u25ff\u0391-\u03c9\u0401-\u0451]"
)
_HALFWIDTH_KANA: Final = re.compile("[\uff66-\uff9f]")
_HALFWIDTH_PUNCTUATION: Final = re.compile("[\uff61-\uff65]")
# The voiced marks where Japanese has them: dakuten after ｳ and the k, s, t, h rows, handakuten
# after the h row. Real half-width text has them; EUC-JP kanji read as CP932 (two half-width
# katakana each) seldom do, and often put a mark where none can be (ｻﾜﾀﾟ for 施設).
_HALFWIDTH_MARKS: Final = re.compile(
    "(?<=[\uff73\uff76-\uff84\uff8a-\uff8e])\uff9e|(?<=[\uff8a-\uff8e])\uff9f"
)
_HALFWIDTH_MARKS_ANYWHERE: Final = re.compile("[\uff9e\uff9f]")
# Small half-width vowels and ya/yu/yo where Japanese never puts them (after ｳ, ｷ, ｼ, ﾁ, ﾂ,
# ﾃ, ﾄ, ﾆ, ﾋ, ﾌ, ﾐ, ﾘ or a voiced mark they can follow): counted against, like a misplaced mark.
_MISPLACED_SMALL_KANA: Final = re.compile(
    "(?<![\uff73\uff77\uff7c\uff81\uff82\uff83\uff84\uff86\uff8b\uff8c\uff90\uff98"
    "\uff9e\uff9f])[\uff67-\uff6e]"
)
# A half-width katakana right beside a kanji or a full-width kana: what EUC-JP read as CP932
# gives, and seldom what anyone writes.
_WIDTH_CLASH: Final = re.compile(
    "[\uff66-\uff9f](?=[\u3041-\u30ff\u4e00-\u9fff])|[\u3041-\u30ff\u4e00-\u9fff](?=[\uff66-\uff9f])"
)
_LINE_STRUCTURE: Final = str.maketrans("", "", "\t\n\r")
_LONE_SURROGATE: Final = re.compile(f"[{SURROGATES[0]}-{SURROGATES[-1]}]")
# What a wrong decoding produces: private-use characters, and controls other than the line
# structure of text.
_GARBAGE: Final = re.compile(f"[\ue000-\uf8ff{re.escape((C0 + C1).translate(_LINE_STRUCTURE))}]")
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
# Evidence for Japanese beside kana: the kanji that make up a large share of Japanese text,
# running and in the kanji-only compounds of forms and subjects (a newspaper frequency list
# with the words of municipal work). Chinese or Korean bytes read as EUC-JP or Shift_JIS give
# kanji spread over both JIS levels, so they seldom hit these.
_JAPANESE_KANJI_MARKERS: Final = (
    "日一国会人年大十二本中長出三同時政事自行社見月分議後前民生連五発間対上部東者党地合市業内相"
    "方四定今回新場金員九入選立開手力学問高代明実円関決子動京全目表戦経通外最言氏現理調体化田当"
    "八六約主題下首意法不来作性要用制治度務強気小七成期公持野協取都和統以機平総加山思家話世受区"
    "領多県続進正安設保改数記院女初北午指権心界支第産結百派点教報済書府活原先共得解名交資予川向"
    "際査面委告文反元重近千考判認画海参売利組知案道信策集在件団別物側任引使求所次水半品論計官増"
    "係感特情投示変打基私各始直両革価式確村提運終挙果西勢減台広容必応電歳住争談能無再位置企真流"
    "格有口過局少放税検町常校料裁状工建語営空職証土与急止送援供可役構木割聞身費付施切由説転食比"
    "難防補車備宅害配算条究育席技型課帳籍票届納申請窓福祉健康険介護環境災訓練避館図児童障齢療助"
    "評額域契札観光振興漁農固録"
)
_JAPANESE_EVIDENCE: Final = re.compile(
    f"[\u3041-\u3096\u30a1-\u30fa\u30fc{_JAPANESE_KANJI_MARKERS}]"
)
_FREQUENT_KANJI: Final = re.compile(f"[{_JAPANESE_KANJI_MARKERS}]")
# Two Japanese readings (CP932, EUC-JP) are too close to choose silently when the less
# plausible scores at least this share of the more plausible.
_AMBIGUOUS_SHARE: Final = 0.5
_SS2_ONLY: Final = re.compile(rb"(?:[\x00-\x7f]|\x8e[\xa1-\xdf])*")
# Bytes that read both as CP932 half-width katakana and as EUC-JP double-byte characters.
_TWIN_BYTES: Final = re.compile(rb"[\x00-\x7f\xa1-\xdf]*")
# ... unless the more plausible has at least this many more marks of Japanese (see _evidence).
_DECISIVE_EVIDENCE: Final = 2
# A UTF-8 reading whose characters all have two-byte forms (U+0080-U+07FF) is what EUC-JP
# kanji give (道路 reads as "ƻϩ"); it yields to a Japanese reading with at least this share of
# kana and frequent kanji unless it reads as text of one alphabet (or Latin-1 symbols).
_TWO_BYTE_UTF8: Final = re.compile("[\x00-\u07ff]*")
_JAPANESE_SHARE_OVERRULES: Final = 0.5
# Planes with no characters (4-13) and the private planes (15-16): UTF-8 that reads as them is
# another charset's bytes (EUC-JP kanji pairs can form four-byte sequences).
_UNASSIGNED_PLANES: Final = re.compile("[\U00040000-\U000dffff\U000f0000-\U0010ffff]")
_ASCII_RUNS: Final = re.compile("[\x00-\x7f]+")
_ASCII_LETTER: Final = re.compile("[A-Za-z]")
# Short UTF-8 (at most this many bytes) that also reads as Japanese double-byte characters is
# weighed by the evidence (longer text of three-byte characters never reads both ways).
_SHORT_AMBIGUOUS_BYTES: Final = 256
# Each run of non-ASCII characters followed by an ASCII letter or symbol of 0x40-0x7E: what
# CP932 kanji read as UTF-8 give (a trail byte after the characters its bytes made).
_GLUED_LETTERS: Final = re.compile("(?:[^\x00-\x7f]+[\x40-\x7e]|[\x00-\x7f])*")
# The scripts and symbols mail is written in (Latin, Greek, Cyrillic, Hebrew, Arabic,
# punctuation and symbols, CJK, kana, Hangul, full-width forms).
_MAILED_SCRIPTS: Final = re.compile(
    "[\x00-\u024f\u0370-\u052f\u0590-\u06ff\u2000-\u2bff\u2e80-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]+"
)
_LATIN1_SYMBOLS: Final = re.compile("[\u00a0-\u00bf\u00d7\u00f7]")
# Letters of one alphabet each (Latin with diacritics, Greek, Cyrillic, Hebrew, Arabic); an
# accented Latin letter is plausible only inside a word with ASCII letters (Müller, São).
_ALPHABETS: Final = (
    re.compile("[\u0386-\u03ce]+"),
    re.compile("[\u0400-\u045f]+"),
    re.compile("[\u05d0-\u05ea]+"),
    re.compile("[\u0620-\u064a]+"),
)
# One or two Greek, Cyrillic, Hebrew or Arabic letters are no evidence of that alphabet (a
# lone EUC-JP kanji such as 乖 is also the UTF-8 of "Ъ"): the Japanese reading wins, reported.
_FEW_LETTERS: Final = range(1, 3)
_LATIN_IN_WORDS: Final = re.compile(
    "(?<=[A-Za-z])[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017f]+"
    "|[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017f]+(?=[A-Za-z])"
)
_FOREIGN_READINGS: Final = (
    ("gb18030", re.compile(f"[{_CHINESE_MARKERS}]")),
    ("big5", re.compile(f"[{_CHINESE_MARKERS}]")),
    ("cp949", re.compile(f"[{_KOREAN_MARKERS}]")),
)
_FOREIGN_MARKERS: Final = dict(_FOREIGN_READINGS)
# Undeclared text read as Chinese or Korean with fewer marker characters than this is read as
# Japanese and reported (the Japanese prior over evidence that short text cannot give).
_STRONG_FOREIGN_MARKERS: Final = 4
# The evidence for a language is read on this many bytes (and characters) of the text.
_EVIDENCE_BYTES: Final = 64 * 1024
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
# Western labels (plan steps) that mailers write by default: kanji under them are mislabelled.
_LATIN_STEPS: Final = frozenset({"cp1252", "iso8859-1", "iso8859-15"})
# A longer text read as mostly half-width katakana with hardly a voiced mark (real half-width
# Japanese has about one per five) is a single-byte charset (KOI8-R, windows-1251, ...) read
# as CP932, not Japanese.
_HALFWIDTH_ONLY_LIMIT: Final = 16
_MARKS_PER_HALFWIDTH: Final = 10
# Declared Japanese multi-byte charsets (plan steps) that UTF-8 text is mislabelled as.
_JAPANESE_MULTIBYTE_STEPS: Final = frozenset({"cp932", "shift_jis_2004", "euc-jp"})
# Declared Chinese and Korean charsets (plan steps) that Japanese mail is mislabelled as.
_FOREIGN_CJK: Final = frozenset({"gb18030", "big5", "cp949", "big5hkscs", "euc_kr"})
# Damaged UTF-8: at most 2 or 1 in 50 characters replaced, and this many valid multi-byte
# characters per replacement.
_DAMAGED_UTF8_RATE: Final = 50
_UTF8_EVIDENCE: Final = 4


def _japanese_score(text: str) -> float:
    """How much ``text`` looks like Japanese: kana weigh most, then kanji (twice for the
    frequent ones) and symbols (a kanji weighs more than the two half-width katakana its
    EUC-JP bytes read as in CP932), half-width voiced marks where Japanese puts them;
    half-width punctuation, marks and small kana where none can be, private-use characters
    and controls (what EUC-JP read as CP932, or CP932 read as EUC-JP, produces) weigh against."""
    kana = len(_KANA.findall(text))
    halfwidth = len(_HALFWIDTH_KANA.findall(text))
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    if (
        kana == 0
        and non_ascii > _HALFWIDTH_ONLY_LIMIT
        and 2 * halfwidth > non_ascii
        and _MARKS_PER_HALFWIDTH * len(_HALFWIDTH_MARKS.findall(text)) < halfwidth
    ):
        return 0.0
    marks = len(_HALFWIDTH_MARKS.findall(text))
    return (
        3.0 * kana
        + len(_KANJI.findall(text))
        + len(_FREQUENT_KANJI.findall(text))
        + len(_JAPANESE_SYMBOLS.findall(text))
        + 0.4 * halfwidth
        + 1.1 * marks
        - 1.1 * (len(_HALFWIDTH_MARKS_ANYWHERE.findall(text)) - marks)
        - 1.1 * len(_MISPLACED_SMALL_KANA.findall(text))
        - len(_WIDTH_CLASH.findall(text))
        - len(_HALFWIDTH_PUNCTUATION.findall(text))
        - 3.0 * len(_GARBAGE.findall(text))
    )


def _japanese_guess(data: bytes) -> _Lenient | None:
    """The more plausible Japanese decoding, CP932 or the EUC-JP family (CP932 wins a tie), if
    it looks Japanese at all. Strict but for carrier emoji (CP932 user-defined characters),
    which become the emoji of the sender's carrier, or replacements: the result is then
    lossy. It is lossy too when the other reading is nearly as plausible and only the chosen
    one's evidence does not settle it (``ｶﾀｶﾅ`` in CP932 is two real kanji in EUC-JP): the
    choice may be wrong, and the reader is told."""
    candidates = [_cp932_with_emoji(data), _strict_plan(_EUC_JP_PLAN, data)]
    scored = sorted(
        (
            (_japanese_score(found[0]) - 3.0 * _jis_x_0213_only(found), found)
            for found in candidates
            if found is not None
        ),
        key=lambda pair: pair[0],
        reverse=True,
    )
    if not scored or scored[0][0] <= 0:
        return None
    score, (text, charset) = scored[0]
    close = len(scored) > 1 and scored[1][0] >= _AMBIGUOUS_SHARE * score
    if close and _evidence(text) - _evidence(scored[1][1][0]) >= _DECISIVE_EVIDENCE:
        close = False  # the chosen reading has clearly more of what only Japanese gives
    # Only EUC-JP half-width katakana (SS2 pairs), which CP932 reads as kanji of one row: the
    # frequent kanji of that row are no evidence here.
    close = close or (len(scored) > 1 and _SS2_ONLY.fullmatch(data) is not None)
    if charset != "cp932" and len(scored) > 1 and _TWIN_BYTES.fullmatch(data) is not None:
        # Every 8-bit byte a CP932 half-width katakana and half of an EUC-JP character: any
        # two such katakana are a JIS level-1 kanji (ﾈｯﾄﾜｰｸ as 発嬬宛), so frequent kanji are
        # evidence for EUC-JP only when they make most of its reading (税課税).
        close = close or _share(_JAPANESE_EVIDENCE, text)[1] < _JAPANESE_SHARE_OVERRULES
    return text, charset, close or _REPLACEMENT in text


def _evidence(text: str) -> int:
    """How much of what only Japanese gives ``text`` has: kana, frequent Japanese kanji, and
    half-width voiced marks where Japanese puts them."""
    return len(_JAPANESE_EVIDENCE.findall(text)) + len(_HALFWIDTH_MARKS.findall(text))


def _jis_x_0213_only(found: _Result) -> int:
    """How many characters of an EUC-JIS-2004 reading JIS X 0208 and 0212 lack: the table
    that fills every gap of the older ones also reads Chinese GB 2312 text (its full-width
    comma is a JIS X 0213 arrow), so such characters count as damage when detecting."""
    text, charset = found
    if charset != "euc-jis-2004":
        return 0
    return text.encode("euc_jp", "replace").count(b"?") - text.count("?")


def _cp932_with_emoji(data: bytes) -> _Result | None:
    try:
        text = _cp932_decode(data, "strict", declared=False)
    except UnicodeDecodeError:
        return None
    if not _may_have_user_defined(data):
        return text, "cp932"
    return _user_defined_replaced(text), "cp932"


def _share(pattern: re.Pattern[str], text: str) -> tuple[int, float]:
    """How many characters of ``text`` match, and their share of its non-ASCII characters."""
    hits = len(pattern.findall(text))
    return hits, hits / max(1, len(text) - len(text.encode("ascii", "ignore")))


def _foreign_reading(
    japanese: _Lenient, data: bytes, codecs_: tuple[str, ...] = ()
) -> _Result | None:
    """A Chinese or Korean reading of ``data`` with strong evidence against the Japanese one:
    at least ``_MIN_FOREIGN_MARKERS`` marker characters, and a share of them above the share
    of kana and frequent Japanese kanji in the Japanese reading plus ``japanese_prior`` (so a
    prior of 1 means never; kanji-only Japanese is not outweighed by a few markers). A
    Japanese reading that needed JIS X 0213 characters gets no prior. The shares are taken
    on the first ``_EVIDENCE_BYTES``; only a reading with strong evidence is decoded whole."""
    text, charset, _lossy = japanese
    prior = 0.0 if _jis_x_0213_only((text, charset)) else _preferences().japanese_prior
    threshold = _share(_JAPANESE_EVIDENCE, text[:_EVIDENCE_BYTES])[1] + prior
    best: tuple[float, _Result] | None = None
    sample = data[:_EVIDENCE_BYTES]
    for codec, markers in _FOREIGN_READINGS:
        if codecs_ and codec not in codecs_:
            continue
        hits, share = _share(markers, sample.decode(codec, "ignore"))
        if hits < _MIN_FOREIGN_MARKERS or share <= threshold or (best and share <= best[0]):
            continue
        found = _strict(codec, data)
        if found is not None:
            best = (share, found)
    return None if best is None else best[1]


def _strong_foreign(found: _Result) -> bool:
    """Whether a Chinese or Korean reading of undeclared bytes has enough of its language's
    marker characters to be chosen over a Japanese reading in silence:
    ``_STRONG_FOREIGN_MARKERS``, or one fewer making half the text. Two in a two-character
    text (祥蛍 read as GB18030 就分) are chance."""
    text, charset = found
    hits, share = _share(_FOREIGN_MARKERS[charset], text[:_EVIDENCE_BYTES])
    return hits >= _STRONG_FOREIGN_MARKERS or (
        hits >= _STRONG_FOREIGN_MARKERS - 1 and share >= _JAPANESE_SHARE_OVERRULES
    )


def _has_jis_escapes(data: bytes) -> bool:
    """ISO-2022-JP designations, or SO ... SI around half-width katakana (CP50221)."""
    return (b"\x1b" in data or b"\x0e" in data) and _ISO2022JP_SIGNATURE.search(data) is not None


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


def _frequent_kanji_japanese(data: bytes) -> _Lenient | None:
    """A Japanese decoding without half-width katakana in which kana and frequent Japanese
    kanji make at least ``_JAPANESE_SHARE_OVERRULES`` of the non-ASCII characters: kanji-only
    Japanese (市民課, 固定資産税) labelled as Chinese or Korean, whose readings in those
    tables are rare characters."""
    found = _japanese_guess(data)
    if found is None or _HALFWIDTH_KANA.search(found[0]):
        return None
    return found if _share(_JAPANESE_EVIDENCE, found[0])[1] >= _JAPANESE_SHARE_OVERRULES else None


def _mislabelled(plan: _Plan, data: bytes) -> _Lenient | None:
    """Common mislabels: ISO-2022-JP declared as anything else (US-ASCII, ISO-8859-1, UTF-8
    all read its escape sequences as text); UTF-8 or Japanese declared as a single-byte
    charset, which decodes anything; Japanese declared as Chinese or Korean (whose
    double-byte tables read Japanese bytes as other real characters), with kana or mostly
    frequent Japanese kanji, unless the declared language's own evidence is strong."""
    if data.isascii():
        if plan[0] != "iso-2022-jp" and _has_jis_escapes(data):
            found = _iso2022jp_strict(data)
            return None if found is None else (*found, False)
        return None
    if plan[0] in _FOREIGN_CJK:
        japanese = _kana_japanese(data) or _frequent_kanji_japanese(data)
        if japanese is None or _foreign_reading(japanese, data, (plan[0],)) is not None:
            return None
        return japanese
    if plan[0] == "utf-8":
        return _declared_utf8_or_japanese(data)
    if plan[0] in _JAPANESE_MULTIBYTE_STEPS:
        return _utf8_declared_japanese(plan, data)
    if not _is_single_byte(plan[0]):
        return None
    utf8 = _utf8_or_japanese(data)
    if utf8 is not None:
        return utf8
    japanese = _kana_japanese(data)
    if japanese is None and plan[0] in _LATIN_STEPS:  # mailers' default label, not a choice
        japanese = _kanji_japanese(data) or _implausible_latin(plan[0], data)
    return japanese


def _utf8_declared_japanese(plan: _Plan, data: bytes) -> _Lenient | None:
    """UTF-8 labelled Shift_JIS or EUC-JP (a mailer's default label over UTF-8 text): the
    declared reading is the classic 文字化け (こんにちは as 縺薙ｓ縺ｫ縺｡縺ｯ), kanji and
    half-width katakana side by side, or fails. Strict UTF-8 with characters of three bytes
    or more that is Japanese writing and scores better as Japanese than the declared reading
    is UTF-8, lossy when the two are close; a declared reading that such UTF-8 nearly
    matches (short text: たし read as 縺溘＠) stays, reported."""
    utf8 = _strict("utf-8", data)
    if utf8 is None or _TWO_BYTE_UTF8.fullmatch(utf8[0]) or _not_written_in_utf8(utf8[0]):
        return None
    declared = _strict_plan(plan, data)
    if declared is None:
        return None  # (detection reads it)
    utf8_score, declared_score = _japanese_score(utf8[0]), _japanese_score(declared[0])
    if utf8_score > max(0.0, declared_score):
        return (*utf8, declared_score >= _AMBIGUOUS_SHARE * utf8_score)
    if utf8_score > 0 and utf8_score >= _AMBIGUOUS_SHARE * declared_score:
        return declared[0], declared[1], True  # as plausible as UTF-8: the label, reported
    return None


def _implausible_latin(step: str, data: bytes) -> _Lenient | None:
    """Japanese labelled as a Western charset whose Western reading nobody writes (accented
    letters outside words, modifier letters: 亜 in CP932 as "ˆŸ", 枝追 in EUC-JP as "»ÞÄÉ"),
    that is Latin-1 symbols alone (亜 in EUC-JP as "°¡"), or one or two letters where the
    Japanese reading is kanji alone: the Japanese reading, lossy unless its evidence decides
    (a lone kanji among the frequent ones)."""
    latin = data.decode(step, "replace")
    found = _japanese_guess(data)
    if found is None:
        return None
    # A lone kanji (or two) with no ASCII letter beside it: one or two Western letters are
    # no evidence either (亜 in CP932 as "ˆŸ", 晦 as "ŠA").
    few_letters = not _ASCII_LETTER.search(found[0]) and (
        len(_alphabet_letters(latin)) + len(_LATIN_IN_WORDS.findall(latin)) in _FEW_LETTERS
    )
    if _reads_as_alphabet(latin) and not _symbols_only(latin) and not few_letters:
        return None
    decided = _share(_JAPANESE_EVIDENCE, found[0])[1] >= _JAPANESE_SHARE_OVERRULES
    return found[0], found[1], found[2] or not decided


def _symbols_only(text: str) -> bool:
    """Whether a text is Latin-1 symbols (and spaces) alone: no letter, digit or character
    of any script, which says nothing about its charset."""
    return not text.isascii() and not _LATIN1_SYMBOLS.sub("", text).strip()


def _declared_utf8_or_japanese(data: bytes) -> _Lenient | None:
    """Japanese declared as UTF-8 whose bytes happen to be valid UTF-8 (EUC-JP 表 as "ɽ",
    CP932 kanji pairs as "錘O"): when the UTF-8 reading is no alphabet's text, has code points
    without characters, or is short text of another charset's shape
    (:func:`_not_written_in_utf8`), the Japanese reading, lossy unless its evidence decides;
    UTF-8 that is Latin-1 symbols or one or two letters alone (EUC-JP 臓 as "¡", 痢 as "Ρ")
    is kept and reported. Real UTF-8 text is left to the declared charset (None)."""
    utf8 = _strict("utf-8", data)
    if utf8 is None:
        return None
    text = utf8[0]
    few = False  # one or two letters or symbols alone: as likely UTF-8 as Japanese
    if _TWO_BYTE_UTF8.fullmatch(text):
        unassigned = len(data) <= _SHORT_AMBIGUOUS_BYTES and _has_unassigned(text)
        few = not unassigned and (
            _symbols_only(text) or len(_alphabet_letters(text)) in _FEW_LETTERS
        )
        if not unassigned and not few and _reads_as_alphabet(text):
            return None
    elif len(data) > _SHORT_AMBIGUOUS_BYTES or not _not_written_in_utf8(text):
        return None  # (real UTF-8: the Japanese readings are not even tried)
    japanese = _double_byte_japanese(data)
    if japanese is None:
        return None
    if few:
        return (*utf8, True)  # kept, reported
    utf8_evidence, japanese_evidence = _evidence(text), _evidence(japanese[0])
    if utf8_evidence > japanese_evidence:
        return (*utf8, True)
    decided = japanese_evidence - utf8_evidence >= _DECISIVE_EVIDENCE or (
        _share(_JAPANESE_EVIDENCE, japanese[0])[1] >= _JAPANESE_SHARE_OVERRULES
    )
    return japanese[0], japanese[1], japanese[2] or not decided


def _has_unassigned(text: str) -> bool:
    """Whether a text has code points that are no character (U+03A2): another charset's
    bytes."""
    return any(unicodedata.category(char) == "Cn" for char in text)


def _double_byte_japanese(data: bytes) -> _Lenient | None:
    """The Japanese reading of ``data`` in double-byte characters only (no half-width
    katakana or punctuation, what UTF-8 read as CP932 mostly gives) and without replacement:
    the more plausible one, else the EUC-JP one (then lossy: CP932 half-width katakana were
    as plausible)."""
    japanese = _japanese_guess(data)
    if japanese is not None and not _narrow_or_replaced(japanese[0]):
        return japanese
    euc = _strict_plan(_EUC_JP_PLAN, data)
    if euc is None or _narrow_or_replaced(euc[0]) or not _KANJI.search(euc[0]):
        return None
    return euc[0], euc[1], True


def _narrow_or_replaced(text: str) -> bool:
    return bool(
        _HALFWIDTH_KANA.search(text) or _HALFWIDTH_PUNCTUATION.search(text) or _REPLACEMENT in text
    )


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


def _alphabet_letters(text: str) -> str:
    """The non-ASCII characters of ``text`` but Latin-1 symbols and accented Latin letters
    inside words."""
    return _ASCII_RUNS.sub("", _LATIN_IN_WORDS.sub("", _LATIN1_SYMBOLS.sub("", text)))


def _reads_as_alphabet(text: str) -> bool:
    """Whether the non-ASCII characters of ``text`` are Latin-1 symbols and letters of one
    alphabet, accented Latin letters only inside words: text someone could have written."""
    rest = _alphabet_letters(text)
    return not rest or any(alphabet.fullmatch(rest) for alphabet in _ALPHABETS)


def _utf8_or_japanese(data: bytes) -> _Lenient | None:
    """Strict UTF-8 (None when it fails), unless every character has a two-byte form (or one
    is in a plane without characters) and a Japanese reading exists: then the Japanese
    reading (lossy without strong evidence), or, when the UTF-8 text reads as one alphabet
    (three letters or more, or Latin), UTF-8, lossy if the Japanese evidence is strong (the
    choice may be wrong). Short text that also reads as Japanese double-byte characters
    (rare kanji whose bytes are three-byte UTF-8: 陜汽 as "蝋D") is decided by
    :func:`_short_utf8_or_japanese`."""
    utf8 = _strict("utf-8", data)
    if utf8 is None:
        return None
    if not _TWO_BYTE_UTF8.fullmatch(utf8[0]) and not _UNASSIGNED_PLANES.search(utf8[0]):
        if len(data) <= _SHORT_AMBIGUOUS_BYTES:
            return _short_utf8_or_japanese(utf8, data)
        return (*utf8, False)
    japanese = _japanese_guess(data)
    if japanese is None:
        return (*utf8, False)
    evidence = _share(_JAPANESE_EVIDENCE, japanese[0])[1]
    if _reads_as_alphabet(utf8[0]) and len(_alphabet_letters(utf8[0])) not in _FEW_LETTERS:
        # Latin-1 symbols alone ("¥" is also 促) say nothing either way.
        symbols_only = not _LATIN1_SYMBOLS.sub("", utf8[0]).strip()
        return (*utf8, symbols_only or evidence >= _JAPANESE_SHARE_OVERRULES)
    return japanese[0], japanese[1], japanese[2] or evidence < _JAPANESE_SHARE_OVERRULES


def _short_utf8_or_japanese(utf8: _Result, data: bytes) -> _Lenient:
    """Short strict UTF-8 with characters of three or four bytes whose bytes also read as
    Japanese in double-byte characters only (CP932 or EUC-JP kanji and kana; no half-width
    katakana, which is what real UTF-8 read as CP932 mostly gives). Real UTF-8 is kept: its
    characters are of the scripts mail is written in, and not each glued to one ASCII letter.
    UTF-8 that is not (rare kanji pairs in CP932 read as three-byte UTF-8 give 陜汽 as
    "蝋D", or letters of scripts nobody mails in) yields to the Japanese reading, reported
    (lossy) unless the Japanese evidence (kana, frequent kanji) decides; when the UTF-8
    reading has more evidence, it is kept and reported."""
    text = utf8[0]
    if not _not_written_in_utf8(text):
        return (*utf8, False)
    japanese = _double_byte_japanese(data)
    if japanese is None:
        return (*utf8, False)
    utf8_evidence, japanese_evidence = _evidence(text), _evidence(japanese[0])
    if utf8_evidence > japanese_evidence:
        return (*utf8, True)
    decided = japanese_evidence - utf8_evidence >= _DECISIVE_EVIDENCE
    return japanese[0], japanese[1], japanese[2] or not decided


def _not_written_in_utf8(text: str) -> bool:
    """Whether short UTF-8 text looks like another charset's bytes: a character of a script
    mail is not written in (Samaritan, Yi, N'Ko… : ``_MAILED_SCRIPTS`` lists the ones it is),
    or every run of non-ASCII characters followed by an ASCII letter or symbol of 0x40-0x7E
    (what CP932 kanji read as UTF-8 give: a trail byte after the characters the others made)."""
    if _MAILED_SCRIPTS.sub("", text):
        return True
    return not text.isascii() and _GLUED_LETTERS.fullmatch(text) is not None


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
    utf8 = _utf8_or_japanese(data)
    if utf8 is not None:
        return Decoded(*utf8, detected=True)
    damaged = _damaged_utf8(data)
    if damaged is not None:
        return Decoded(*damaged, lossy=True, detected=plan is None or plan[0] != "utf-8")
    japanese = _japanese_guess(data)
    if japanese is not None:
        foreign = _foreign_reading(japanese, data)
        if foreign is not None and _strong_foreign(foreign):
            return Decoded(*foreign, lossy=False, detected=True)
        if foreign is not None:  # a few markers in a short text: Japanese, reported
            return Decoded(japanese[0], japanese[1], lossy=True, detected=True)
        return Decoded(*japanese, detected=plan is None or japanese[1] not in plan)
    lenient = None if plan is None else _declared_lenient(plan, data)
    if lenient is not None:
        return lenient
    other = _normalizer_guess(data)
    if other is not None and other[1] in _FOREIGN_MARKERS and not _strong_foreign(other):
        # Chinese or Korean without its language's evidence, where no Japanese reading looked
        # Japanese: a strict Japanese reading still wins (the prior), and either is reported.
        found = _cp932_with_emoji(data) or _strict_plan(_EUC_JP_PLAN, data) or other
        return Decoded(*found, lossy=True, detected=True)
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
    """The decoding of ``data`` under ``plan``; never with lone surrogates (UTF-7 can decode
    to them): each one is a replacement, and the decode is lossy."""
    decoded = _decode_any(data, plan)
    if "utf-7" not in decoded.charset or not _LONE_SURROGATE.search(decoded.text):
        return decoded
    return replace(decoded, text=_LONE_SURROGATE.sub(_REPLACEMENT, decoded.text), lossy=True)


def _decode_any(data: bytes, plan: _Plan | None) -> Decoded:
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
