"""sanitizers.charsets: Japanese text exact in every charset, detection, header text that
cannot inject, and the ISO-2022-JP encoder. Fixtures are built here, byte by byte."""

from __future__ import annotations

import base64
import re
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sanitizers.charsets import (
    Decoded,
    decode_body,
    decode_header,
    decode_header_bytes,
    decode_param,
    detection,
    encode_iso2022jp,
    iso2022jp,
)
from tests.corpus import require_corpus
from tests.sanitizers.test_carrier_emoji import SHARED, au_mail_emoji

AU_SHARED_KANJI = frozenset(SHARED.values())

# CP932-only characters (NEC row 13, NEC-selected IBM extensions, the ～ mapping trap) with
# ordinary Japanese, half-width katakana and ASCII.
CP932_TEXT = "①②⑳㈱㍑№℡Ⅰⅰ～∥－￢髙﨑 会議資料をお送りします。ｱｲｳｴｵ ABC 〒100-0001\r\n"
JIS_TEXT = "本日は晴天なり。会議資料を添付します。よろしくお願いいたします。\r\n"
ESC_KANJI, ESC_ASCII, ESC_KANA = b"\x1b$B", b"\x1b(B", b"\x1b(I"
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def sjis_to_jis(sjis: bytes) -> bytes:
    """Shift_JIS pairs to JIS X 0208 pairs (independent of the module under test)."""
    out = bytearray()
    for s1, s2 in zip(sjis[::2], sjis[1::2], strict=True):
        row = (s1 - 0x81) * 2 if s1 < 0xA0 else (s1 - 0xC1) * 2
        if s2 >= 0x9F:
            out += bytes((row + 0x22, s2 - 0x7E))
        else:
            out += bytes((row + 0x21, s2 - 0x1F if s2 < 0x7F else s2 - 0x20))
    return bytes(out)


def jis(text: str) -> bytes:
    """``text`` (double-byte CP932 characters only) as one ESC $ B ... ESC ( B run."""
    return ESC_KANJI + sjis_to_jis(text.encode("cp932")) + ESC_ASCII


def euc(text: str) -> bytes:
    """``text`` (double-byte CP932 characters only) in CP51932 form."""
    return bytes(byte | 0x80 for byte in sjis_to_jis(text.encode("cp932")))


def exact(decoded: Decoded, text: str) -> None:
    assert decoded.text == text
    assert not decoded.lossy


# --- bodies: declared charsets ------------------------------------------------------------


def test_iso2022jp_with_cp932_extensions_decodes_as_windows_typed_it() -> None:
    data = jis("①②㈱㍑") + b" " + jis("ⅰ髙﨑") + b"\r\n" + jis("～∥－￠￡￢")
    decoded = decode_body(data, "iso-2022-jp")
    exact(decoded, "①②㈱㍑ ⅰ髙﨑\r\n～∥－￠￡￢")
    assert decoded.charset == "iso-2022-jp-ms"
    assert not decoded.detected


def test_iso2022jp_wave_dash_is_fullwidth_tilde() -> None:
    assert decode_body(b"\x1b$B!A\x1b(B", "ISO-2022-JP").text == "\uff5e"


def test_plain_iso2022jp_is_reported_as_such() -> None:
    decoded = decode_body(JIS_TEXT.encode("iso2022_jp"), "iso-2022-jp")
    exact(decoded, JIS_TEXT)
    assert decoded.charset == "iso-2022-jp"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (ESC_KANA + b"1234" + ESC_ASCII + b"x", "ｱｲｳｴx"),
        (b"\x1b(J\\~a\x1b(B", "\\~a"),
        (b"\x1b$@$3$s\x1b(B", "こん"),
        (b"\x1b&@\x1b$B$3\x1b(B", "こ"),
        (b"a\x1b$B$3$s", "aこん"),  # no final ESC ( B
        (b"\x1b$B$3\r\n$s\x1b(B", "こ\r\nん"),  # a line break does not reset the mode
        (b"\x1b$(D\x22\x2f\x1b(B", "\u02d8"),  # JIS X 0212
        (b"\x1b$B-!\x1b(I1\x1b(J~", "①ｱ~"),
    ],
)
def test_iso2022jp_designations(data: bytes, text: str) -> None:
    exact(decode_body(data, "iso-2022-jp"), text)


