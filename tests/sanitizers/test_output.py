"""No silent change of output (issue 12, class 8): a body that cannot go out in ISO-2022-JP
under that policy is reported (reason ``output_utf8``, in the report and the notice), and
re-encoded text attachments go out as text/plain or text/csv with their charset."""

from __future__ import annotations

import base64
from email import message_from_bytes
from email.message import Message
from email.policy import compat32

import pytest

from sanitizers.charsets import encode_iso2022jp
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import NoticePolicy, OutputPolicy, Policy
from sanitizers.vocabulary import Action, Reason, Verdict
from tests.mailfactory import body_text, leaf, mail, multipart, parse

JIS_POLICY = Policy(output=OutputPolicy(charset="iso-2022-jp"))
JAPANESE = "会議の資料をお送りします。①㈱～髙﨑"
# Characters outside ISO-2022-JP (CP50221): a JIS X 0213 kanji, an emoji, Hangul, a wave
# dash that CP932 writes one way only.
OUTSIDE = ["𠮷", "😀", "한", "\u301c"]


def text_part(message: Message) -> Message:
    return next(p for p in message.walk() if p.get_content_type() == "text/plain")


@pytest.mark.parametrize("outside", OUTSIDE)
@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_body_that_needs_utf8_is_reported(outside: str, language: str) -> None:
    policy = JIS_POLICY.model_copy(update={"notice": NoticePolicy(language=language)})
    raw = mail(leaf("text/plain; charset=utf-8", f"{JAPANESE}{outside}".encode()))
    result = sanitize_message(raw, policy)
    assert result.verdict is Verdict.DELIVER
    assert Reason.OUTPUT_UTF8 in result.report.reasons
    assert any(f"U+{ord(outside):04X}" in defect for defect in result.report.defects)
    out = parse(result.message)
    assert text_part(out).get_content_charset() == "utf-8"
    assert "output_utf8" in str(out["X-Mukaika-Summary"])
    # Nothing else changed: no notice of its own (a second pass would add another).
    assert body_text(result.message) == f"{JAPANESE}{outside}\n"
    again = sanitize_message(result.message, policy)
    assert body_text(again.message) == body_text(result.message)


@pytest.mark.parametrize("outside", OUTSIDE)
@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_notice_says_the_body_went_out_as_utf8(outside: str, language: str) -> None:
    policy = JIS_POLICY.model_copy(update={"notice": NoticePolicy(language=language)})
    html = leaf("text/html; charset=utf-8", f"<p>{JAPANESE}{outside}</p>".encode())
    result = sanitize_message(mail(html), policy)
    body = body_text(result.message)
    assert f"{JAPANESE}{outside}" in body
    label = "UTF-8 で送りました" if language == "ja" else "sent as UTF-8"
    assert label in body
    again = sanitize_message(result.message, policy)
    assert body_text(again.message) == body


@pytest.mark.parametrize("charset", ["iso-2022-jp", "shift_jis", "utf-8"])
def test_a_body_that_fits_is_sent_in_iso2022jp_without_a_word(charset: str) -> None:
    text = JAPANESE + "ｶﾀｶﾅ"
    codec = "cp932" if charset == "shift_jis" else charset
    encoded = encode_iso2022jp(text) if charset == "iso-2022-jp" else text.encode(codec)
    assert encoded is not None
    raw = mail(leaf(f"text/plain; charset={charset}", encoded))
    result = sanitize_message(raw, JIS_POLICY)
    assert Reason.OUTPUT_UTF8 not in result.report.reason_codes()
    assert text_part(parse(result.message)).get_content_charset() == "iso-2022-jp"
    assert "UTF-8" not in body_text(result.message)


def test_the_utf8_policy_never_reports_it() -> None:
    raw = mail(leaf("text/plain; charset=utf-8", "😀".encode()))
    assert Reason.OUTPUT_UTF8 not in sanitize_message(raw, Policy()).report.reasons


def test_a_file_name_in_the_notice_that_needs_utf8_is_reported() -> None:
    name = "資料😀.exe"
    attachment = leaf(
        "application/octet-stream",
        b"MZ" + b"\0" * 200,
        cte="base64",
        extra=[("Content-Disposition", f"attachment; filename*=UTF-8''{_quote(name)}")],
    )
    raw = mail(multipart("mixed", [leaf("text/plain; charset=utf-8", "本文".encode()), attachment]))
    result = sanitize_message(raw, JIS_POLICY)
    assert Reason.OUTPUT_UTF8 in result.report.reasons
    body = body_text(result.message)
    assert name in body
    assert "UTF-8 で送りました" in body


def test_a_held_notice_that_needs_utf8_is_reported() -> None:
    policy = JIS_POLICY.model_copy(update={"hold_reasons": frozenset({Reason.EXECUTABLE})})
    attachment = leaf(
        "application/octet-stream",
        b"MZ" + b"\0" * 200,
        cte="base64",
        extra=[("Content-Disposition", "attachment; filename*=UTF-8''%F0%9F%98%80.exe")],
    )
    raw = mail(multipart("mixed", [leaf("text/plain; charset=utf-8", "本文".encode()), attachment]))
    result = sanitize_message(raw, policy)
    assert result.verdict is Verdict.HOLD
    assert Reason.OUTPUT_UTF8 in result.report.reasons


