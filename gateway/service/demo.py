"""The ``--demo`` pieces: a stand-in LGWAN-side MTA writing to a Maildir, and a test sender.

Intent: a newcomer runs one command on a fresh machine, sends a Japanese HTML mail with an
attachment, and reads what the LGWAN side would get, without any outside server. The
stand-in listens on 127.0.0.1 only and trusts nothing it receives beyond writing it to disk.
"""

from __future__ import annotations

import asyncio
import email
import mailbox
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.configuration.config import Config


class MaildirHandler:
    """Delivers every message it is given into one Maildir."""

    def __init__(self, directory: Path) -> None:
        self.maildir = mailbox.Maildir(directory, create=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        key = await asyncio.to_thread(self.maildir.add, content)
        print(f"demo LGWAN MTA: delivered to Maildir as {key}", file=sys.stderr, flush=True)
        try:
            print(preview(content), file=sys.stderr, flush=True)
        except Exception as exc:  # noqa: BLE001 - a preview must never fail a delivery
            print(f"  (no preview: {type(exc).__name__})", file=sys.stderr, flush=True)
        return "250 2.0.0 OK delivered"


def preview(content: bytes, max_lines: int = 20) -> str:
    """Subject and the start of the text, decoded, for reading in the terminal."""
    parsed = email.message_from_bytes(content, policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    lines = [f"  Subject: {parsed.get('Subject', '')}"]
    lines += [f"  | {line}" for line in str(text).splitlines()[:max_lines]]
    return "\n".join(lines)


@dataclass
class DemoRelay:
    server: asyncio.Server
    host: str
    port: int
    directory: Path
    sessions: list[SMTP]

    async def stop(self) -> None:
        self.server.close()
        for session in self.sessions:
            if session.transport is not None:
                session.transport.close()
        await asyncio.sleep(0.01)
        await self.server.wait_closed()


async def start_demo_relay(directory: Path, host: str = "127.0.0.1") -> DemoRelay:
    directory.parent.mkdir(parents=True, exist_ok=True)
    handler = MaildirHandler(directory)
    sessions: list[SMTP] = []

    def factory() -> SMTP:
        session = SMTP(handler, hostname="lgwan-demo", enable_SMTPUTF8=True)
        sessions[:] = [s for s in sessions if s.transport is not None]
        sessions.append(session)
        return session

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host, 0)
    sockname: Any = server.sockets[0].getsockname()
    return DemoRelay(server, str(sockname[0]), int(sockname[1]), directory, sessions)


def sample_message(sender: str, recipient: str) -> bytes:
    """A Japanese HTML mail with a text alternative and an attachment."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = f"テスト送信者 <{sender}>"
    message["To"] = recipient
    message["Subject"] = "【テスト】無害化ゲートウェイの確認"
    message.set_content("こんにちは。無害化のテストです。\n① ㈱ ～\n")
    message.add_alternative(
        "<html><body><p>こんにちは。<b>無害化</b>のテストです。</p>"
        '<script>alert("x")</script><a href="https://example.com/">リンク</a></body></html>',
        subtype="html",
    )
    message.add_attachment(
        "添付ファイルの中身\n".encode(),
        maintype="application",
        subtype="octet-stream",
        filename="資料.txt",
    )
    return message.as_bytes()


async def send_message(
    server: tuple[str, int], sender: str, recipients: list[str], message: bytes
) -> tuple[dict[str, str], str]:
    """Send ``message``; (refused recipient -> reply, the server's final reply). Raises
    aiosmtplib's errors (SMTPException; the connection ones are OSErrors too)."""
    refused, reply = await aiosmtplib.send(
        message,
        sender=sender,
        recipients=recipients,
        hostname=server[0],
        port=server[1],
        start_tls=False,
        timeout=30,
    )
    return {rcpt: f"{code} {text}" for rcpt, (code, text) in refused.items()}, reply


# What sending can raise: the server's answers, connection failures, a bad address.
SEND_ERRORS = (aiosmtplib.SMTPException, OSError, ValueError)


def send_failure(exc: Exception, server: tuple[str, int]) -> str:
    """One line: what the server answered, or why there was no answer."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(f"{e.recipient}: {e.code} {e.message}" for e in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPConnectError | ConnectionError | TimeoutError):
        return f"cannot connect to {server[0]}:{server[1]}: {exc}"
    return str(exc) or type(exc).__name__


def instructions(host: str, port: int, config: Config) -> str:
    domain = (config.smtp.accept_domains or ("example.lg.jp",))[0]
    maildir = Path(config.service.data_dir) / "demo-maildir" / "new"
    return f"""
mukaika demo: the gateway listens on {host}:{port}; accepted domain: {domain}
  delivered (sanitized) mail is written to {maildir}/

Send a Japanese HTML test mail with an attachment (in another terminal):
  mukaika send --server {host}:{port} --to staff@{domain}
or with swaks:
  swaks --server {host}:{port} --to staff@{domain} --from you@example.com
or any .eml file:
  mukaika send --server {host}:{port} --to staff@{domain} some.eml

Each delivered mail's subject and text are shown here; the files are in {maildir}/
Stop with Ctrl-C.
"""