def test_every_jis_x0208_code_is_read_through_cp932() -> None:
    for lead in [*range(0x81, 0xA0), *range(0xE0, 0xF0)]:
        for trail in [*range(0x40, 0x7F), *range(0x80, 0xFD)]:
            sjis = bytes((lead, trail))
            decoded = decode_body(ESC_KANJI + sjis_to_jis(sjis) + ESC_ASCII, "iso-2022-jp")
            emoji = au_mail_emoji(sjis_to_jis(sjis))
            if emoji is not None and lead in (0xEB, 0xEC):
                # Rows 0x75-0x78: only au uses them, for emoji (EmojiSources.txt).
                assert decoded == Decoded(emoji, decoded.charset, False, False), sjis
                continue
            try:
                expected = sjis.decode("cp932")
            except UnicodeDecodeError:
                expected = "\ufffd"
            if expected == "\ufffd" or emoji is not None:
                # Not in CP932, or alone in rows au shares with the IBM kanji: which one?
                assert decoded.lossy, sjis
                assert decoded.text == "\ufffd"
                continue
            assert decoded == Decoded(expected, decoded.charset, False, False), sjis


@pytest.mark.parametrize(
    "data",
    [
        b"\x1b$B$3$",  # half a pair at the end
        b"\x1b$B$3\x1b(Bx\x1b$A$3\x1b(B",  # unknown designation (GB 2312)
        b"\x1b$B$3\xa4\xa2\x1b(B",  # 8-bit bytes inside JIS X 0208
        b"\x1b$B}!\x1b(B",  # JIS row 93: not in CP932, not an au emoji
    ],
)
def test_broken_iso2022jp_is_lossy_not_silent(data: bytes) -> None:
    decoded = decode_body(data, "iso-2022-jp")
    assert decoded.lossy
    assert "\ufffd" in decoded.text
    assert "\x1b" not in decoded.text


@pytest.mark.parametrize("label", ["shift_jis", "Shift_JIS", "x-sjis", "windows-31j", "cp932"])
def test_shift_jis_labels_are_cp932(label: str) -> None:
    decoded = decode_body(CP932_TEXT.encode("cp932"), label)
    exact(decoded, CP932_TEXT)
    assert decoded.charset == "cp932"
    assert not decoded.detected


def test_euc_jp_uses_jis_mappings() -> None:
    decoded = decode_body("〜です".encode("euc_jp"), "EUC-JP")
    exact(decoded, "〜です")
    assert decoded.charset == "euc-jp"


def test_euc_jp_with_nec_extensions_is_cp51932() -> None:
    decoded = decode_body(euc("①㈱ⅰ髙～です"), "euc-jp")
    exact(decoded, "①㈱ⅰ髙～です")
    assert decoded.charset == "cp51932"
    assert not decoded.detected


def test_euc_jis_2004_is_the_last_euc_step() -> None:
    text = "𠀋と森鷗外"  # JIS X 0213 plane 2 and plane 1 characters
    decoded = decode_body(text.encode("euc_jis_2004"), "euc-jp")
    exact(decoded, text)
    assert decoded.charset == "euc-jis-2004"


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_utf8_with_or_without_bom(bom: bytes) -> None:
    decoded = decode_body(bom + CP932_TEXT.encode(), "UTF-8")
    exact(decoded, CP932_TEXT)
    assert (decoded.charset, decoded.detected) == ("utf-8", False)


