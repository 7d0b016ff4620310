"""Issue 12, class 4: carrier emoji become the Unicode emoji of Unicode's EmojiSources.txt, and
an ISO-2022-JP code that is both an au emoji and an IBM-extension kanji (JIS rows 0x79-0x7C) is
never silently read as either when nothing tells which: it is a replacement, reported as
``lossy_decode``. Bodies, Subjects and file names; every fixture is built here."""

from __future__ import annotations

import base64
from urllib.parse import quote_from_bytes

import pytest

from sanitizers.charsets import Preferences, decode_body, encode_iso2022jp, preferences
from sanitizers.charsets.carrier_emoji import carrier_emoji
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import OutputPolicy, Policy
from sanitizers.vocabulary import Reason
from tests.mailfactory import body_text, leaf, mail, multipart

ESC_KANJI, ESC_ASCII = b"\x1b$B", b"\x1b(B"
SHARED_ROWS = range(0x79, 0x7D)


def jis_to_sjis(pair: bytes) -> int:
    j1, j2 = pair
    s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
    s2 = j2 + (0x1F if j2 <= 0x5F else 0x20) if j1 & 1 else j2 + 0x7E
    return s1 << 8 | s2


def au_mail_emoji(pair: bytes) -> str | None:
    """What KDDI's tables say an au mail JIS code is: its Shift_JIS form moved up to the
    phones' code (0xEB-0xEC leads by 0x0B00, 0xED-0xEE by 0x0600), in Unicode's table."""
    if pair[0] not in range(0x75, 0x7D):
        return None
    mail_code = jis_to_sjis(pair)
    return carrier_emoji("au", mail_code + (0x0B00 if mail_code < 0xED00 else 0x0600))


AU_CODES = [
    bytes((j1, j2))
    for j1 in range(0x75, 0x7D)
    for j2 in range(0x21, 0x7F)
    if au_mail_emoji(bytes((j1, j2))) is not None
]
# Codes of the rows au shares with the NEC-selected IBM extensions, and the kanji they are.
SHARED = {
    pair: jis_to_sjis(pair).to_bytes(2, "big").decode("cp932")
    for pair in AU_CODES
    if pair[0] in SHARED_ROWS
}


def jis(*pairs: bytes) -> bytes:
    return ESC_KANJI + b"".join(pairs) + ESC_ASCII


def kana(text: str) -> bytes:
    return text.encode("iso2022_jp")[3:-3]


def run(raw: bytes, policy: Policy | None = None):  # type: ignore[no-untyped-def]
    return sanitize_message(raw, policy or Policy())


def message(sender: bytes, subject: bytes, body: bytes, name: bytes | None = None) -> bytes:
    parts = leaf("text/plain; charset=iso-2022-jp", body)
    if name is not None:
        attachment = leaf(
            "application/octet-stream",
            b"data",
            cte="base64",
            extra=[
                (
                    "Content-Disposition",
                    b"attachment; filename*=iso-2022-jp''" + quote_from_bytes(name).encode(),
                )
            ],
        )
        parts = multipart("mixed", [parts, attachment])
    return mail(
        parts,
        ("From", sender),
        ("To", b"staff@city.example.lg.jp"),
        ("Subject", b"=?iso-2022-jp?B?" + base64.b64encode(subject) + b"?="),
    )


def test_the_table_covers_the_au_rows() -> None:
    assert len(AU_CODES) > 600
    assert {pair[0] for pair in AU_CODES} == set(range(0x75, 0x7C))
    assert len(SHARED) > 250


@pytest.mark.parametrize("pair", AU_CODES[::7])
def test_au_emoji_from_an_au_sender_become_unicode_emoji(pair: bytes) -> None:
    emoji = au_mail_emoji(pair)
    text = jis(kana("お知らせ"), pair)
    result = run(message(b"taro@ezweb.ne.jp", text, text + b"\r\n", text))
    assert result.report.subject == f"お知らせ{emoji}"
    assert body_text(result.message).startswith(f"お知らせ{emoji}\n")
    assert [p.filename for p in result.report.parts][-1] == f"お知らせ{emoji}"
    assert Reason.LOSSY_DECODE not in result.report.reason_codes()


