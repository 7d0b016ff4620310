"""Build raw test mail in code, byte by byte, so hostile shapes can be written exactly."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from email import message_from_bytes
from email.message import Message
from email.policy import default

CRLF = b"\r\n"

# "①㈱～" in ISO-2022-JP as Japanese Windows mailers write it (NEC row 13 and 0x2141).
ISO2022JP_CP932_BYTES = b"\x1b$B-!-j!A\x1b(B"
ISO2022JP_CP932_TEXT = "①㈱～"


def headers(*pairs: tuple[str, str | bytes]) -> bytes:
    lines = []
    for name, value in pairs:
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        lines.append(name.encode("ascii") + b": " + raw)
    return CRLF.join(lines) + CRLF


def leaf(
    content_type: str,
    body: bytes,
    *,
    cte: str | None = None,
    extra: Sequence[tuple[str, str | bytes]] = (),
) -> bytes:
    """A MIME part (headers + body); ``cte`` of base64 encodes the body for you."""
    pairs: list[tuple[str, str | bytes]] = [("Content-Type", content_type), *extra]
    if cte == "base64":
        body = base64.encodebytes(body).replace(b"\n", CRLF)
    if cte:
        pairs.append(("Content-Transfer-Encoding", cte))
    return headers(*pairs) + CRLF + body


def multipart(subtype: str, parts: Sequence[bytes], boundary: str = "BOUNDARY") -> bytes:
    out = headers(("Content-Type", f'multipart/{subtype}; boundary="{boundary}"')) + CRLF
    for part in parts:
        out += b"--" + boundary.encode() + CRLF + part + CRLF
    return out + b"--" + boundary.encode() + b"--" + CRLF


def mail(body_part: bytes, *pairs: tuple[str, str | bytes]) -> bytes:
    """A whole message: top-level headers, then a part made by ``leaf`` or ``multipart``."""
    top = pairs or (
        ("From", "Sender <sender@example.jp>"),
        ("To", "staff@city.example.lg.jp"),
        ("Subject", "test"),
        ("Date", "Mon, 02 Nov 2026 10:00:00 +0900"),
        ("Message-ID", "<t1@example.jp>"),
    )
    return headers(*top, ("MIME-Version", "1.0")) + body_part


def text_mail(text: str, charset: str = "utf-8", *pairs: tuple[str, str | bytes]) -> bytes:
    return mail(leaf(f"text/plain; charset={charset}", text.encode(charset)), *pairs)


def parse(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=default)


def body_text(raw: bytes) -> str:
    """The decoded text of the rebuilt message's text/plain part."""
    message = parse(raw)
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]
    raise AssertionError("no text/plain part")