def test_us_ascii_with_8bit_bytes_is_mislabelled() -> None:
    decoded = decode_body(CP932_TEXT.encode("cp932"), "us-ascii")
    exact(decoded, CP932_TEXT)
    assert (decoded.charset, decoded.detected) == ("cp932", True)


def test_ascii_undeclared_is_us_ascii_not_detected() -> None:
    assert decode_body(b"hello", None) == Decoded("hello", "us-ascii", False, False)


@pytest.mark.parametrize(
    "label", ["x-unknown", "", "rot13", "unicode_escape", "base64", "idna", "a\x00b", "x" * 500]
)
def test_unknown_or_refused_labels_detect(label: str) -> None:
    decoded = decode_body(CP932_TEXT.encode("utf-8"), label)
    exact(decoded, CP932_TEXT)
    assert decoded.detected


def test_transformation_codecs_are_never_applied() -> None:
    assert decode_body(b"\\u3042", "unicode_escape").text == "\\u3042"
    assert decode_body(b"uryyb", "rot13").text == "uryyb"


def test_utf7_is_a_charset() -> None:
    decoded = decode_body(b"+MEIwRA-", "unicode-1-1-utf-7")
    exact(decoded, "あい")
    assert not decoded.detected


def test_supersets_for_common_labels() -> None:
    assert decode_body("测试".encode("gb18030"), "gb2312").charset == "gb18030"
    assert decode_body("한국".encode("cp949"), "ks_c_5601-1987").text == "한국"
    assert decode_body(b"\x80 \xe9", "iso-8859-1").text == "€ é"


@pytest.mark.parametrize(
    ("data", "label"),
    [
        (jis("①"), "iso-2022-jp"),
        (b"\x1b$(D\x22\x2f\x1b(B", "iso-2022-jp"),
        (euc("①です"), "euc-jp"),
        ("𠀋".encode("euc_jis_2004"), "euc-jp"),
        ("𠀋".encode("shift_jis_2004"), "shift_jis_2004"),
        (b"\x80", "iso-8859-1"),
        ("测试".encode("gb18030"), "gbk"),
        ("テスト".encode("iso2022_jp_2"), "iso-2022-jp-2"),
    ],
)
def test_reported_charset_names_are_labels_that_decode_the_same(data: bytes, label: str) -> None:
    first = decode_body(data, label)
    assert decode_body(data, first.charset) == first


def test_cp932_user_defined_area_is_a_reported_replacement() -> None:
    # A carrier emoji, then あ: no reader but the carrier's shows a character there.
    decoded = decode_body(b"\xf8\x9f\x82\xa0", "shift_jis")
    assert decoded == Decoded("\ufffd\u3042", "cp932", True, False)


# --- bodies: detection --------------------------------------------------------------------


def test_undeclared_iso2022jp() -> None:
    decoded = decode_body(jis("①会議"), None)
    exact(decoded, "①会議")
    assert decoded.detected


def test_undeclared_cp932_and_utf8() -> None:
    exact(decode_body(CP932_TEXT.encode("cp932"), None), CP932_TEXT)
    decoded = decode_body(CP932_TEXT.encode("utf-8"), None)
    exact(decoded, CP932_TEXT)
    assert (decoded.charset, decoded.detected) == ("utf-8", True)


@pytest.mark.parametrize(
    "text",
    [
        JIS_TEXT,
        "本日は晴天なり",
        "会議資料",
        "ありがとうございます",
        "カタログ送付のお知らせ",
        "東京都千代田区霞が関一丁目",
    ],
)
def test_euc_jp_that_also_decodes_as_cp932_is_detected_as_euc_jp(text: str) -> None:
    data = text.encode("euc_jp")
    decoded = decode_body(data, None)
    exact(decoded, text)
    assert decoded.charset == "euc-jp"


def test_the_euc_jp_trap_is_real() -> None:
    data = "ありがとうございます".encode("euc_jp")
    assert data.decode("cp932") != "ありがとうございます"  # CP932 reads it without error


