"""Delivering a sanitized message: one attempt, then done, retried later, or dead.

Intent: a recipient counts as delivered only on the next hop's 2xx. Per attempt::

    outgoing ─ deliver ─┬─ all done ───────────▶ delivered (DSN for recipients that failed)
                        ├─ 4xx / no connection ─▶ outgoing, retried with backoff
                        └─ 5xx or lifetime over ▶ dead + DSN

The backoff grows from ``delivery.retry_initial_seconds`` by ``retry_multiplier`` up to
``retry_max_seconds``; after ``delivery.lifetime_seconds`` since receipt a temporary failure
is final. Each attempt is recorded in the envelope (and so in the audit line).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.configuration.settings import DeliverySettings
from gateway.delivery.bounces import Bounces
from gateway.delivery.client import Deliverer, Outcome, Unrouted
from gateway.evidence.ports import QuarantinePort
from gateway.observation.ports import MetricsPort
from gateway.queue.scheduler import Scheduler
from gateway.queue.spool import Envelope, Spool, SpoolError
from sanitizers.vocabulary import DeadLetterReason, MessageState, OutboundEvent, Verdict

log = logging.getLogger("mukaika.worker")


class Delivering:
    """Works on messages in the spool's ``outgoing`` state."""

    def __init__(
        self,
        spool: Spool,
        deliverer: Deliverer,
        scheduler: Scheduler,
        bounces: Bounces,
        *,
        delivery: DeliverySettings,
        quarantine: QuarantinePort,
        metrics: MetricsPort,
        clock: Callable[[], float] = time.time,
        route: Callable[[Envelope], Deliverer] | None = None,
        tenants: Mapping[str, Deliverer] | None = None,
    ) -> None:
        """``route``: the deliverer for an envelope of the outbound direction (its relay to
        the Internet); inbound mail goes to its tenant's MTA (``tenants``, by name), or to
        ``deliverer`` (the LGWAN side) when it has no tenant."""
        self.spool = spool
        self.deliverer = deliverer
        self.route = route
        self.tenants: Mapping[str, Deliverer] = tenants or {}
        self.scheduler = scheduler
        self.bounces = bounces
        self.delivery = delivery
        self.quarantine = quarantine
        self.metrics = metrics
        self.clock = clock

    async def run(self, queue_id: str) -> None:
        """Attempt delivery of a spooled outgoing message."""
        try:
            envelope, message = await asyncio.to_thread(self.spool.load, "outgoing", queue_id)
        except SpoolError:
            await self.bounces.set_aside("outgoing", queue_id)
            return
        await self.deliver(envelope, message)

    async def deliver(self, envelope: Envelope, message: bytes) -> None:
        """One attempt for the recipients still open; the message is in ``outgoing``."""
        now = self.clock()
        recipients = list(envelope.rcpt_tos)
        outbound = envelope.direction == "outbound"
        deliverer = self.deliverer
        if outbound:
            if self.route is None:
                raise RuntimeError("an outbound message, but no outbound relay is configured")
            deliverer = self.route(envelope)
        elif envelope.tenant:
            # Never another MTA: a tenant no longer configured waits (and is reported).
            deliverer = self.tenants.get(envelope.tenant) or Unrouted(
                self.delivery, envelope.tenant
            )
        outcome = await deliverer.deliver(envelope.mail_from, recipients, message)
        attempt = envelope.attempts + 1
        record = _attempt_record(now, attempt, deliverer, outcome)
        failed = dict(envelope.failed) | outcome.permanent
        delivered = envelope.delivered + tuple(outcome.delivered)
        envelope = envelope.with_(
            attempts=attempt,
            deliveries=(*envelope.deliveries, record),
            delivered=delivered,
            failed=tuple(failed.items()),
        )
        if outcome.temporary:
            if now - envelope.received_at < self.delivery.lifetime_seconds:
                await self._defer(envelope, message, outcome)
                return
            failed |= outcome.temporary
            envelope = envelope.with_(failed=tuple(failed.items()))
        if not delivered:
            await self.bounces.dead(
                envelope, "outgoing", message, failed, DeadLetterReason.UNDELIVERABLE
            )
            return
        await asyncio.to_thread(self.spool.advance, "outgoing", envelope, message, "delivered")
        state = _final_state(envelope)
        await self.bounces.records.record(envelope.quarantine_id, state)
        if outbound:
            self.metrics.outbound(OutboundEvent.DELIVERED)
        else:
            self.metrics.delivered()
            if envelope.tenant:
                self.metrics.tenant_message(envelope.tenant, "delivered")
        self.metrics.observe_end_to_end(max(0.0, self.clock() - envelope.received_at))
        dsn = (
            await self.bounces.notify(envelope, failed, DeadLetterReason.UNDELIVERABLE)
            if failed
            else "none"
        )
        self.bounces.record(envelope, state, dsn)
        log.info(
            "%s delivered (%s) to %d recipient(s)",
            envelope.queue_id,
            envelope.verdict,
            len(delivered),
        )

    async def _defer(self, envelope: Envelope, message: bytes, outcome: Outcome) -> None:
        s = self.delivery
        delay = min(
            s.retry_initial_seconds * s.retry_multiplier ** (envelope.attempts - 1),
            s.retry_max_seconds,
        )
        first_reply = next(iter(outcome.temporary.values()))
        envelope = envelope.with_(
            rcpt_tos=tuple(outcome.temporary),
            next_attempt=self.clock() + delay,
            last_error=first_reply,
        )
        await asyncio.to_thread(self.spool.put, "outgoing", envelope, message)
        await self.bounces.records.record(envelope.quarantine_id, MessageState.DEFERRED)
        if envelope.direction == "outbound":
            self.metrics.outbound(OutboundEvent.DEFERRED)
        else:
            self.metrics.deferred()
        log.info("%s deferred %.0fs: %s", envelope.queue_id, delay, first_reply[:60])
        self.scheduler.later("outgoing", envelope.queue_id, envelope.next_attempt)


def _final_state(envelope: Envelope) -> MessageState:
    """The quarantine state once the message (or, when held, its notice) is delivered."""
    if envelope.verdict != Verdict.HOLD:
        return MessageState.DELIVERED
    return MessageState.AWAITING_PASSWORD if envelope.awaiting_password else MessageState.HELD


def _attempt_record(
    now: float, attempt: int, deliverer: Deliverer, outcome: Outcome
) -> dict[str, Any]:
    replies = outcome.temporary | outcome.permanent
    first = next(iter(replies.values()), "250 2.0.0 OK")
    code = first.split(" ", 1)[0]
    return {
        "time": datetime.fromtimestamp(now, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "host": f"{deliverer.host}:{deliverer.port}",
        "code": int(code) if code.isdigit() else 0,
        "reply": first,
        "recipients": len(outcome.delivered) + len(replies),
        "attempt": attempt,
        "error": "" if not replies else ("permanent" if outcome.permanent else "temporary"),
    }
