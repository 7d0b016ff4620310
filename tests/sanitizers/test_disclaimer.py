"""The optional disclaimer: appended only where the sender's bytes need no re-encoding."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage

import pytest

from sanitizers.disclaimer import append_disclaimer

TEXT = "このメールは○○市から送信されました。\n誤って届いた場合は削除してください。"


def _mail(body: str, charset: str, cte: str | None) -> bytes:
    head = "From: a@city.example.lg.jp\r\nSubject: x\r\n"
    head += f"Content-Type: text/plain; charset={charset}\r\n"
    if cte:
        head += f"Content-Transfer-Encoding: {cte}\r\n"
    return head.encode() + b"\r\n" + body.encode(charset)


@pytest.mark.parametrize(
    ("charset", "cte"), [("iso-2022-jp", "7bit"), ("utf-8", "8bit"), ("iso-2022-jp", None)]
)
def test_appended_after_the_body_in_its_own_charset(charset: str, cte: str | None) -> None:
    raw = _mail("本文です。①㈱\r\n" if charset == "utf-8" else "本文です。\r\n", charset, cte)
    out, appended = append_disclaimer(raw, TEXT)
    assert appended
    assert out.startswith(raw)  # the sender's bytes unchanged
    parsed = message_from_bytes(out)
    payload = parsed.get_payload(decode=True)
    assert isinstance(payload, bytes)
    text = payload.decode(charset)
    assert text.endswith("誤って届いた場合は削除してください。\r\n")
    assert "本文です。" in text


@pytest.mark.parametrize(
    "raw",
    [
        _mail("本文", "utf-8", "base64"),
        _mail("本文", "utf-8", "quoted-printable"),
        _mail("本文", "shift_jis", "8bit"),
        _mail("body", "us-ascii", "7bit"),  # the Japanese text does not fit
        _mail("本文", "utf-8", "7bit"),  # 8-bit text would be added to a 7bit part
    ],
)
def test_left_alone_where_it_would_need_re_encoding(raw: bytes) -> None:
    assert append_disclaimer(raw, TEXT) == (raw, False)


def test_multipart_and_html_are_left_alone() -> None:
    message = EmailMessage()
    message["From"] = "a@city.example.lg.jp"
    message.set_content("本文")
    message.add_alternative("<p>本文</p>", subtype="html")
    raw = message.as_bytes()
    assert append_disclaimer(raw, TEXT) == (raw, False)
    assert append_disclaimer(b"no header end", TEXT) == (b"no header end", False)
    assert append_disclaimer(raw, "") == (raw, False)