@pytest.mark.parametrize("text", ["ｱﾘｶﾞﾄｳｺﾞｻﾞｲﾏｼﾀ", "ｶﾀﾛｸﾞ送付", "ﾃｽﾄ①です"])
def test_half_width_katakana_cp932_is_detected_as_cp932(text: str) -> None:
    decoded = decode_body(text.encode("cp932"), None)
    exact(decoded, text)
    assert decoded.charset == "cp932"


def test_undeclared_latin_and_chinese_are_not_taken_for_japanese() -> None:
    german = "Grüße aus München, schöne Grüße und viele Ähnlichkeiten"
    exact(decode_body(german.encode("cp1252"), None), german)
    chinese = "这是一个测试邮件，请查收附件。谢谢你的帮助和支持，我们下周开会讨论这个问题。"
    exact(decode_body(chinese.encode("gb18030"), None), chinese)


@pytest.mark.parametrize("encoding", ["utf-8", "cp932", "euc_jp"])
def test_japanese_declared_as_latin1_is_mislabelled(encoding: str) -> None:
    decoded = decode_body(JIS_TEXT.encode(encoding), "iso-8859-1")
    exact(decoded, JIS_TEXT)
    assert decoded.detected


@pytest.mark.parametrize("label", ["us-ascii", "iso-8859-1", "utf-8", "shift_jis"])
def test_iso2022jp_declared_as_something_else(label: str) -> None:
    decoded = decode_body(jis("①会議") + b" ok", label)
    exact(decoded, "①会議 ok")
    assert (decoded.charset, decoded.detected) == ("iso-2022-jp-ms", True)


def test_real_latin1_stays_latin1() -> None:
    decoded = decode_body("Société Générale, Zürich".encode("latin-1"), "iso-8859-1")
    exact(decoded, "Société Générale, Zürich")
    assert not decoded.detected


def test_a_few_broken_bytes_keep_the_declared_charset_and_are_lossy() -> None:
    data = ("会議資料をお送りします。" * 20).encode() + b"\xff" + "以上".encode()
    decoded = decode_body(data, "utf-8")
    assert decoded.text == "会議資料をお送りします。" * 20 + "\ufffd以上"
    assert (decoded.charset, decoded.lossy, decoded.detected) == ("utf-8", True, False)


class _NoMatch:
    def best(self) -> None:
        return None


def test_nothing_decodes_strictly_so_lossy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detection, "from_bytes", lambda *_args, **_kwargs: _NoMatch())
    decoded = decode_body(b"\x80\x80\x80\x80", None)
    assert decoded == Decoded("\ufffd" * 4, "utf-8", True, True)


def test_utf8_with_a_few_broken_bytes_is_lossy_utf8() -> None:
    data = b"\xff" + "会議資料のご送付について".encode() + b"\xfe"
    assert decode_body(data, None) == Decoded(
        "\ufffd会議資料のご送付について\ufffd", "utf-8", True, True
    )


@pytest.mark.parametrize("cut", [1, 2])
def test_truncated_utf8_is_lossy_utf8_not_mojibake(cut: int) -> None:
    data = "会議資料のご送付について".encode()[:-cut]
    decoded = decode_body(data, None)
    assert decoded == Decoded("会議資料のご送付につい\ufffd", "utf-8", True, True)
    header = decode_header(raw(b"Subject text " + data))
    assert header.text == "Subject text 会議資料のご送付につい\ufffd"


def test_last_resort_without_replacements_is_not_lossy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detection, "from_bytes", lambda *_args, **_kwargs: _NoMatch())
    decoded = decode_body(b"N\x18\xac\x8a\xc6\xa7j", None)  # binary, yet valid CP932
    assert (decoded.text, decoded.lossy, decoded.detected) == ("N\x18ｬ竿ｧj", False, True)


def test_declared_charset_wins_ties_when_all_are_lossy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detection, "from_bytes", lambda *_args, **_kwargs: _NoMatch())
    decoded = decode_body(b"\xff\xfe", "euc-jp")
    assert (decoded.charset, decoded.lossy, decoded.detected) == ("euc-jp", True, False)