@pytest.mark.parametrize("pair", list(SHARED)[::5])
def test_a_lone_shared_code_from_an_unknown_sender_is_reported_never_guessed(pair: bytes) -> None:
    text = jis(kana("お知らせ"), pair)
    result = run(message(b"someone@example.jp", text, text + b"\r\n", text))
    assert result.report.subject == "お知らせ\ufffd"
    assert body_text(result.message).startswith("お知らせ\ufffd\n")
    assert Reason.LOSSY_DECODE in result.report.reason_codes()
    for got in (result.report.subject, body_text(result.message)):
        assert SHARED[pair] not in got
        assert au_mail_emoji(pair) not in got


@pytest.mark.parametrize("pair", list(SHARED)[::9])
@pytest.mark.parametrize(
    ("before", "after"),
    [
        (kana("山"), b""),  # a surname: 山﨑
        (b"", kana("橋")),  # 髙橋
        (b"|b", b""),  # beside 髙, a code au never uses
        (b"", b"|q"),  # beside ⅰ
    ],
)
def test_a_shared_code_beside_a_kanji_is_the_kanji(
    pair: bytes, before: bytes, after: bytes
) -> None:
    codes = before + pair + after
    expected = "".join(
        jis_to_sjis(codes[i : i + 2]).to_bytes(2, "big").decode("cp932")
        for i in range(0, len(codes), 2)
    )
    decoded = decode_body(jis(codes), "iso-2022-jp")
    assert (decoded.text, decoded.lossy) == (expected, False)


def test_shared_codes_need_their_neighbour_in_the_same_text() -> None:
    pair = next(iter(SHARED))
    assert decode_body(jis(kana("山"), pair), "iso-2022-jp").text == "山" + SHARED[pair]
    # Only ASCII between them: a new segment, no neighbour.
    lone = decode_body(jis(kana("山")) + b" " + jis(pair), "iso-2022-jp")
    assert (lone.text, lone.lossy) == ("山 \ufffd", True)


def test_the_rows_only_au_uses_make_the_shared_rows_emoji_too() -> None:
    pair = next(iter(SHARED))
    au_only = next(code for code in AU_CODES if code[0] < 0x79)
    decoded = decode_body(jis(au_only) + b" " + jis(kana("山"), pair), "iso-2022-jp")
    assert decoded.text == f"{au_mail_emoji(au_only)} 山{au_mail_emoji(pair)}"
    assert not decoded.lossy


@pytest.mark.parametrize(
    ("sender", "carrier", "code"),
    [
        (b"hanako@docomo.ne.jp", "docomo", 0xF89F),  # sun
        (b"taro@ezweb.ne.jp", "au", 0xF660),
        (b"jiro@softbank.ne.jp", "softbank", 0xF741),
        (b"jiro@i.softbank.jp", "softbank", 0xF9E0),
    ],
)
def test_shift_jis_carrier_emoji_follow_the_senders_carrier(
    sender: bytes, carrier: str, code: int
) -> None:
    emoji = carrier_emoji(carrier, code)
    assert emoji is not None
    data = "件名".encode("cp932") + code.to_bytes(2, "big")
    raw = mail(
        leaf("text/plain; charset=shift_jis", data + b"\r\n"),
        ("From", sender),
        ("Subject", b"=?shift_jis?B?" + base64.b64encode(data) + b"?="),
    )
    result = run(raw)
    assert result.report.subject == f"件名{emoji}"
    assert body_text(result.message).startswith(f"件名{emoji}\n")
    assert Reason.LOSSY_DECODE not in result.report.reason_codes()
    # Without a carrier the same code is a replacement, reported.
    assert decode_body(data, "shift_jis").text == "件名\ufffd"


def test_a_code_unicode_lists_no_emoji_for_stays_a_reported_replacement() -> None:
    unmapped = next(
        code
        for code in range(0xF340, 0xF7FD)
        if carrier_emoji("au", code) is None and (code & 0xFF) >= 0x40
    )
    data = "件名".encode("cp932") + unmapped.to_bytes(2, "big")
    with preferences(Preferences(carrier="au")):
        decoded = decode_body(data, "shift_jis")
    assert (decoded.text, decoded.lossy) == ("件名\ufffd", True)


