"""Issue 12, classes 2-6: Japanese text exact in all three Japanese encodings, in headers
(Subject, From/To display names), bodies and file names (RFC 2047, RFC 2231, raw 8-bit); a
character that cannot be decoded exactly is a replacement reported as ``lossy_decode``, never
another real character. Every fixture is built here, byte by byte."""

from __future__ import annotations

import base64
import gzip
import random
import re
from email import message_from_bytes
from email.header import decode_header as decode_header_words
from email.header import make_header
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest
from pydantic import ValidationError

from sanitizers.cdr.base import CdrContext
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.cdr.text import TextSanitizer
from sanitizers.charsets import (
    DEFAULT_JAPANESE_PRIOR,
    Preferences,
    decode_body,
    decode_header,
    decode_html,
    decode_param,
    preferences,
)
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import AttachmentPolicy, CharsetPolicy, Policy
from sanitizers.report import SanitizeResult
from sanitizers.vocabulary import Reason
from tests.mailfactory import body_text, leaf, mail, multipart

TEXT_ONLY = Policy(attachments=AttachmentPolicy(by_kind={}))
# Text with few or no kana: an address, a department, short subjects, a table of kanji.
KANJI_ONLY = [
    "東京都千代田区永田町一丁目七番一号",
    "総務部情報政策課",
    "会議",
    "議事録",
    "見積書",
    "品名\t数量\t単価\r\n鉛筆\t十本\t百円\r\n封筒\t五十枚\t千円\r\n",
]
# Names whose Shift_JIS trail byte is 0x5C (a backslash), with an ideographic space.
BACKSLASH_NAMES = ["表　太郎", "ソフト開発課", "能登　花子", "十河"]
EIGHT_BIT = {"shift_jis": "cp932", "euc-jp": "euc_jp"}
ALL_THREE = {"iso-2022-jp": "iso2022_jp", **EIGHT_BIT}


def encode(text: str, charset: str) -> bytes:
    return text.encode(ALL_THREE[charset])


def b_word(text: str, charset: str, label: str | None = None) -> bytes:
    data = base64.b64encode(encode(text, charset))
    return b"=?" + (label or charset).encode() + b"?B?" + data + b"?="


def message(*pairs: tuple[str, bytes], body: bytes | None = None) -> bytes:
    top = dict(
        [
            ("From", b"Sender <sender@example.jp>"),
            ("To", b"staff@city.example.lg.jp"),
            ("Subject", b"test"),
            ("Date", b"Mon, 02 Nov 2026 10:00:00 +0900"),
            ("Message-ID", b"<t1@example.jp>"),
        ]
    )
    top.update(pairs)
    part = body if body is not None else leaf("text/plain; charset=utf-8", b"body")
    return mail(part, *top.items())


def run(raw: bytes, policy: Policy = TEXT_ONLY) -> SanitizeResult:
    return sanitize_message(raw, policy)


def headers(result: SanitizeResult) -> dict[str, object]:
    """Subject and address headers of the output, decoded as RFC 2047 says (whitespace between
    adjacent encoded-words is not text, which the email package's address parser keeps)."""
    out = message_from_bytes(result.message, policy=compat32)
    decoded: dict[str, object] = {}
    for name in ("Subject", "From", "To"):
        value = out[name]
        if value is None:
            decoded[name] = None
        elif name == "Subject":
            decoded[name] = str(make_header(decode_header_words(value)))
        else:
            decoded[name] = [
                (str(make_header(decode_header_words(shown))), address)
                for shown, address in getaddresses([value])
            ]
    return decoded


def lossy(result: SanitizeResult) -> bool:
    return Reason.LOSSY_DECODE in result.report.reason_codes()


def with_file(name_param: bytes) -> bytes:
    return multipart(
        "mixed",
        [
            leaf("text/plain; charset=utf-8", b"see attachment"),
            leaf(
                "application/octet-stream",
                b"data",
                cte="base64",
                extra=[("Content-Disposition", b"attachment; " + name_param)],
            ),
        ],
    )