def test_broken_byte_in_cp51932_keeps_the_extensions() -> None:
    data = euc("①会議資料をお送りします") * 9 + b"\xff" + euc("以上")
    decoded = decode_body(data, "euc-jp")
    expected = "①会議資料をお送りします" * 9 + "\ufffd以上"
    assert decoded == Decoded(expected, "cp51932", True, False)


@pytest.mark.parametrize(
    ("data", "label"),
    [
        (JIS_TEXT.encode("utf-8"), "utf-8"),
        (JIS_TEXT.encode("iso2022_jp"), "iso-2022-jp"),
        (jis("①㈱") + b"abc", "iso-2022-jp"),
        (b"plain text", "us-ascii"),
        (CP932_TEXT.encode("cp932"), "shift_jis"),
    ],
)
def test_declared_charsets_that_decode_never_reach_the_detector(
    data: bytes, label: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("detector called")

    monkeypatch.setattr(detection, "from_bytes", refuse)
    monkeypatch.setattr(detection, "_guess", refuse)
    assert not decode_body(data, label).detected


# --- headers ------------------------------------------------------------------------------


def b_word(charset: str, data: bytes) -> str:
    return f"=?{charset}?B?{base64.b64encode(data).decode()}?="


def q_word(charset: str, data: bytes) -> str:
    return f"=?{charset}?q?{''.join(f'={byte:02x}' for byte in data)}?="


def raw(data: bytes) -> str:
    """Bytes as the compat32 parser keeps them in a header value."""
    return data.decode("ascii", "surrogateescape")


def test_header_b_and_q_any_case() -> None:
    value = f"{b_word('ISO-2022-JP', jis('①㈱'))} {q_word('utf-8', '～髙'.encode())} end"
    decoded = decode_header(value)
    exact(decoded, "①㈱～髙 end")
    assert decoded.charset == "iso-2022-jp-ms,utf-8"
    assert not decoded.detected


@pytest.mark.parametrize("split", range(1, 9))
def test_multibyte_character_split_across_utf8_words(split: int) -> None:
    data = "①㈱髙".encode()
    value = f"{b_word('utf-8', data[:split])}\r\n {q_word('UTF-8', data[split:])}"
    exact(decode_header(value), "①㈱髙")


@pytest.mark.parametrize("split", range(1, 12))
def test_iso2022jp_split_across_words(split: int) -> None:
    data = jis("①㈱髙")
    value = f"{b_word('iso-2022-jp', data[:split])} {b_word('iso-2022-jp', data[split:])}"
    exact(decode_header(value), "①㈱髙")


def test_whitespace_kept_between_word_and_text_dropped_between_words() -> None:
    value = f"Re: {b_word('utf-8', 'ａ'.encode())}  \t {b_word('utf-8', 'ｂ'.encode())} x"
    assert decode_header(value).text == "Re: ａｂ x"


def test_words_glued_to_text_or_quoted_are_decoded() -> None:
    word = b_word("utf-8", "山田".encode())
    assert decode_header(f'"{word}" <yamada@example.jp>').text == '"山田" <yamada@example.jp>'
    assert decode_header(f"abc{word}def").text == "abc山田def"


def test_language_suffix_in_charset() -> None:
    assert decode_header(b_word("utf-8*ja", "日本".encode())).text == "日本"


@pytest.mark.parametrize(
    "value",
    [
        "=?utf-8?B?####?=",
        "=?utf-8?B?4pGg4?=",  # one base64 letter too many
        "=?utf-8?X?abc?=",
        "=??B?YWJj?=",
        "=?utf-8?B?YWJj",
        "?= =?",
    ],
)
def test_malformed_words_stay_text(value: str) -> None:
    assert decode_header(value).text == value


def test_base64_without_padding_is_accepted() -> None:
    assert decode_header("=?utf-8?B?4pGg?=").text == "①"
    assert decode_header("=?utf-8?B?44GC44GE?=").text == "あい"
    assert decode_header("=?utf-8?B?44GC44G?=").lossy  # a broken last character


def test_unknown_charset_in_word_is_detected() -> None:
    decoded = decode_header(b_word("x-unknown", "①会議".encode("cp932")))
    exact(decoded, "①会議")
    assert decoded.detected


@pytest.mark.parametrize(
    ("data", "text", "charset"),
    [
        ("①会議資料のご送付".encode("cp932"), "①会議資料のご送付", "cp932"),
        ("①会議資料のご送付".encode(), "①会議資料のご送付", "utf-8"),
        ("会議資料のご送付".encode("euc_jp"), "会議資料のご送付", "euc-jp"),
        (jis("①会議"), "①会議", "iso-2022-jp-ms"),
    ],
)
def test_raw_8bit_and_raw_jis_headers(data: bytes, text: str, charset: str) -> None:
    decoded = decode_header(raw(b"Re: " + data))
    assert decoded == Decoded("Re: " + text, charset, False, True)


def test_folding_is_undone() -> None:
    assert decode_header("a\r\n b\n\tc").text == "a b c"


@pytest.mark.parametrize(
    "value",
    [
        q_word("utf-8", b"a\r\nBcc: x@example.com\x00"),
        b_word("utf-8", "a\r\nBcc: x\u2028\u2029\x85\x0b\x0c\x1b\x7f".encode()),
        b_word("iso-2022-jp", b"a\r\nTo: x"),
        "a\r\nBcc: x",  # a bare line break, not a fold
        "a\rb\nc\x00d",
        raw("件名\r\nBcc: x".encode("cp932")),
    ],
)
def test_no_header_injection(value: str) -> None:
    decoded = decode_header(value)
    assert not CONTROLS.search(decoded.text), decoded
    assert len(decoded.text.splitlines()) <= 1  # every Unicode line boundary is gone


def test_controls_are_spaces_or_removed_and_not_lossy() -> None:
    decoded = decode_header(q_word("utf-8", b"a\tb\r\nc\x00d\x07e"))
    assert decoded == Decoded("a b  cde", "utf-8", False, False, frozenset({"c0"}))


def test_header_that_is_not_bytes_is_lossy() -> None:
    decoded = decode_header("a\ud800b")
    assert decoded.lossy
    assert "\ud800" not in decoded.text


def test_decode_header_bytes_without_encoded_words() -> None:
    assert decode_header_bytes(b"=?utf-8?B?4pGg?=", encoded_words=False).text == "=?utf-8?B?4pGg?="


# --- RFC 2231 values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "data", "text"),
    [
        ("utf-8", "①㈱.xlsx".encode(), "①㈱.xlsx"),
        ("ISO-2022-JP", jis("①㈱") + b".xlsx", "①㈱.xlsx"),
        ("shift_jis", "髙﨑.txt".encode("cp932"), "髙﨑.txt"),
        (None, b"plain.txt", "plain.txt"),
        ("", "資料.pdf".encode(), "資料.pdf"),
    ],
)
def test_decode_param(charset: str | None, data: bytes, text: str) -> None:
    exact(decode_param(charset, data), text)


