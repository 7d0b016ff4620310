"""The outbound stage: a spooled outbound mail, from ``incoming`` to sent, held or refused.

The order is fixed (GUARDIANWALL's, the issue's): **delay → filters and approval →
conversion**::

    incoming ─ delay (cancel possible) ─ rate limits ─ checks (pool) ─┬ pass ─ Bcc, DKIM ─▶ outgoing
                                                                       ├ hold ──▶ quarantine + store
                                                                       └ reject ─▶ dead + notice

- **Delay** (送信遅延): the mail waits ``outbound.delay_seconds`` after it was accepted; until
  then its sender can cancel it (:meth:`OutboundStage.cancel`, reached through serve's control
  socket by ``mukaika outbound cancel`` and by the console's outbound page, which also
  lists a sender's mail in its delay through :meth:`OutboundStage.waiting`).
- **Rate limits** (:mod:`.rates`): past them the mail is held (reason ``rate_limit``).
- **Checks** (:mod:`.checking`, in a pool process): malware (a hit rejects; clamd down
  defers, never sends unscanned), My Number and the ``[policy.outbound]`` checks. The rules
  are resolved per recipient as for inbound mail, but an outbound mail is decided as a whole:
  each recipient group's policy is checked and the strictest decision applies (a mail is
  never sent to some recipients and held for others). A crash or hang of the checks holds.
- **Hold** (上長承認): the original is quarantined, and a decision of kind ``outbound`` is
  opened in the store, pending an approver of the sender's group until
  ``outbound.approval_expiry_seconds``; the sender is told. :mod:`.approvals` carries out what
  is decided.
- **Reject**: the mail goes to ``dead`` (its original to the quarantine) and the sender gets
  a Japanese notice with the reasons.
- **Pass**: the original is quarantined as evidence; the message as it leaves
  (:mod:`.leaving`) goes to ``outgoing`` and to the outbound relay with the usual retries.

Every end writes one audit line (``direction: outbound``) and counts in
``mukaika_outbound_total{event}``. Never lose mail: the spool entry goes only after what
replaces it (the quarantined original and the store's decision) is durable; a crash in
between repeats the step, which finds the decision already open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.configuration.config import Config, tenants_of
from gateway.configuration.rules import RuleSet
from gateway.configuration.settings import OutboundSettings
from gateway.delivery.attempts import Delivering
from gateway.delivery.bounces import Bounces
from gateway.evidence.message_record import message_record
from gateway.evidence.ports import AuditPort, QuarantinePort
from gateway.observation.ports import MetricsPort
from gateway.outbound.checking import check_task
from gateway.outbound.leaving import Signer, SigningError, leaving
from gateway.outbound.notices import shown_headers, subject_of, tell_sender
from gateway.outbound.rates import RateLimits
from gateway.processing.pool import SanitizerCrashed, TaskRunner
from gateway.queue.scheduler import Scheduler
from gateway.queue.spool import Envelope, Spool, SpoolError
from gateway.store import Store
from gateway.store.workflow import StateConflict, open_decision, open_decision_of
from sanitizers.errors import TemporaryFailure
from sanitizers.outbound_checks import OutboundReport
from sanitizers.report import Report
from sanitizers.vocabulary import (
    DeadLetterReason,
    MessageState,
    OutboundEvent,
    Reason,
    RequestKind,
    Verdict,
)

log = logging.getLogger("mukaika.outbound")

OUTBOUND = "outbound"
# What a sender is shown of their mail in its delay: at most this many mails, and of each at
# most this many recipients (the answer crosses serve's control socket, which is bounded).
MAX_WAITING = 50
MAX_SHOWN_RECIPIENTS = 10


class CancelError(Exception):
    """The mail cannot be cancelled: ``result`` says why (not_found, wrong_sender, too_late)."""

    def __init__(self, result: str, message: str) -> None:
        super().__init__(message)
        self.result = result


class OutboundStage:
    """Works on spooled outbound messages in the ``incoming`` state."""

    def __init__(
        self,
        config: Config,
        spool: Spool,
        scheduler: Scheduler,
        delivering: Delivering,
        bounces: Bounces,
        *,
        runner: TaskRunner,
        quarantine: QuarantinePort,
        store: Store | None,
        audit: AuditPort,
        metrics: MetricsPort,
        rules: Callable[[], RuleSet | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.spool = spool
        self.scheduler = scheduler
        self.delivering = delivering
        self.bounces = bounces
        self.runner = runner
        self.quarantine = quarantine
        self.store = store
        self.audit = audit
        self.metrics = metrics
        self.rules = rules
        self.clock = clock
        outbound = config.outbound
        self.rates = RateLimits(outbound.max_per_sender_per_hour, outbound.max_per_hour)
        self.signer = Signer(outbound.dkim)
        self.tenants = tenants_of(config)
        # Queue ids checked in this process (so a deferred retry is not counted twice).
        self._counted: set[str] = set()
        self._cancelling: set[str] = set()

    def _settings(self, envelope: Envelope) -> OutboundSettings:
        """[outbound] as it applies to the sender's tenant (its delay, Bcc threshold,
        disclaimer, expiry of held mail)."""
        return self.tenants.outbound(self.tenants.tenant_of(envelope.mail_from))

    # -- the stage ---------------------------------------------------------------------------

    async def run(self, queue_id: str) -> None:
        """Take one spooled outbound message as far as it can go now."""
        try:
            envelope, untrusted_raw = await asyncio.to_thread(self.spool.load, "incoming", queue_id)
        except SpoolError:
            await self.bounces.set_aside("incoming", queue_id)
            return
        due = envelope.received_at + self._settings(envelope).delay_seconds
        if self.clock() < due:
            self.scheduler.later("incoming", queue_id, due)
            return
        if queue_id in self._cancelling:
            return
        # Outbound mail belongs to its sender's tenant (its records, its approvers).
        envelope = envelope.with_(tenant=self.tenants.tenant_of(envelope.mail_from))
        over = None
        if queue_id not in self._counted:
            over = self.rates.take(envelope.mail_from)
            self._counted.add(queue_id)
        if over is not None:
            self.metrics.rate_limited(over)
            self.metrics.outbound(OutboundEvent.RATE_LIMITED)
            report = OutboundReport()
            report.add(Reason.RATE_LIMIT, "hold", "sender", f"over the {over} limit")
            await self._hold(envelope, untrusted_raw, report, OutboundEvent.RATE_LIMITED)
            return
        try:
            report = await self._check(envelope, untrusted_raw)
        except TemporaryFailure as exc:
            await self._later(envelope, untrusted_raw, f"temporary: {exc}")
            return
        if report.verdict is Verdict.REJECT:
            await self._reject(envelope, untrusted_raw, report)
        elif report.verdict is Verdict.HOLD:
            await self._hold(envelope, untrusted_raw, report, OutboundEvent.HELD)
        else:
            await self._send(envelope, untrusted_raw, report)
        self._counted.discard(queue_id)

    async def _check(self, envelope: Envelope, untrusted_raw: bytes) -> OutboundReport:
        """The strictest decision over the policies of the recipient groups."""
        rules = self.rules()
        policies = [self.config.policy]
        if rules is not None:
            groups = rules.groups(
                sender=envelope.mail_from, recipients=envelope.rcpt_tos, client=envelope.client
            )
            policies = [group.policy for group in groups]
        worst: OutboundReport | None = None
        for policy in policies:
            try:
                report = await self.runner.run_task(
                    check_task,
                    untrusted_raw,
                    policy,
                    envelope.rcpt_tos,
                    self.config.smtp,
                    self.config.scanner,
                    reference=envelope.queue_id,
                )
            except SanitizerCrashed as exc:
                report = OutboundReport()
                report.add(Reason.CRASH, "hold", "message", str(exc))
            if worst is None or _severity(report) > _severity(worst):
                worst = report
        assert worst is not None
        return worst

    async def _later(self, envelope: Envelope, untrusted_raw: bytes, why: str) -> None:
        """Check again later (the scanner is down); past the lifetime: dead, sender told."""
        if self.clock() - envelope.received_at >= self.config.delivery.lifetime_seconds:
            failures = {r: "451 4.3.0 could not be checked in time" for r in envelope.rcpt_tos}
            await self.bounces.dead(
                envelope.with_(last_error=why), "incoming", b"", failures, DeadLetterReason.LIFETIME
            )
            self.metrics.outbound(OutboundEvent.DEAD)
            return
        log.warning("%s outbound checks deferred (%s)", envelope.queue_id, why)
        if envelope.last_error != why:
            envelope = envelope.with_(last_error=why)
            await asyncio.to_thread(self.spool.put, "incoming", envelope, untrusted_raw)
        self.metrics.outbound(OutboundEvent.DEFERRED)
        self.scheduler.retry_later("incoming", envelope.queue_id)

    async def _quarantine(
        self, envelope: Envelope, untrusted_raw: bytes, report: OutboundReport
    ) -> Envelope:
        if not envelope.quarantine_id:
            quarantine_id = await asyncio.to_thread(
                self.quarantine.store,
                envelope.queue_id,
                untrusted_raw,
                client=envelope.client,
                helo=envelope.helo,
                mail_from=envelope.mail_from,
                rcpt_to=list(envelope.rcpt_tos),
                received_at=datetime.fromtimestamp(envelope.received_at, UTC),
                tenant=envelope.tenant,
            )
            envelope = envelope.with_(quarantine_id=quarantine_id)
            self.metrics.quarantined()
        await asyncio.to_thread(
            self.quarantine.record_result,
            envelope.quarantine_id,
            _index_report(report, untrusted_raw),
        )
        return envelope.with_(verdict=str(report.verdict), report=report.to_dict())

    async def _send(self, envelope: Envelope, untrusted_raw: bytes, report: OutboundReport) -> None:
        envelope = await self._quarantine(envelope, untrusted_raw, report)
        try:
            leaving_message = leaving(untrusted_raw, self.config, self.signer, envelope.tenant)
        except SigningError as exc:
            await self._later(envelope, untrusted_raw, str(exc))
            return
        data = dict(envelope.report or {})
        data["bcc_converted"] = leaving_message.bcc_converted
        data["dkim"] = leaving_message.dkim_domain or None
        if self._settings(envelope).disclaimer:
            data["disclaimer"] = leaving_message.disclaimer
        envelope = envelope.with_(report=data)
        await asyncio.to_thread(
            self.spool.advance, "incoming", envelope, leaving_message.message, "outgoing"
        )
        await self.delivering.deliver(envelope, leaving_message.message)

    async def _hold(
        self,
        envelope: Envelope,
        untrusted_raw: bytes,
        report: OutboundReport,
        event: OutboundEvent,
    ) -> None:
        if self.store is None:
            # Nothing can record the approval: never send, never drop; wait for the store.
            await self._later(envelope, untrusted_raw, "no store to record the approval in")
            return
        report.verdict = Verdict.HOLD
        envelope = await self._quarantine(envelope, untrusted_raw, report)
        # Straight to the store (not the delivery records kept through a store outage): the
        # decision below needs the entry held, and a store that does not answer defers.
        await asyncio.to_thread(
            self.quarantine.record_delivery, envelope.quarantine_id, MessageState.HELD
        )
        now = datetime.now(UTC)
        reasons = ", ".join(str(reason) for reason in report.reasons)
        try:
            await asyncio.to_thread(
                open_decision,
                self.store,
                envelope.quarantine_id,
                kind=RequestKind.OUTBOUND,
                actor=envelope.mail_from or "(null sender)",
                reason=reasons or "held",
                now=now,
                allowed_from=(MessageState.HELD,),
                approved=False,
                expires_at=now
                + timedelta(seconds=self._settings(envelope).approval_expiry_seconds),
            )
        except StateConflict:
            # A repeated step after a crash finds its decision open; anything else is wrong.
            existing = await asyncio.to_thread(open_decision_of, self.store, envelope.quarantine_id)
            if existing is None or existing.kind is not RequestKind.OUTBOUND:
                raise
            log.info("%s was held already (a repeated step)", envelope.queue_id)
        told = await self._tell(envelope, untrusted_raw, event, report.reasons)
        self.audit.write(_record(envelope, "held", told))
        await asyncio.to_thread(self.spool.remove, "incoming", envelope.queue_id)
        self.metrics.outbound(OutboundEvent.HELD)
        log.info(
            "%s outbound held for approval (%s) as %s",
            envelope.queue_id,
            reasons,
            envelope.quarantine_id,
        )

    async def _reject(
        self, envelope: Envelope, untrusted_raw: bytes, report: OutboundReport
    ) -> None:
        envelope = await self._quarantine(envelope, untrusted_raw, report)
        failures = {r: "550 5.7.1 refused by the outbound checks" for r in envelope.rcpt_tos}
        envelope = envelope.with_(failed=tuple(failures.items()))
        await asyncio.to_thread(self.spool.advance, "incoming", envelope, b"", "dead")
        await self.bounces.records.record(envelope.quarantine_id, MessageState.DEAD)
        told = await self._tell(envelope, untrusted_raw, OutboundEvent.REJECTED, report.reasons)
        self.audit.write(_record(envelope, "dead", told, error=DeadLetterReason.REJECTED))
        self.metrics.outbound(OutboundEvent.REJECTED)
        log.warning(
            "%s outbound refused (%s)",
            envelope.queue_id,
            ", ".join(str(r) for r in report.reasons),
        )

    async def _tell(
        self,
        envelope: Envelope,
        untrusted_raw: bytes,
        event: OutboundEvent,
        reasons: list[Reason],
    ) -> str:
        return await tell_sender(
            self.config,
            event,
            sender=envelope.mail_from,
            recipients=envelope.rcpt_tos,
            untrusted_raw=untrusted_raw,
            received_at=envelope.received_at,
            reference=envelope.quarantine_id or envelope.queue_id,
            reasons=reasons,
            from_address=self.bounces.notice_from,
        )

    # -- the sender's view and cancel ----------------------------------------------------------

    async def waiting(self, senders: tuple[str, ...]) -> list[dict[str, Any]]:
        """The outbound mail of ``senders`` still in its delay (what the sender may cancel),
        oldest first, at most :data:`MAX_WAITING`: the queue id, the envelope, the Subject
        (made safe to show) and when the delay ends."""
        wanted = {sender.strip().lower() for sender in senders if sender.strip()}
        if not wanted:
            return []
        now = self.clock()
        found: list[dict[str, Any]] = []
        for queue_id in await asyncio.to_thread(self.spool.ids, "incoming"):
            try:
                envelope, untrusted_raw = await asyncio.to_thread(
                    self.spool.load, "incoming", queue_id
                )
            except SpoolError:
                continue  # gone meanwhile
            due = envelope.received_at + self._settings(envelope).delay_seconds
            if envelope.direction != OUTBOUND or envelope.mail_from.lower() not in wanted:
                continue
            if now >= due or queue_id in self._cancelling:
                continue
            found.append(
                {
                    "queue_id": queue_id,
                    "mail_from": envelope.mail_from,
                    "rcpt_to": list(envelope.rcpt_tos[:MAX_SHOWN_RECIPIENTS]),
                    "recipients": len(envelope.rcpt_tos),
                    "subject": subject_of(untrusted_raw),
                    "received_at": envelope.received_at,
                    "due": due,
                }
            )
        found.sort(key=lambda item: (item["received_at"], item["queue_id"]))
        return found[:MAX_WAITING]

    async def cancel(self, queue_id: str, sender: str, actor: str) -> dict[str, Any]:
        """Cancel an outbound mail still in its delay, for its sender. The mail goes to
        ``dead`` (reason ``cancelled``), never to the relay; the sender is told."""
        if queue_id in self._cancelling:
            raise CancelError("too_late", f"{queue_id} is being cancelled already")
        self._cancelling.add(queue_id)
        try:
            try:
                envelope, untrusted_raw = await asyncio.to_thread(
                    self.spool.load, "incoming", queue_id
                )
            except SpoolError as exc:
                raise CancelError("not_found", f"no outbound mail {queue_id} waiting") from exc
            if envelope.direction != OUTBOUND:
                raise CancelError("not_found", f"no outbound mail {queue_id} waiting")
            if envelope.mail_from.lower() != sender.strip().lower():
                raise CancelError("wrong_sender", f"{queue_id} is not a mail of {sender}")
            due = envelope.received_at + self._settings(envelope).delay_seconds
            if self.clock() >= due:
                raise CancelError("too_late", f"{queue_id}: its delay is over (being sent)")
            failures = {r: "550 5.7.0 cancelled by its sender" for r in envelope.rcpt_tos}
            envelope = envelope.with_(failed=tuple(failures.items()), verdict="cancelled")
            await asyncio.to_thread(self.spool.advance, "incoming", envelope, b"", "dead")
            told = await self._tell(envelope, untrusted_raw, OutboundEvent.CANCELLED, [])
            record = _record(envelope, "dead", told, error=DeadLetterReason.CANCELLED)
            record["actor"] = actor
            self.audit.write(record)
            self.metrics.outbound(OutboundEvent.CANCELLED)
            log.info("%s outbound cancelled by %s for %s", queue_id, actor, sender)
            return {"result": "cancelled", "queue_id": queue_id}
        finally:
            self._cancelling.discard(queue_id)


def _severity(report: OutboundReport) -> int:
    return {Verdict.DELIVER: 0, Verdict.HOLD: 1, Verdict.REJECT: 2}[report.verdict]


def _index_report(report: OutboundReport, untrusted_raw: bytes) -> Report:
    """What the quarantine index keeps of an outbound decision: its verdict and reasons, and
    the headers the lists show (Subject, From, Message-ID)."""
    index = Report(size=0, sha256="")
    index.verdict = report.verdict
    index.reasons = list(report.reasons)
    headers = shown_headers(untrusted_raw)
    index.subject, index.from_, index.message_id = (
        headers.subject,
        headers.from_,
        headers.message_id,
    )
    return index


def _record(envelope: Envelope, state: str, told: str, error: str | None = None) -> dict[str, Any]:
    """The audit line of an outbound mail that ended here (``told``: the sender's notice)."""
    record = message_record(envelope, state, "sent" if told == "sent" else "none", error)
    record["notice"] = told
    return record