def file_name_forms(name: str, charset: str) -> list[bytes]:
    """The ways mailers write a Japanese file name: RFC 2231, RFC 2047 in quotes, raw."""
    data = encode(name, charset)
    forms = [
        b"filename*=" + charset.encode() + b"''" + quote_from_bytes(data).encode(),
        b'filename="' + b_word(name, charset) + b'"',
    ]
    if charset != "iso-2022-jp":
        forms.append(b'filename="' + data + b'"')
    return forms


# --- class 2: kanji are not read as Korean or Chinese ----------------------------------------


@pytest.mark.parametrize("label", [None, "us-ascii", "utf-8", "iso-8859-1", "x-unknown"])
@pytest.mark.parametrize("charset", list(EIGHT_BIT))
@pytest.mark.parametrize("text", KANJI_ONLY)
def test_kanji_only_bodies_are_japanese(text: str, charset: str, label: str | None) -> None:
    decoded = decode_body(encode(text, charset), label)
    assert (decoded.text, decoded.lossy) == (text, False)


@pytest.mark.parametrize("charset", list(EIGHT_BIT))
@pytest.mark.parametrize("text", KANJI_ONLY[:5])
def test_kanji_only_subjects_names_and_file_names(text: str, charset: str) -> None:
    data = encode(text, charset)
    raw = message(
        ("Subject", data),
        ("From", b'"' + data + b'" <sender@example.jp>'),
        ("To", b_word(text, charset, "iso-8859-1") + b" <staff@city.example.lg.jp>"),
        body=with_file(b'filename="' + data + b'.csv"'),
    )
    result = run(raw)
    out = headers(result)
    assert out["Subject"] == text
    assert out["From"] == [(text, "sender@example.jp")]
    assert out["To"] == [(text, "staff@city.example.lg.jp")]
    assert result.report.parts[1].filename == text + ".csv"
    assert not lossy(result)


# Kanji-only compounds of municipal work whose Chinese or Korean readings (GB18030, CP949) hit
# a few marker characters again and again (課税 read as CP949 is 꿇의): a handful of repeated
# markers is no evidence against a Japanese reading made of common kanji.
KANJI_WORDS_TEXT = (
    "固定 資産 税 課税 台帳 住民 戸籍 謄本 市役所 健康 保険 国民 年金 "
    "会議 議事録 見積 請求 納付 期限 申請 届出 登録 証明 窓口 教育 委員会 "
    "給食 防災 訓練 選挙 予算 決算 監査 総務 企画 財政 契約 入札 図書 "
    "児童 手当 生活 障害 高齢 支援 医療 評価 税務 収納 滞納 処分 人事 "
    "上下"
)
KANJI_WORDS = KANJI_WORDS_TEXT.split()


def kanji_strings(count: int, seed: int) -> list[str]:
    """``count`` kanji-only strings of two to eight compounds, generated from ``seed``."""
    rng = random.Random(seed)
    return ["".join(rng.choices(KANJI_WORDS, k=rng.randint(2, 8))) for _ in range(count)]


@pytest.mark.parametrize("charset", list(EIGHT_BIT))
@pytest.mark.parametrize("seed", range(4))
def test_generated_kanji_only_text_is_never_chinese_or_korean(charset: str, seed: int) -> None:
    for text in ["固定資産税課税台帳", "税課税", "課税台帳", *kanji_strings(60, seed)]:
        decoded = decode_body(encode(text, charset), None)
        assert (decoded.text, decoded.lossy) == (text, False), (text, decoded.charset)


@pytest.mark.parametrize("charset", list(EIGHT_BIT))
@pytest.mark.parametrize("text", ["固定資産税課税台帳", "税課税", *kanji_strings(4, 7)])
def test_generated_kanji_only_subject_and_body_survive_the_pipeline(
    text: str, charset: str
) -> None:
    data = encode(text, charset)
    result = run(message(("Subject", data), body=leaf("text/plain", data)))
    assert headers(result)["Subject"] == text
    assert body_text(result.message).startswith(text)
    assert not lossy(result)


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("我们的产品质量很好，这是你们需要的东西。我们会尽快发货，请注意查收。", "gb18030"),
        ("我們的產品質量很好，這是你們需要的東西。我們會盡快發貨，請注意查收。", "big5"),
        ("안녕하세요. 서울시청 민원실입니다. 문의하신 내용에 대해 답변을 드립니다.", "cp949"),
    ],
)
def test_strong_evidence_for_another_language_still_wins(text: str, codec: str) -> None:
    data = text.encode(codec)
    assert decode_body(data, None).text == text
    try:
        data.decode("euc_jp")
    except UnicodeDecodeError:  # only JIS X 0213 reads it as Japanese: no prior for that
        with preferences(Preferences(japanese_prior=1.0)):
            assert decode_body(data, None).text == text
    else:
        with preferences(Preferences(japanese_prior=1.0)):  # never give up a JIS X 0208 reading
            assert decode_body(data, None).text == data.decode("euc_jp")


