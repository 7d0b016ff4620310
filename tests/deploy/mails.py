"""Test mail and process helpers shared by the deployment tests."""

from __future__ import annotations

import contextlib
import email.policy
import socket
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import TypeVar

from tests.sanitizers.cdr.office_fixtures import docm_with_vba

BODY_JA = "お世話になっております。来週の会議資料を送付します。"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, log: Callable[[], str]) -> T:
    """Poll ``probe`` every 50 ms until it returns something, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{log()}")


def smtp_banner(port: int) -> bool | None:
    """True when something on 127.0.0.1:port greets with 220, else None."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", port), timeout=1) as sock,
    ):
        sock.settimeout(2)
        if sock.recv(4).startswith(b"220"):
            return True
    return None


def japanese_html_mail(to: str, attachments: list[tuple[str, str, bytes]] | None = None) -> bytes:
    """A Japanese HTML mail (UTF-8) with attachments given as (file name, MIME type, data);
    by default one macro-enabled Word document named 会議資料.docm."""
    if attachments is None:
        attachments = [
            ("会議資料.docm", "application/vnd.ms-word.document.macroEnabled.12", docm_with_vba())
        ]
    message = EmailMessage()
    message["From"] = "山田 太郎 <taro@example.com>"
    message["To"] = f"情報政策課 <{to}>"
    message["Subject"] = "会議資料の送付"
    message["Message-ID"] = "<deploy-test@example.com>"
    message.set_content(
        f"<html><body><p>{BODY_JA}</p><p><b>ご確認ください。</b></p></body></html>",
        subtype="html",
        charset="utf-8",
    )
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/", 1)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=email.policy.SMTP)