def test_decode_param_has_no_controls() -> None:
    assert decode_param("utf-8", b"a\r\nb\x00.txt").text == "a  b.txt"


# --- encoding to ISO-2022-JP --------------------------------------------------------------


def test_encode_round_trips_cp932_text() -> None:
    data = encode_iso2022jp(CP932_TEXT)
    assert data is not None
    assert data.isascii()
    assert re.findall(rb"\x1b[$(][@BI]", data)[-1] == ESC_ASCII
    assert ESC_KANA in data  # half-width katakana stay half-width
    exact(decode_body(data, "iso-2022-jp"), CP932_TEXT)


@pytest.mark.parametrize("extra", ["", "ｱ"])  # without / with half-width katakana (ESC ( I)
def test_long_text_round_trips(extra: str) -> None:
    text = (CP932_TEXT.replace("ｱｲｳｴｵ", "") + extra + JIS_TEXT) * 300
    data = encode_iso2022jp(text)
    assert data is not None
    decoded = decode_body(data, "iso-2022-jp")
    exact(decoded, text)
    assert decoded.charset == "iso-2022-jp-ms"


def test_encoded_lines_end_in_ascii() -> None:
    data = encode_iso2022jp("①\r\nｱ\r\n漢字\nabc")
    assert data is not None
    for line in data.split(b"\n")[:-1]:
        escapes = re.findall(rb"\x1b[$(][@BI]", line)
        assert not escapes or escapes[-1] == ESC_ASCII, line


