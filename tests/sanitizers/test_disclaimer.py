"""The optional disclaimer: appended only where the sender's bytes need no re-encoding."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

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


def _inserted(out: bytes, raw: bytes, newline: bytes = b"\n") -> None:
    """``out`` is ``raw`` with the disclaimer and its line breaks inserted at one place."""
    text = TEXT.replace("\n", newline.decode()).encode()
    at = out.index(text)
    assert out[at - len(newline) : at] == newline
    assert out[: at - len(newline)] + out[at + len(text) + len(newline) :] == raw


def _alternative() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "a@city.example.lg.jp"
    message.set_content("本文です。\n", cte="8bit")
    message.add_alternative("<p>本文です。</p>", subtype="html", cte="quoted-printable")
    return message


def test_the_text_alternative_takes_it_and_the_html_stays() -> None:
    raw = _alternative().as_bytes()
    out, appended = append_disclaimer(raw, TEXT)
    assert appended
    _inserted(out, raw)
    parsed = message_from_bytes(out, policy=default)
    assert isinstance(parsed, EmailMessage)
    plain, html = (part.get_content() for part in parsed.iter_parts())
    assert plain == "本文です。\n\n" + TEXT + "\n"
    assert html == "<p>本文です。</p>\n"


def test_the_text_before_the_attachments_takes_it() -> None:
    message = _alternative()
    pdf = b"%PDF-1.4 binary \x00\xff"
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="a.pdf")
    raw = message.as_bytes()  # mixed: (alternative: text, html), pdf
    out, appended = append_disclaimer(raw, TEXT)
    assert appended
    parsed = message_from_bytes(out, policy=default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(("plain",))
    assert body is not None
    assert body.get_content().endswith(TEXT + "\n")
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_content() == pdf
    crlf = raw.replace(b"\n", b"\r\n")  # the same with CRLF line ends (as on the wire)
    out, appended = append_disclaimer(crlf, TEXT)
    assert appended
    _inserted(out, crlf, b"\r\n")


def _mixed(first: EmailMessage) -> bytes:
    message = EmailMessage()
    message["From"] = "a@city.example.lg.jp"
    message.make_mixed()
    message.attach(first)
    message.add_attachment(b"x", maintype="application", subtype="octet-stream", filename="x")
    return message.as_bytes()


def _part(content: str, subtype: str = "plain", cte: str = "8bit") -> EmailMessage:
    part = EmailMessage()
    part.set_content(content, subtype=subtype, cte=cte)
    return part


@pytest.mark.parametrize(
    "raw",
    [
        # HTML only, single or first in a mixed.
        _part("<p>本文</p>", "html").as_bytes(),
        _mixed(_part("<p>本文</p>", "html")),
        # A text part that must be re-encoded to take it.
        _mixed(_part("本文", cte="base64")),
        _mixed(_part("本文", cte="quoted-printable")),
        # An attachment first: the text is not where mailers put it.
        _mixed(_part("x", "csv")),
        # No header end; a multipart without its boundary parameter or closing delimiter.
        b"no header end",
        b"Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\ntext\r\n--b--\r\n",
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\ntext\r\n',
    ],
)
def test_left_alone_where_the_text_is_not_plain_or_not_found(raw: bytes) -> None:
    assert append_disclaimer(raw, TEXT) == (raw, False)


def test_nesting_deeper_than_the_bound_is_left_alone() -> None:
    inner = EmailMessage()
    inner.make_mixed()
    inner.attach(_part("本文"))
    deeper = EmailMessage()
    deeper.make_mixed()
    deeper.attach(inner)
    assert append_disclaimer(_mixed(inner), TEXT)[1]  # mixed → mixed → text: within the bound
    raw = _mixed(deeper)
    assert append_disclaimer(raw, TEXT) == (raw, False)