def _quote(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


@pytest.mark.parametrize(
    ("name", "charset", "expected_type"),
    [
        ("名簿.csv", "euc-jp", "text/csv"),
        ("議事録.txt", "shift_jis", "text/plain"),
        ("連絡.txt", "iso-2022-jp", "text/plain"),
        ("memo.txt", "utf-8", "text/plain"),
    ],
)
def test_re_encoded_text_attachments_say_they_are_text(
    name: str, charset: str, expected_type: str
) -> None:
    content = "氏名,所属\r\n山田太郎,市民課\r\n"
    attachment = leaf(
        f"text/plain; charset={charset}",
        content.encode(charset),
        cte="base64",
        extra=[("Content-Disposition", f"attachment; filename*=UTF-8''{_quote(name)}")],
    )
    raw = mail(multipart("mixed", [leaf("text/plain; charset=utf-8", "本文".encode()), attachment]))
    result = sanitize_message(raw, Policy())
    part = result.report.parts[-1]
    assert part.action is Action.SANITIZED
    files = [p for p in parse(result.message).walk() if p.get_filename()]
    assert len(files) == 1
    assert files[0].get_content_type() == expected_type
    assert files[0].get_content_charset() == "utf-8"
    assert content in files[0].get_payload(decode=True).decode("utf-8-sig")


def _headed(subject: bytes, from_: bytes, body: bytes = "本文です。".encode()) -> bytes:
    return mail(
        leaf("text/plain; charset=utf-8", body),
        ("From", from_),
        ("To", b"staff@city.example.lg.jp"),
        ("Subject", subject),
    )


def _utf8_word(text: str) -> bytes:
    return b"=?UTF-8?B?" + base64.b64encode(text.encode()) + b"?="


@pytest.mark.parametrize("outside", OUTSIDE)
@pytest.mark.parametrize(
    ("header", "expected_place"),
    [("Subject", "Subject"), ("From", "From")],
)
def test_a_header_that_needs_utf8_is_reported(
    outside: str, header: str, expected_place: str
) -> None:
    text = f"会議{outside}のお知らせ"
    subject = _utf8_word(text) if header == "Subject" else "件名".encode("iso2022_jp")
    sender = _utf8_word(text) + b" <a@example.jp>" if header == "From" else b"a@example.jp"
    result = sanitize_message(_headed(subject, sender), JIS_POLICY)
    assert Reason.OUTPUT_UTF8 in result.report.reasons
    assert result.report.sent_as_utf8 == [expected_place]
    assert any(
        d.startswith(f"output_utf8: {expected_place}: U+{ord(outside):04X}")
        for d in result.report.defects
    )
    out = message_from_bytes(result.message, policy=compat32)
    assert "=?UTF-8?B?" in str(out[header])
    # The body fitted: it still goes out in ISO-2022-JP.
    assert text_part(out).get_content_charset() == "iso-2022-jp"
    again = sanitize_message(result.message, JIS_POLICY)
    assert body_text(again.message) == body_text(result.message)


@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_notice_names_each_place_that_went_out_as_utf8(language: str) -> None:
    policy = JIS_POLICY.model_copy(update={"notice": NoticePolicy(language=language, always=True)})
    sender = _utf8_word("山田𠮷") + b" <a@example.jp>"
    raw = _headed(_utf8_word("件名😀"), sender, "本文😀".encode())
    result = sanitize_message(raw, policy)
    assert result.report.sent_as_utf8 == ["From", "Subject", "body"]
    body = body_text(result.message)
    expected = (
        "■ 差出人の名前・件名・本文: ISO-2022-JP で表せない文字を含むため、UTF-8 で送りました"
        if language == "ja"
        else "■ sender's name, Subject, body: sent as UTF-8"
    )
    assert expected in body


def test_headers_that_fit_are_not_reported() -> None:
    raw = _headed(_utf8_word("会議①㈱～髙﨑ｶﾀｶﾅ"), _utf8_word("山田　太郎") + b" <a@example.jp>")
    result = sanitize_message(raw, JIS_POLICY)
    assert Reason.OUTPUT_UTF8 not in result.report.reasons
    assert result.report.sent_as_utf8 == []
    subject = str(message_from_bytes(result.message, policy=compat32)["Subject"])
    assert "=?ISO-2022-JP?B?" in subject


def test_an_operator_subject_tag_outside_iso2022jp_is_reported() -> None:
    policy = JIS_POLICY.model_copy(
        update={"output": OutputPolicy(charset="iso-2022-jp", subject_tag="[外部👀]")}
    )
    result = sanitize_message(_headed(b"plain", b"a@example.jp"), policy)
    assert result.report.sent_as_utf8 == ["Subject"]
