"""The ends that are not a delivery: dead letters and delivery-status notices (DSN).

Intent: an acknowledged message is never lost. When it cannot be delivered (refused for good,
its lifetime over, rejected by policy, or its spool file unreadable) it moves to the spool's
``dead`` state for the operator, the quarantine records it, the sender gets a notice (never
the null sender, and only through ``delivery.dsn_relay_host``), and the audit log gets its
line. A notice that cannot be sent is logged and audited, never retried in a loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from gateway.configuration.settings import DeliverySettings
from gateway.delivery.client import send_once
from gateway.delivery.notices import build_dsn
from gateway.delivery.recording import DeliveryRecords
from gateway.evidence.message_record import message_record
from gateway.evidence.ports import AuditPort, QuarantinePort
from gateway.observation.ports import MetricsPort
from gateway.queue.spool import Envelope, Spool
from sanitizers.vocabulary import DeadLetterReason, MessageState

log = logging.getLogger("mukaika.worker")


class Bounces:
    """Dead-letters messages, sends the notices, and writes every end's audit line."""

    def __init__(
        self,
        spool: Spool,
        *,
        delivery: DeliverySettings,
        quarantine: QuarantinePort,
        audit: AuditPort,
        metrics: MetricsPort,
        hostname: str,
    ) -> None:
        self.spool = spool
        self.delivery = delivery
        self.quarantine = quarantine
        # Delivery states for the index, kept while the store is away (shared with delivery).
        self.records = DeliveryRecords(quarantine)
        self.audit = audit
        self.metrics = metrics
        self.hostname = hostname
        self.notice_from = notice_sender(delivery, hostname)
        # Each tenant's LGWAN-side MTA, where its senders' notices go (set by the gateway).
        self.tenant_relays: Mapping[str, tuple[str, int]] = {}

    async def set_aside(self, state: str, queue_id: str) -> None:
        """A spool file that vanished was handled meanwhile (a duplicate job); one that is
        there but unreadable (disk damage) goes to dead/ for the operator, never retried."""
        if not await asyncio.to_thread(self.spool.path(state, queue_id).exists):
            return
        log.error("%s unreadable spool file in %s: moved to dead", queue_id, state)
        await asyncio.to_thread(self.spool.move, queue_id, state, "dead")
        self.metrics.dead_lettered()
        # Its envelope is unreadable, but an acknowledged message still gets its audit line.
        self.record(
            Envelope(queue_id=queue_id, mail_from="", rcpt_tos=()),
            "dead",
            "none",
            f"unreadable spool file in {state}",
        )

    async def dead(
        self,
        envelope: Envelope,
        from_state: str,
        message: bytes,
        failures: dict[str, str],
        reason: DeadLetterReason,
        *,
        tell_sender: bool = True,
    ) -> None:
        """Move a message to dead/ with ``failures`` (recipient: reply) and tell the sender,
        unless ``tell_sender`` is false (the sender failed authentication: a notice would go
        to whoever it forged)."""
        envelope = envelope.with_(failed=tuple((dict(envelope.failed) | failures).items()))
        # A message that was never sanitized is kept without content: the original is in
        # the quarantine, and a dead letter must never be retried as it came in.
        await asyncio.to_thread(self.spool.advance, from_state, envelope, message, "dead")
        await self.records.record(envelope.quarantine_id, MessageState.DEAD)
        self.metrics.dead_lettered()
        if tell_sender:
            dsn = await self.notify(envelope, failures, reason)
        else:
            dsn = "none: the sender failed authentication"
        self.record(envelope, "dead", dsn, error=reason)
        log.warning("%s dead-lettered (%s)", envelope.queue_id, reason)

    async def notify(
        self, envelope: Envelope, failures: dict[str, str], reason: DeadLetterReason
    ) -> str:
        """Send a delivery-status notice; never to the null sender. Returns what happened."""
        if not envelope.mail_from:
            return "none: null sender"
        # An outbound mail's sender is inside: the notice goes back to the LGWAN side.
        host, port = (
            self.tenant_relays.get(
                envelope.tenant, (self.delivery.relay_host, self.delivery.relay_port)
            )
            if envelope.direction == "outbound"
            else (self.delivery.dsn_relay_host, self.delivery.dsn_relay_port)
        )
        if not host:
            return "none: no dsn relay"
        try:
            notice = build_dsn(
                envelope,
                failures,
                reporting_mta=self.hostname,
                from_address=self.notice_from,
                reason=reason,
            )
            await send_once(
                host,
                port,
                "",
                [envelope.mail_from],
                notice,
                self.delivery.timeout_seconds,
            )
        except Exception as exc:  # noqa: BLE001 - any failure is logged and audited
            log.warning(
                "%s delivery-status notice failed: %s", envelope.queue_id, type(exc).__name__
            )
            return "failed"
        return "sent"

    def record(self, envelope: Envelope, state: str, dsn: str, error: str | None = None) -> None:
        """Write the audit line of a message that reached ``state``."""
        self.audit.write(message_record(envelope, state, dsn, error))


def notice_sender(delivery: DeliverySettings, hostname: str) -> str:
    """The From of every mail the gateway writes itself: ``delivery.dsn_from``, else
    MAILER-DAEMON at this host's name."""
    return delivery.dsn_from or f"MAILER-DAEMON@{hostname}"