def test_encode_plain_text_is_standard_iso2022jp() -> None:
    assert encode_iso2022jp(JIS_TEXT) == JIS_TEXT.encode("iso2022_jp")
    assert encode_iso2022jp("abc") == b"abc"


@pytest.mark.parametrize(
    "text", ["〜", "¥", "\u203e", "\ue000", "😀", "\x1b$B", "\x0e", "한국", "\x80", "ß"]
)
def test_encode_refuses_what_cannot_round_trip(text: str) -> None:
    assert encode_iso2022jp("ok " + text) is None


def test_ibm_extensions_are_written_as_nec_codes() -> None:
    ibm = bytes.fromhex("fa40fa55fa58fb9cfc4b").decode("cp932")  # ⅰ ￤ ㈱ and two IBM kanji
    data = encode_iso2022jp(ibm)
    assert data is not None
    exact(decode_body(data, "iso-2022-jp"), ibm)


# --- properties ---------------------------------------------------------------------------


def _cp932_repertoire() -> list[str]:
    """Every character CP932 writes in ISO-2022-JP: ASCII without ESC/SO/SI, half-width
    katakana, and the double-byte rows (the IBM extensions included, user-defined excluded)."""
    chars = {chr(code) for code in range(0x80)} - {"\x1b", "\x0e", "\x0f"}
    chars |= set(bytes(range(0xA1, 0xE0)).decode("cp932"))
    for lead in [*range(0x81, 0xA0), *range(0xE0, 0xF0), *range(0xFA, 0xFD)]:
        for trail in [*range(0x40, 0x7F), *range(0x80, 0xFD)]:
            try:
                chars.add(bytes((lead, trail)).decode("cp932"))
            except UnicodeDecodeError:
                continue
    return sorted(chars)


CP932_REPERTOIRE = _cp932_repertoire()
LABELS = st.sampled_from(
    [None, "utf-8", "iso-2022-jp", "shift_jis", "euc-jp", "us-ascii", "x-unknown", "utf-16"]
)
SURROGATE_TEXT = st.binary(max_size=200).map(raw)
HEADER_PIECES = st.sampled_from(
    [
        "=?",
        "?=",
        "?B?",
        "?Q?",
        "?b?",
        "utf-8",
        "iso-2022-jp",
        "x-unknown",
        "4pGg",
        "GyRC",
        "=E2=91",
        "_",
        " ",
        "\r\n ",
        "\r\n",
        "\x00",
        "\x1b$B",
        "\x1b(B",
        "-!",
        '"',
        ";",
        "\udc82\udca0",
        "\udce3\udc81",
    ]
)
HEADERS = st.one_of(
    st.text(max_size=100),
    SURROGATE_TEXT,
    st.lists(HEADER_PIECES, max_size=30).map("".join),
)


@given(st.lists(st.sampled_from(CP932_REPERTOIRE), max_size=80).map("".join))
@settings(max_examples=300)
def test_property_cp932_text_round_trips_through_iso2022jp(text: str) -> None:
    data = encode_iso2022jp(text)
    if data is None:  # an IBM kanji that is also an au emoji code, with no kanji beside it
        assert any(char in AU_SHARED_KANJI for char in text)
        return
    assert data.isascii()
    exact(decode_body(data, "iso-2022-jp"), text)