def test_the_prior_is_a_validated_policy_setting() -> None:
    assert Policy().charsets.japanese_prior == DEFAULT_JAPANESE_PRIOR
    assert Policy.model_validate({"charsets": {"japanese_prior": 1}}).charsets == CharsetPolicy(
        japanese_prior=1.0
    )
    for wrong in (-0.1, 1.5, "high"):
        with pytest.raises(ValidationError):
            Policy.model_validate({"charsets": {"japanese_prior": wrong}})
    text = Path("config/defaults.toml").read_text(encoding="utf-8")
    assert "[policy.charsets]" in text
    assert f"japanese_prior = {DEFAULT_JAPANESE_PRIOR}" in text


@pytest.mark.parametrize("charset", list(EIGHT_BIT))
@pytest.mark.parametrize(
    "meta",
    [
        b'<meta charset="{}">',
        b'<meta http-equiv="Content-Type" content="text/html; charset={}">',
    ],
)
def test_html_body_uses_its_meta_charset(charset: str, meta: bytes) -> None:
    text = KANJI_ONLY[1]
    html = b"<html><head>" + meta.replace(b"{}", charset.encode()) + b"</head><body><p>"
    html += encode(text, charset) + b"</p></body></html>"
    assert decode_html(html, None).text.endswith(text + "</p></body></html>")
    result = run(message(body=leaf("text/html", html)))
    assert body_text(result.message).startswith(text)
    assert not lossy(result)


@pytest.mark.parametrize("bom", ["utf-16-le", "utf-16-be"])
def test_utf16_body_with_a_bom_and_no_label(bom: str) -> None:
    text = "お知らせ：総務部より\r\n"
    data = "\ufeff".encode(bom) + text.encode(bom)
    decoded = decode_body(data, None)
    assert (decoded.text, decoded.charset, decoded.lossy) == (text, "utf-16", False)
    assert body_text(run(message(body=leaf("text/plain", data))).message) == text.replace("\r", "")


@pytest.mark.parametrize("charset", list(EIGHT_BIT))
def test_kanji_csv_attachment_is_delivered_as_japanese(charset: str) -> None:
    table = "".join(
        f"{row}\r\n" for row in ("品名,数量,単価", "鉛筆,十本,百円", "封筒,五十枚,千円")
    )
    outcome = TextSanitizer().run(encode(table, charset), "一覧.csv", CdrContext(CdrPolicy()))
    assert outcome.data is not None
    assert outcome.data.decode("utf-8-sig") == table


# --- class 3: addresses survive raw 8-bit display names ---------------------------------------


def _jis_kanji_with(second_byte: int) -> str:
    """A kanji whose ISO-2022-JP pair ends in ``second_byte`` (an address special)."""
    return bytes((0xB0, second_byte | 0x80)).decode("euc_jp")


SPECIALS = b'@<>,;:"()[]\\'
JIS_SPECIALS_NAME = "".join(_jis_kanji_with(byte) for byte in SPECIALS)


@pytest.mark.parametrize("quoted", [True, False])
@pytest.mark.parametrize("charset", list(ALL_THREE))
@pytest.mark.parametrize("name", [*BACKSLASH_NAMES, JIS_SPECIALS_NAME])
def test_raw_display_names_keep_the_address(name: str, charset: str, quoted: bool) -> None:
    raw_name = encode(name, charset)
    if charset == "iso-2022-jp":
        assert any(bytes((byte,)) in raw_name for byte in SPECIALS)
    shown = b'"' + raw_name + b'"' if quoted else raw_name
    raw = message(
        ("From", shown + b" <taro@example.jp>"),
        ("To", shown + b" <staff@city.example.lg.jp>, " + shown + b" <kacho@city.example.lg.jp>"),
    )
    result = run(raw)
    out = headers(result)
    assert out["From"] == [(name, "taro@example.jp")]
    assert out["To"] == [(name, "staff@city.example.lg.jp"), (name, "kacho@city.example.lg.jp")]
    assert result.report.from_ == f"{name} <taro@example.jp>"
    assert not lossy(result)


