"""What the sender of an outbound mail is told: held for approval, refused, denied, expired,
cancelled or approved; in Japanese, then English.

The notice goes back to the LGWAN side, where the sender's mailbox is: through the LGWAN-side
MTA (``delivery.relay_host``), from the null sender, never to the Internet. It names the
mail (its Subject, recipients, time and reference) and the reasons by their labels; it never
quotes the content (a My Number found is not repeated). A notice that cannot be sent is
logged and recorded in the audit line, never retried in a loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Final
from zoneinfo import ZoneInfo

from gateway.configuration.config import Config, tenants_of
from gateway.delivery.client import send_once
from sanitizers.headers import RebuiltHeaders, rebuild_headers
from sanitizers.mime import parse_headers_only
from sanitizers.policy import Limits
from sanitizers.safetext import display_text
from sanitizers.vocabulary import OutboundEvent, Reason, label

log = logging.getLogger("mukaika.outbound")

# What each event means for the sender: (Japanese, English).
_SAID: Final[dict[OutboundEvent, tuple[str, str]]] = {
    OutboundEvent.HELD: (
        "送信されたメールは、承認者（上長）の承認を待つため保留されています。"
        "承認されると送信されます。",
        "Your mail is held until an approver allows it; it is sent once approved.",
    ),
    OutboundEvent.RATE_LIMITED: (
        "短時間に多くのメールが送信されたため、送信されたメールは保留されています。"
        "承認されると送信されます。",
        "You sent more mail than the sending limit allows; your mail is held until an "
        "approver allows it.",
    ),
    OutboundEvent.REJECTED: (
        "送信されたメールは、送信の規則により送信されませんでした。",
        "Your mail was not sent: the sending rules refuse it.",
    ),
    OutboundEvent.DENIED: (
        "送信されたメールは、承認者により送信が認められませんでした。",
        "Your mail was not sent: an approver refused it.",
    ),
    OutboundEvent.CANCELLED: (
        "送信されたメールの送信を取り消しました。宛先には届いていません。",
        "Your mail was cancelled before it was sent; nobody received it.",
    ),
    OutboundEvent.APPROVED: (
        "承認者が送信を承認したため、メールを送信しました。",
        "An approver allowed your mail; it has been sent.",
    ),
}
_SUBJECT: Final[dict[OutboundEvent, str]] = {
    OutboundEvent.HELD: "送信メールの保留 / Outbound mail held",
    OutboundEvent.RATE_LIMITED: "送信メールの保留 / Outbound mail held",
    OutboundEvent.REJECTED: "送信メールの拒否 / Outbound mail refused",
    OutboundEvent.DENIED: "送信メールの否認 / Outbound mail not approved",
    OutboundEvent.CANCELLED: "送信の取り消し / Outbound mail cancelled",
    OutboundEvent.APPROVED: "送信メールの承認 / Outbound mail approved",
}


def shown_headers(untrusted_raw: bytes) -> RebuiltHeaders:
    """Subject, From and Message-ID of a mail, decoded, bounded and made safe to show (what
    the notices and the quarantine index show); empty when they cannot be read."""
    try:
        return rebuild_headers(
            parse_headers_only(untrusted_raw, Limits()), ("Subject", "From", "Message-ID")
        )
    except Exception:  # noqa: BLE001 - a notice or an index row never fails for a header
        return RebuiltHeaders()


def subject_of(untrusted_raw: bytes) -> str:
    """The decoded Subject of a mail (bounded and made safe to show), "" if none."""
    return display_text(shown_headers(untrusted_raw).subject or "", 200)


def build_notice(
    event: OutboundEvent,
    *,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    received_at: float,
    reference: str,
    reasons: Sequence[Reason] = (),
    comment: str = "",
    timezone: str = "",
    from_address: str,
) -> bytes:
    """The notice to ``sender`` about one outbound mail."""
    zone = ZoneInfo(timezone) if timezone else None
    when = datetime.fromtimestamp(received_at, UTC).astimezone(zone)
    shown_time = when.strftime("%Y-%m-%d %H:%M %Z").strip()
    ja, en = _SAID[event]
    shown_to = ", ".join(list(recipients)[:20]) + (" …" if len(recipients) > 20 else "")
    lines = [
        ja,
        "",
        f"件名：{subject or '（なし）'}",
        f"宛先：{shown_to}",
        f"受付日時：{shown_time}",
        f"参照番号：{reference}",
    ]
    if reasons:
        lines += ["理由："] + [f"  ・{label(reason, 'ja')}" for reason in reasons]
    if comment:
        lines.append(f"承認者のコメント：{comment}")
    lines += [
        "",
        "----",
        en,
        "",
        f"Subject: {subject or '(none)'}",
        f"To: {shown_to}",
        f"Received: {shown_time}",
        f"Reference: {reference}",
    ]
    if reasons:
        lines += ["Reasons:"] + [f"  - {label(reason, 'en')}" for reason in reasons]
    if comment:
        lines.append(f"Approver's comment: {comment}")
    message = EmailMessage(policy=SMTP)
    message["From"] = from_address
    message["To"] = sender if sender.isascii() else "undisclosed-recipients:;"
    message["Subject"] = f"[mukaika] {_SUBJECT[event]}"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid()
    message["Auto-Submitted"] = "auto-replied"
    message.set_content("\n".join(lines) + "\n", charset="utf-8")
    return message.as_bytes()


async def tell_sender(
    config: Config,
    event: OutboundEvent,
    *,
    sender: str,
    recipients: Sequence[str],
    untrusted_raw: bytes,
    received_at: float,
    reference: str,
    reasons: Sequence[Reason] = (),
    comment: str = "",
    from_address: str,
) -> str:
    """Send the notice (``outbound.notify_sender``) from ``from_address`` (the gateway's
    notices' sender: ``delivery.dsn_from`` or MAILER-DAEMON); what happened, for the audit."""
    tenants = tenants_of(config)
    tenant = tenants.tenant_of(sender)
    if not tenants.outbound(tenant).notify_sender:
        return "none: notify_sender is off"
    if not sender:
        return "none: null sender"
    delivery = config.delivery
    # Back through the sender's own LGWAN-side MTA: its tenant's, when it has one.
    host, port = tenants.relay(tenant) or (
        delivery.relay_host,
        delivery.relay_port,
    )
    notice = build_notice(
        event,
        sender=sender,
        recipients=recipients,
        subject=subject_of(untrusted_raw),
        received_at=received_at,
        reference=reference,
        reasons=reasons,
        comment=comment,
        timezone=config.service.display_timezone,
        from_address=from_address,
    )
    try:
        await send_once(
            host,
            port,
            "",
            [sender],
            notice,
            delivery.timeout_seconds,
        )
    except Exception as exc:  # noqa: BLE001 - any failure is logged and audited
        log.warning("%s notice to the sender failed: %s", reference, type(exc).__name__)
        return "failed"
    return "sent"