@given(st.text(max_size=60))
def test_property_encoder_output_always_round_trips(text: str) -> None:
    data = encode_iso2022jp(text)
    if data is not None:
        exact(decode_body(data, "iso-2022-jp"), text)


@given(st.binary(max_size=300), LABELS)
@settings(max_examples=300)
def test_property_decode_body_never_raises(data: bytes, label: str | None) -> None:
    decoded = decode_body(data, label)
    assert isinstance(decoded.text, str)
    # ESC, and SO/SI in ISO-2022-JP, are shifts, not text.
    shifts = b"\x1b" in data or (b"\x0e" in data and label in (None, "iso-2022-jp"))
    if not decoded.lossy and data.isascii() and not shifts and label != "utf-16":
        assert decoded.text == data.decode("ascii")


@given(HEADERS)
@settings(max_examples=500)
def test_property_decode_header_never_raises_and_never_has_controls(value: str) -> None:
    decoded = decode_header(value)
    assert not CONTROLS.search(decoded.text)


@given(st.one_of(st.none(), st.text(max_size=20)), st.binary(max_size=100))
def test_property_decode_param_never_raises(charset: str | None, data: bytes) -> None:
    assert not CONTROLS.search(decode_param(charset, data).text)


JIS_BYTES = st.lists(
    st.one_of(
        st.sampled_from([b"\x1b$B", b"\x1b(B", b"\x1b(J", b"\x1b(I", b"\x1b$@", b"\r\n", b" "]),
        st.binary(min_size=1, max_size=4).map(lambda b: bytes(0x21 + x % 94 for x in b)),
        st.sampled_from([b"-!", b"y!", b"!A", b"\x80", b"\x1b"]),
    ),
    max_size=20,
).map(b"".join)


@given(JIS_BYTES)
@settings(max_examples=500)
def test_property_fast_path_agrees_with_the_converter(data: bytes) -> None:
    fast = iso2022jp._iso2022jp_fast(data)
    if fast is not None:
        decoder = iso2022jp._Iso2022Decoder(strict=True)
        assert decoder.decode(data) == fast[0]
        assert decoder.charset() == fast[1]


# --- corpus -------------------------------------------------------------------------------

JAPANESE_CORPORA = ("jpmobile", "mail-iso-2022-jp")
# au (KDDI) writes its carrier emoji in ISO-2022-JP as its own JIS rows 85-92, DoCoMo and
# SoftBank theirs in CP932's user-defined area: with no public mapping shipped, each one is a
# U+FFFD and the decode says lossy. Every other mail must be exact.
CARRIER_EMOJI_IN_JIS = re.compile(r"(?:au-.*|(?:docomo|softbank)-(?:emoji|gmail-sjis))\.eml")


def _japanese_mails() -> list[Path]:
    root = require_corpus()
    mails = [path for name in JAPANESE_CORPORA for path in sorted((root / name).rglob("*.eml"))]
    if not mails:
        pytest.skip(f"no Japanese mails under {root} ({', '.join(JAPANESE_CORPORA)})")
    return mails


def _text_parts(message: Message) -> list[Message]:
    return [part for part in message.walk() if part.get_content_maintype() == "text"]


@pytest.mark.corpus
def test_corpus_japanese_mails_decode_without_loss() -> None:
    lossy: list[str] = []
    for path in _japanese_mails():
        message = message_from_bytes(path.read_bytes(), policy=policy.compat32)
        results = [decode_header(str(message[name])) for name in ("Subject", "From", "To")]
        for part in _text_parts(message):
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            results.append(decode_body(payload, part.get_content_charset()))
        if any(result.lossy for result in results) and not CARRIER_EMOJI_IN_JIS.fullmatch(
            path.name
        ):
            lossy.append(path.name)
    assert not lossy