def test_the_issue_example_keeps_its_address() -> None:
    pairs = b"3EDB@O"
    result = run(message(("From", b"\x1b$B" + pairs + b"\x1b(B <taro@example.jp>")))
    name = (b"\x1b$B" + pairs + b"\x1b(B").decode("iso2022_jp")
    assert headers(result)["From"] == [(name, "taro@example.jp")]


@pytest.mark.parametrize("charset", list(EIGHT_BIT))
def test_a_decoded_raw_name_never_becomes_an_address(charset: str) -> None:
    # Full-width "<" and "@" decode inside the name; the only address is the ASCII one.
    name = "総務課＜ｂｏｓｓ＠ｃｉｔｙ＞"
    raw = message(("From", encode(name, charset) + b" <taro@example.jp>"))
    [(_name, address)] = headers(run(raw))["From"]  # type: ignore[misc]
    assert address == "taro@example.jp"


def test_raw_bytes_only_from_is_dropped_not_read_as_an_address() -> None:
    result = run(message(("From", b"\x1b$B3EDB@O\x1b(B")))
    assert headers(result)["From"] is None
    assert Reason.MALFORMED in result.report.reason_codes() or result.report.defects


# --- class 4: never a different real character ------------------------------------------------


EUCJP_MS = {
    b"\x8f\xf4\xfb": "髙",
    b"\x8f\xf4\xbd": "﨑",
    b"\x8f\xf3\xf3": "ⅰ",
    b"\x8f\xf4\xa6": "Ⅷ",
}


@pytest.mark.parametrize(("raw", "char"), list(EUCJP_MS.items()))
def test_eucjp_ms_ibm_extensions_in_bodies_subjects_and_file_names(raw: bytes, char: str) -> None:
    data = "髙橋".encode("cp932").decode("cp932").encode("euc_jp", "ignore") + raw
    text = "橋" + char
    decoded = decode_body(data, "euc-jp")
    assert (decoded.text, decoded.lossy, decoded.charset) == (text, False, "eucjp-ms")
    assert decode_body(data + "です".encode("euc_jp"), None).text == text + "です"
    word = b"=?euc-jp?B?" + base64.b64encode(data) + b"?="
    result = run(
        message(
            ("Subject", word),
            ("From", data + b" <taro@example.jp>"),
            body=with_file(b"filename*=euc-jp''" + quote_from_bytes(data).encode() + b".txt"),
        )
    )
    out = headers(result)
    assert out["Subject"] == text
    assert out["From"] == [(text, "taro@example.jp")]
    assert result.report.parts[1].filename == text + ".txt"
    assert not lossy(result)


def test_eucjp_ms_table_matches_the_system_charmap() -> None:
    charmap = Path("/usr/share/i18n/charmaps/EUC-JP-MS.gz")
    if not charmap.exists():
        pytest.skip(f"{charmap} is not installed (Debian package locales)")
    checked = 0
    for line in gzip.decompress(charmap.read_bytes()).decode("ascii").splitlines():
        fields = line.removeprefix("%IRREVERSIBLE%").split()
        if len(fields) > 1 and fields[1].startswith(("/x8f/xf3", "/x8f/xf4")):
            code = bytes(int(byte, 16) for byte in fields[1].split("/x")[1:])
            assert decode_body(code, "euc-jp").text == chr(int(fields[0][2:-1], 16)), line
            checked += 1
    assert checked == 106


AU_SUBJECT = b"\x1b$B%F%9%H\x1b(B\x1b$By[\x1b(B"  # テスト and an au emoji in JIS row 0x79