@pytest.mark.parametrize("text", ["﨑", "テスト﨑", "﨑 です"])
def test_the_encoder_never_writes_a_lone_shared_code(text: str) -> None:
    assert encode_iso2022jp(text) is None
    policy = Policy(output=OutputPolicy(charset="iso-2022-jp"))
    raw = mail(leaf("text/plain; charset=utf-8", text.encode()))
    result = run(raw, policy)
    assert body_text(result.message) == text + "\n"
    assert result.report.sent_as_utf8 == ["body"]


@pytest.mark.parametrize("text", ["山﨑", "髙﨑", "①山﨑 太郎", "ⅰ﨑"])
def test_the_encoder_writes_shared_codes_beside_kanji_in_one_segment(text: str) -> None:
    data = encode_iso2022jp(text)
    assert data is not None
    assert decode_body(data, "iso-2022-jp").text == text


def test_the_output_report_names_the_character_outside_not_a_kanji_beside_it() -> None:
    policy = Policy(output=OutputPolicy(charset="iso-2022-jp"))
    raw = mail(leaf("text/plain; charset=utf-8", "資料①髙﨑😀".encode()))
    result = run(raw, policy)
    assert any("U+1F600 is not in ISO-2022-JP" in defect for defect in result.report.defects)
    lone = run(mail(leaf("text/plain; charset=utf-8", "資料です。﨑".encode())), policy)
    assert any("au emoji" in defect for defect in lone.report.defects)


# --- au mail in Shift_JIS: the same codes at 0xEB40-0xEEFC ------------------------------------


def sjis(pair: bytes) -> bytes:
    return jis_to_sjis(pair).to_bytes(2, "big")


def test_au_emoji_in_shift_jis_from_an_au_sender_become_unicode_emoji() -> None:
    wrong = []
    with preferences(Preferences(carrier="au")):
        for pair in AU_CODES:
            data = "こんにちは".encode("cp932") + sjis(pair) + "また".encode("cp932")
            for label in ("shift_jis", "windows-31j", None):
                decoded = decode_body(data, label)
                expected = "こんにちは" + (au_mail_emoji(pair) or "") + "また"
                if (decoded.text, decoded.lossy) != (expected, False):
                    wrong.append((pair, label, decoded.text))
    assert wrong == []


def test_a_lone_shared_shift_jis_code_from_an_unknown_sender_is_reported_never_guessed() -> None:
    wrong = []
    for pair, kanji in SHARED.items():
        data = "はい".encode("cp932") + sjis(pair) + b"!"
        decoded = decode_body(data, "shift_jis")
        if decoded.text != "はい\ufffd!" or not decoded.lossy or kanji in decoded.text:
            wrong.append((pair, decoded.text))
    assert wrong == []
    for name in ("髙橋", "山﨑", "神﨑", "髙木"):  # beside a kanji: the kanji of a name
        data = name.encode("cp932")
        assert any(byte in range(0xED, 0xEF) for byte in data[::2])
        named = decode_body(data + "様".encode("cp932"), "shift_jis")
        assert (named.text, named.lossy) == (name + "様", False)


def test_au_only_shift_jis_codes_make_the_shared_codes_emoji_too() -> None:
    au_only = next(pair for pair in AU_CODES if pair[0] in range(0x75, 0x79))
    shared = next(iter(SHARED))
    data = "はい".encode("cp932") + sjis(au_only) + "と".encode("cp932") + sjis(shared)
    decoded = decode_body(data, "shift_jis")
    assert decoded.text == "はい" + str(au_mail_emoji(au_only)) + "と" + str(au_mail_emoji(shared))
    assert not decoded.lossy


def test_an_au_shift_jis_mail_goes_through_the_pipeline_with_its_emoji() -> None:
    pair = next(iter(SHARED))
    body = "了解です".encode("cp932") + sjis(pair) + b"\r\n"
    raw = mail(
        leaf("text/plain; charset=shift_jis", body),
        ("From", b"taro@ezweb.ne.jp"),
        ("To", b"staff@city.example.lg.jp"),
        (
            "Subject",
            b"=?shift_jis?B?" + base64.b64encode("了解".encode("cp932") + sjis(pair)) + b"?=",
        ),
    )
    result = run(raw)
    emoji = str(au_mail_emoji(pair))
    assert body_text(result.message).startswith("了解です" + emoji)
    assert result.report.subject == "了解" + emoji
    assert Reason.LOSSY_DECODE not in result.report.reason_codes()
