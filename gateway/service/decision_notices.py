"""What a user who asked for a release is told: approved (and what serve made of it) or
denied; in Japanese, then English.

Intent: self-service (a recipient asks in the console, an approver decides) closes the loop by
mail. The notice goes to the requester's addresses in the store (the addresses they read mail
for), through the LGWAN-side MTA (``delivery.relay_host``), from the gateway's notice sender
with the null reverse-path, as the outbound notices do. Only requests decided by someone else
are told (an operator's own release needs no notice). serve sends them: an approval once the
release is carried out (:mod:`.releasing`), a denial when serve's next look finds it; a denial
is first marked told in the store (one winner across nodes), then sent.

Threat model: the notice names the mail by the index's cleaned values (subject, sender,
reference), never its content; the approver's comment is bounded and cleaned by the workflow.
A notice that cannot be sent is logged and audited, never retried in a loop (the console shows
the decision anyway).
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

from gateway.configuration.config import Config
from gateway.delivery.client import send_once
from gateway.evidence.ports import AuditPort
from gateway.evidence.quarantine import QuarantineEntry
from gateway.store import Store
from gateway.store.users import addresses_of
from gateway.store.workflow import Decision
from sanitizers.vocabulary import AuditEvent, RequestKind, RequestState

log = logging.getLogger("mukaika.release")

# What each outcome means for the requester: (subject, Japanese, English).
APPROVED_DONE: Final = (
    "受信許可の申請：承認 / Release request approved",
    "保留されていたメールの受信許可の申請が承認されました。メールは無害化し直して配送されます。",
    "Your request was approved: the mail is sanitized again and delivered to you.",
)
APPROVED_FAILED: Final = (
    "受信許可の申請：承認（配送できず） / Release approved, not delivered",
    "受信許可の申請は承認されましたが、メールを配送できませんでした。"
    "問い合わせ先にご連絡ください。",
    "Your request was approved, but the mail could not be delivered; ask the contact below.",
)
DENIED: Final = (
    "受信許可の申請：否認 / Release request denied",
    "保留されていたメールの受信許可の申請は認められませんでした。メールは配送されません。",
    "Your request was denied: the mail is not delivered.",
)
KINDS: Final = (RequestKind.RELEASE, RequestKind.EXCEPTION)


def is_request(decision: Decision) -> bool:
    """Whether ``decision`` was asked for by one user and decided by another (a notice)."""
    return decision.kind in KINDS and decision.decided_by not in (None, decision.requested_by)


def shown_time(moment: datetime, timezone: str) -> str:
    """``moment`` in the display time zone, to the minute."""
    zone = ZoneInfo(timezone) if timezone else None
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z").strip()


def build_decision_notice(
    said: tuple[str, str, str],
    decision: Decision,
    entry: QuarantineEntry,
    *,
    to: Sequence[str],
    config: Config,
    from_address: str,
) -> bytes:
    """The notice to the requester of ``decision`` on ``entry``."""
    subject, ja, en = said
    received = shown_time(entry.received_at, config.service.display_timezone)
    page = config.console.public_url.rstrip("/")
    contact = config.console.contact
    comment = decision.decision_reason or ""
    lines = [
        ja,
        "",
        f"件名：{entry.subject or '（なし）'}",
        f"差出人：{entry.mail_from or '<>'}",
        f"受付日時：{received}",
        f"参照番号：{entry.id}",
        f"申請理由：{decision.reason}",
    ]
    if comment:
        lines.append(f"承認者のコメント：{comment}")
    if page:
        lines.append(f"確認：{page}/mail/{entry.id}")
    lines.append(f"問い合わせ先：{contact or '情報システム担当'}")
    lines += [
        "",
        "----",
        en,
        "",
        f"Subject: {entry.subject or '(none)'}",
        f"From: {entry.mail_from or '<>'}",
        f"Received: {received}",
        f"Reference: {entry.id}",
    ]
    if comment:
        lines.append(f"Approver's comment: {comment}")
    message = EmailMessage(policy=SMTP)
    message["From"] = from_address
    message["To"] = ", ".join(to) if all(a.isascii() for a in to) else "undisclosed-recipients:;"
    message["Subject"] = f"[mukaika] {subject}"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid()
    message["Auto-Submitted"] = "auto-generated"
    message.set_content("\n".join(lines) + "\n", charset="utf-8")
    return message.as_bytes()


class DecisionNotices:
    """Tells requesters what became of their requests. Runs in serve only."""

    def __init__(self, config: Config, store: Store, audit: AuditPort, from_address: str) -> None:
        self.config = config
        self.store = store
        self.audit = audit
        self.from_address = from_address

    async def tell(self, decision: Decision, entry: QuarantineEntry) -> str:
        """Send the notice of ``decision`` (approved and carried out, or denied) to its
        requester; what happened, also as an audit line."""
        if not is_request(decision):
            return "none: not a request"
        if decision.state is RequestState.DENIED:
            said = DENIED
        elif decision.state is RequestState.DONE:
            said = APPROVED_DONE
        else:
            said = APPROVED_FAILED
        to = addresses_of(self.store, decision.requested_by)
        if not to:
            told = "none: the requester has no address"
        else:
            notice = build_decision_notice(
                said,
                decision,
                entry,
                to=to,
                config=self.config,
                from_address=self.from_address,
            )
            delivery = self.config.delivery
            try:
                await send_once(
                    delivery.relay_host,
                    delivery.relay_port,
                    "",
                    list(to),
                    notice,
                    delivery.timeout_seconds,
                )
            except Exception as exc:  # noqa: BLE001 - any failure is logged and audited
                log.warning("%s: notice to %s failed: %s", entry.id, decision.requested_by, exc)
                told = "failed"
            else:
                told = "sent"
        self.audit.write(
            {
                "event": AuditEvent.NOTICE,
                "quarantine_id": entry.id,
                "request": decision.id,
                "user": decision.requested_by,
                "state": str(decision.state),
                "outcome": f"requester told: {told}",
            }
        )
        return told