@pytest.mark.parametrize("sender", [b"au@ezweb.ne.jp", b"taro@au.com"])
def test_au_emoji_in_iso2022jp_are_emoji_never_kanji(sender: bytes) -> None:
    body = b"\x1b$B$*CN$i$;\x1b(B\x1b$Bz!\x1b(B\r\n"
    result = run(
        message(
            ("From", sender),
            ("Subject", b"=?iso-2022-jp?B?" + base64.b64encode(AU_SUBJECT) + b"?="),
            body=leaf("text/plain; charset=iso-2022-jp", body),
        )
    )
    assert headers(result)["Subject"] == "テスト\U0001f499"  # EmojiSources: KDDI F77A
    assert body_text(result.message).startswith("お知らせ\U0001f630\n")  # KDDI F79F
    assert not lossy(result)


def test_au_emoji_rows_without_the_sender_are_known_by_the_rows_only_au_uses() -> None:
    data = b"\x1b$Bu*\x1b(B \x1b$By[\x1b(B"  # row 0x75 (au only), then row 0x79
    decoded = decode_body(data, "iso-2022-jp")
    assert (decoded.text, decoded.lossy) == ("\U0001f603 \U0001f499", False)
    # Without either signal, a row 0x79-0x7C code beside a kanji is what Windows wrote: a
    # NEC-selected IBM kanji; alone it could be either, and is reported.
    assert decode_body(b"\x1b$B;3z\\\x1b(B", "iso-2022-jp").text == "山" + b"\xed\xda".decode(
        "cp932"
    )
    alone = decode_body(b"\x1b$Bz\\\x1b(B", "iso-2022-jp")
    assert (alone.text, alone.lossy) == ("\ufffd", True)


@pytest.mark.parametrize(
    "emoji", [b"\xf8\x9f", b"\xf9\x7c", b"\xf6\x60", b"\xf7\xc1", b"\xfb\x41"]
)  # DoCoMo, SoftBank, au, SoftBank: CP932's user-defined area
def test_carrier_emoji_in_shift_jis_are_reported_never_private_use(emoji: bytes) -> None:
    data = "件名".encode("cp932") + emoji
    if emoji[0] > 0xF9:  # beyond the user-defined area: IBM extensions, real characters
        assert decode_body(data, "shift_jis").text == data.decode("cp932")
        return
    result = run(
        message(
            ("Subject", b"=?shift_jis?B?" + base64.b64encode(data) + b"?="),
            body=leaf("text/plain; charset=shift_jis", data),
        )
    )
    assert headers(result)["Subject"] == "件名\ufffd"
    assert body_text(result.message).startswith("件名\ufffd")
    assert lossy(result)
    assert decode_body(data, None).text == "件名\ufffd"
    assert decode_param("shift_jis", data).lossy


# --- class 5: decode as a Japanese reader's mail client would --------------------------------


HALF_WIDTH = "ｶﾀｶﾅ"
CP50221_FORMS = [
    b"\x1b$B%F%9%H\x1b(B\x0e6@6E\x0f ABC",  # SO/SI (CP50221/CP50222)
    b"\x1b$B%F%9%H\x1b(J\x0e6@6E\x0f ABC",  # SO/SI after JIS-Roman
    b"\x1b$B%F%9%H\x1b(I6@6E\x1b(B ABC",  # ESC ( I
]


@pytest.mark.parametrize("data", CP50221_FORMS)
def test_half_width_katakana_in_iso2022jp(data: bytes) -> None:
    text = "テスト" + HALF_WIDTH + " ABC"
    for label in ("iso-2022-jp", "cp50221", None):
        decoded = decode_body(data, label)
        assert (decoded.text, decoded.lossy) == (text, False)
    word = b"=?iso-2022-jp?B?" + base64.b64encode(data) + b"?="
    result = run(
        message(
            ("Subject", word),
            ("From", word + b" <taro@example.jp>"),
            body=with_file(b"filename*=iso-2022-jp''" + quote_from_bytes(data).encode()),
        )
    )
    out = headers(result)
    assert out["Subject"] == text
    assert out["From"] == [(text, "taro@example.jp")]
    assert result.report.parts[1].filename == text
    assert not lossy(result)


