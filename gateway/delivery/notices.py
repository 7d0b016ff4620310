"""Messages the gateway writes itself: delivery-status notices and "held" notices.

Intent: tell a sender their mail was not delivered (RFC 3464 report, text only, without the
original content: the gateway never sends the untrusted bytes back out, nor anywhere), and tell
recipients that a message was held when sanitizing kept crashing (no content either: only the
envelope sender, the queue id and the quarantine id). The pipeline writes the notice for its
own ``hold`` verdict; this module covers the case where the pipeline could not run at all.

Envelope addresses are the only outside values used; they come from parsed SMTP commands
and contain no line breaks, and they are written into the text body, never into raw headers
except through :mod:`email`'s header folding.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from gateway.queue.spool import Envelope
from sanitizers.notice import NoticeContext, render_crash
from sanitizers.policy import NoticePolicy


def _stamp(now: float | None) -> str:
    return format_datetime(datetime.fromtimestamp(time.time() if now is None else now, UTC))


def build_dsn(
    envelope: Envelope,
    failures: dict[str, str],
    *,
    reporting_mta: str,
    from_address: str,
    reason: str,
    now: float | None = None,
) -> bytes:
    """A multipart/report delivery-status notice for the failed recipients."""
    received = _stamp(envelope.received_at)
    lines = [
        "お送りいただいたメールは、以下の宛先に配送できませんでした。",
        "Your message could not be delivered to the recipients below.",
        "",
        f"Queue ID: {envelope.queue_id}",
        f"Received: {received}",
        f"Reason: {reason}",
        "",
    ]
    lines += [f"  {rcpt}: {reply}" for rcpt, reply in sorted(failures.items())]
    text = base64.encodebytes(("\n".join(lines) + "\n").encode("utf-8"))
    status = [
        f"Reporting-MTA: dns; {reporting_mta}",
        f"X-Mukaika-Queue-ID: {envelope.queue_id}",
        f"Arrival-Date: {received}",
    ]
    for rcpt, reply in sorted(failures.items()):
        status_code = "5.0.0" if reply.startswith("5") else "4.4.7"
        status += [
            "",
            f"Final-Recipient: rfc822; {rcpt}",
            "Action: failed",
            f"Status: {status_code}",
            f"Diagnostic-Code: smtp; {reply}",
        ]
    boundary = f"=_mukaika_{envelope.queue_id}"
    to = envelope.mail_from if envelope.mail_from.isascii() else "undisclosed-recipients:;"
    head = [
        f"From: {from_address}",
        f"To: {to}",
        "Subject: "
        + Header("Undelivered Mail Returned to Sender / 配送不能通知", "utf-8").encode(),
        f"Date: {_stamp(now)}",
        f"Message-ID: {make_msgid(domain=reporting_mta or None)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
    ]
    tail = [
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        *status,
        "",
        f"--{boundary}--",
        "",
    ]
    crlf = "\r\n"
    return (
        crlf.join(head).encode("ascii", "replace")
        + text.replace(b"\n", b"\r\n")
        + crlf.join(tail).encode("ascii", "replace")
    )


def build_crash_hold_notice(
    envelope: Envelope,
    *,
    from_address: str,
    notice: NoticePolicy | None = None,
    context: NoticeContext | None = None,
    now: float | None = None,
) -> bytes:
    """The text-only notice recipients get instead of a message that could not be sanitized:
    the ``crash_ja.txt`` / ``crash_en.txt`` template (``policy.notice``), times in the
    operator's time zone."""
    text = render_crash(
        notice or NoticePolicy(),
        context or NoticeContext(),
        sender=envelope.mail_from,
        received=datetime.fromtimestamp(envelope.received_at, UTC),
        reference=envelope.quarantine_id,
        queue_id=envelope.queue_id,
    )
    message = EmailMessage(policy=SMTP)
    message["From"] = from_address
    message["To"] = "undisclosed-recipients:;"
    message["Subject"] = "[mukaika] 保留されたメール / Message held"
    message["Date"] = _stamp(now)
    message["Message-ID"] = make_msgid()
    message.set_content(text if text.endswith("\n") else text + "\n", charset="utf-8")
    return message.as_bytes()