@pytest.mark.parametrize(("actual", "label"), [("shift_jis", "euc-jp"), ("shift_jis", "utf-8")])
@pytest.mark.parametrize("text", ["会議資料の送付", "総務部"])
def test_shift_jis_labelled_as_another_japanese_charset(actual: str, label: str, text: str) -> None:
    data = encode(text, actual)
    decoded = decode_body(data, label)
    assert (decoded.text, decoded.lossy, decoded.detected) == (text, False, True)
    body = run(message(body=leaf(f"text/plain; charset={label}", data)))
    assert body_text(body.message).startswith(text)
    assert body.report.parts[0].detail == f"charset {label} declared, read as cp932"
    result = run(
        message(("Subject", b"=?" + label.encode() + b"?B?" + base64.b64encode(data) + b"?="))
    )
    assert headers(result)["Subject"] == text


@pytest.mark.parametrize("charset", list(EIGHT_BIT))
@pytest.mark.parametrize("label", ["iso-8859-1", "windows-1252", "us-ascii"])
def test_latin1_labelled_kanji_subjects(charset: str, label: str) -> None:
    for text in ("会議", "議事録の件", "東京都総務局"):
        result = run(message(("Subject", b_word(text, charset, label))))
        assert headers(result)["Subject"] == text


@pytest.mark.parametrize("label", ["iso-2022-jp-2004", "iso-2022-jp-3", "iso-2022-jp"])
def test_jis_x_0213_iso2022jp(label: str) -> None:
    text = "𠀋俱剝と会議"  # a plane-2 kanji and JIS X 0213 plane-1 additions
    data = text.encode("iso2022_jp_2004")
    assert b"\x1b$(" in data
    decoded = decode_body(data, label)
    assert (decoded.text, decoded.lossy) == (text, False)
    result = run(
        message(("Subject", b"=?" + label.encode() + b"?B?" + base64.b64encode(data) + b"?="))
    )
    assert headers(result)["Subject"] == text


# --- class 6: every character kept --------------------------------------------------------------


SPACED = ["\u3000件名\u3000テスト\u3000", "山田\u3000花子", "a  b\u3000\u3000c"]


@pytest.mark.parametrize("charset", list(ALL_THREE))
@pytest.mark.parametrize("text", SPACED)
def test_ideographic_and_repeated_spaces_are_kept(charset: str, text: str) -> None:
    forms = [b_word(text, charset)]
    if charset != "iso-2022-jp":
        forms.append(encode(text, charset))
    for form in forms:
        result = run(message(("Subject", form), ("From", form + b" <taro@example.jp>")))
        out = headers(result)
        assert out["Subject"] == text
        # Between ASCII words of a display name, spaces are folding whitespace (RFC 5322).
        [(shown, address)] = out["From"]  # type: ignore[misc]
        assert shown in (text.strip(" "), re.sub(" +", " ", text.strip(" ")))
        assert address == "taro@example.jp"
        assert result.report.subject == text
        assert decode_header(form.decode("ascii", "surrogateescape")).text == text


@pytest.mark.parametrize("charset", list(ALL_THREE))
def test_file_names_in_every_form_are_exact(charset: str) -> None:
    name = "表　ソ能①髙﨑.txt" if charset != "euc-jp" else "表　ソ能.txt"
    if charset == "iso-2022-jp":
        name = "表　ソ能.txt"
    for form in file_name_forms(name, charset):
        result = run(message(body=with_file(form)))
        assert result.report.parts[1].filename == name, form
        assert not lossy(result)


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("Фёдор Михайлович Достоевский", "koi8_r"),
        ("Фёдор Михайлович Достоевский", "cp1251"),
        ("Ingo Lütkebohle", "latin-1"),
    ],
)
def test_raw_names_in_other_charsets_are_read_on_the_whole_value(name: str, codec: str) -> None:
    raw = message(("From", b'"' + name.encode(codec) + b'" <fyodor@example.org>'))
    assert headers(run(raw))["From"] == [(name, "fyodor@example.org")]


def test_a_fold_is_one_space_and_typed_spaces_stay() -> None:
    raw = message(("Subject", "会議の件 \r\n    資料  送付".encode("cp932")))
    assert headers(run(raw))["Subject"] == "会議の件 資料  送付"
