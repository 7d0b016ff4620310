"""The worker: takes spooled messages through quarantine, sanitizing and delivery.

Intent: every acknowledged message ends delivered or reported (dead letter, audit line,
notice to the sender), and nothing unsanitized ever leaves. The spool on disk is the truth:
the worker's in-memory schedule is rebuilt from it on start (and re-read periodically), and a
message's state changes only by the spool's atomic operations, so stopping or crashing at
any point leaves each message where it can continue.

Per message::

    incoming ─ quarantine the original ─ sanitize (process pool) ─┬─ deliver/hold ─▶ outgoing
                                                                  └─ reject ──▶ dead + DSN
    outgoing ─ deliver ─┬─ all done ───────────▶ delivered (DSN for recipients that failed)
                        ├─ 4xx / no connection ─▶ outgoing, retried with backoff
                        └─ 5xx or lifetime over ▶ dead + DSN

Policy: the rules (:mod:`gateway.configuration.rules`) are resolved per recipient when a message is
sanitized, with the rule set current at that moment (a reload applies from the next message
on). Recipients that resolve to different policies are split first: each group becomes its own
spooled message (new queue id, same original, its recipients only; the new ones are made
durable before the original is narrowed, so a crash in between can only duplicate), and each
copy is sanitized with its group's policy. The audit line names the rules and exceptions that
applied (``rules``, ``exceptions``).

A sanitizer crash or timeout is retried in isolation; after ``max_crashes`` the message is
held: recipients get a content-free notice. A temporary failure of a dependency (virus
scanner) defers. An unexpected error defers too (logged with the queue id), never drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gateway.configuration.rules import PolicyGroup, RuleSet
from gateway.configuration.settings import DeliverySettings, WorkerSettings
from gateway.delivery.client import Deliverer, Outcome, send_once
from gateway.delivery.notices import build_crash_hold_notice, build_dsn
from gateway.evidence.ports import AuditPort, QuarantinePort
from gateway.observation.ports import MetricsPort
from gateway.processing.pool import Sanitizer, SanitizerCrashed
from gateway.queue.spool import Envelope, Spool, SpoolError, new_queue_id
from sanitizers.errors import TemporaryFailure
from sanitizers.report import SanitizeResult
from sanitizers.vocabulary import Verdict

log = logging.getLogger("mukaika.worker")

Job = tuple[str, str]  # (spool state, queue id)


class Worker:
    """Schedules and runs the work on spooled messages with ``concurrency`` tasks."""

    def __init__(
        self,
        spool: Spool,
        sanitizer: Sanitizer,
        deliverer: Deliverer,
        *,
        settings: WorkerSettings,
        delivery: DeliverySettings,
        quarantine: QuarantinePort,
        audit: AuditPort,
        metrics: MetricsPort,
        hostname: str,
        keep_delivered_seconds: float = 86400.0,
        clock: Callable[[], float] = time.time,
        rules: RuleSet | None = None,
    ) -> None:
        self.spool = spool
        self.sanitizer = sanitizer
        self.deliverer = deliverer
        self.settings = settings
        self.delivery = delivery
        self.quarantine = quarantine
        self.audit = audit
        self.metrics = metrics
        self.hostname = hostname
        self.keep_delivered_seconds = keep_delivered_seconds
        self.clock = clock
        # Replaced whole on reload; read once per message when it is sanitized.
        self.rules = rules
        self.notice_from = delivery.dsn_from or f"MAILER-DAEMON@{hostname}"
        self._ready: asyncio.Queue[Job] = asyncio.Queue()
        self._delayed: list[tuple[float, int, str, str]] = []
        self._counter = itertools.count()
        self._known: set[str] = set()  # scheduled
        self._inflight: set[str] = set()  # being worked on
        self._due: dict[str, float] = {}  # when each delayed message is due
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self._stopping = False

    # --- scheduling -------------------------------------------------------------------------

    def submit(self, queue_id: str, state: str = "incoming") -> None:
        """Work on a message now (called after the SMTP side spooled it)."""
        if queue_id in self._known or queue_id in self._inflight:
            return
        self._known.add(queue_id)
        self._ready.put_nowait((state, queue_id))

    def _later(self, state: str, queue_id: str, due: float) -> None:
        self._known.add(queue_id)
        self._due[queue_id] = due
        heapq.heappush(self._delayed, (due, next(self._counter), state, queue_id))
        self._changed.set()

    def _scan_disk(self) -> tuple[list[str], list[tuple[str, float]]]:
        """What is on disk to work on (runs in a thread: file system access only)."""
        outgoing: list[tuple[str, float]] = []
        for queue_id in self.spool.ids("outgoing"):
            try:
                outgoing.append((queue_id, self.spool.envelope("outgoing", queue_id).next_attempt))
            except SpoolError:
                outgoing.append((queue_id, 0.0))  # unreadable: processing sets it aside
        return self.spool.ids("incoming"), outgoing

    async def _rescan(self) -> None:
        """Pick up what is on disk but not scheduled (start-up, ``queue retry``)."""
        incoming, outgoing = await asyncio.to_thread(self._scan_disk)
        now = self.clock()
        for queue_id in incoming:
            self.submit(queue_id, "incoming")
        for queue_id, next_attempt in outgoing:
            if next_attempt <= now and self._due.get(queue_id, now) > now:
                # Made due early on disk (``mukaika queue retry``): forget the old schedule.
                del self._due[queue_id]
                self._known.discard(queue_id)
            if queue_id in self._known or queue_id in self._inflight:
                continue
            if next_attempt <= now:
                self.submit(queue_id, "outgoing")
            else:
                self._later("outgoing", queue_id, next_attempt)

    def _report_depth(self) -> None:
        now = self.clock()
        oldest = now
        for state in ("incoming", "outgoing", "dead"):
            ids = self.spool.ids(state)
            self.metrics.set_queue_depth(state, len(ids))
        if self.rules is not None:
            self.metrics.set_expired_exceptions(len(self.rules.expired()))
            if state != "dead":
                for queue_id in ids[:1]:
                    try:
                        oldest = min(oldest, self.spool.envelope(state, queue_id).received_at)
                    except SpoolError:
                        continue
        self.metrics.set_oldest_age(max(0.0, now - oldest))

    async def _scheduler(self) -> None:
        next_scan = 0.0
        while not self._stopping:
            now = self.clock()
            while self._delayed and self._delayed[0][0] <= now:
                due, _, state, queue_id = heapq.heappop(self._delayed)
                if self._due.get(queue_id) != due:
                    continue  # rescheduled meanwhile
                del self._due[queue_id]
                self._ready.put_nowait((state, queue_id))
            if now >= next_scan:
                await self._rescan()
                await asyncio.to_thread(self._report_depth)
                await asyncio.to_thread(self.spool.purge_delivered, self.keep_delivered_seconds)
                next_scan = now + self.settings.rescan_seconds
            wait = next_scan - now
            if self._delayed:
                wait = min(wait, self._delayed[0][0] - now)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(wait, 0.001))

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover the spool and start working."""
        await asyncio.to_thread(self.spool.recover)
        self._tasks.append(asyncio.create_task(self._scheduler(), name="mukaika-scheduler"))
        for n in range(self.settings.concurrency):
            self._tasks.append(asyncio.create_task(self._run(), name=f"mukaika-worker-{n}"))

    async def stop(self, grace_seconds: float) -> None:
        """Finish work in flight within the grace period; anything cut off stays spooled."""
        self._stopping = True
        self._changed.set()
        for _ in range(self.settings.concurrency):
            self._ready.put_nowait(("", ""))
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds or None)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()

    async def _run(self) -> None:
        while True:
            state, queue_id = await self._ready.get()
            if self._stopping or not queue_id:
                return
            self._busy += 1
            self.metrics.set_busy_workers(self._busy)
            try:
                await self._process(state, queue_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s unexpected error in state %s: deferred", queue_id, state)
                self._later(
                    state, queue_id, self.clock() + self.settings.temporary_failure_retry_seconds
                )
            finally:
                self._busy -= 1
                self.metrics.set_busy_workers(self._busy)

    async def _process(self, state: str, queue_id: str) -> None:
        self._known.discard(queue_id)
        if queue_id in self._inflight:
            return
        self._inflight.add(queue_id)
        try:
            if state == "incoming":
                await self._sanitize(queue_id)
            elif state == "outgoing":
                try:
                    envelope, message = await asyncio.to_thread(
                        self.spool.load, "outgoing", queue_id
                    )
                except SpoolError:
                    await self._set_aside("outgoing", queue_id)
                    return
                await self._deliver(envelope, message)
        finally:
            self._inflight.discard(queue_id)

    async def _set_aside(self, state: str, queue_id: str) -> None:
        """A spool file that vanished was handled meanwhile (a duplicate job); one that is
        there but unreadable (disk damage) goes to dead/ for the operator, never retried."""
        if not await asyncio.to_thread(self.spool.path(state, queue_id).exists):
            return
        log.error("%s unreadable spool file in %s: moved to dead", queue_id, state)
        await asyncio.to_thread(self.spool.move, queue_id, state, "dead")
        self.metrics.dead_lettered()
        # Its envelope is unreadable, but an acknowledged message still gets its audit line.
        self._audit(
            Envelope(queue_id=queue_id, mail_from="", rcpt_tos=()),
            "dead",
            "none",
            f"unreadable spool file in {state}",
        )

    # --- sanitizing -------------------------------------------------------------------------

    async def _sanitize(self, queue_id: str) -> None:
        try:
            envelope, untrusted_raw = await asyncio.to_thread(self.spool.load, "incoming", queue_id)
        except SpoolError:
            await self._set_aside("incoming", queue_id)
            return
        group: PolicyGroup | None = None
        if self.rules is not None:
            groups = self.rules.groups(
                sender=envelope.mail_from, recipients=envelope.rcpt_tos, client=envelope.client
            )
            if len(groups) > 1:
                envelope = await self._split(envelope, untrusted_raw, groups)
            group = groups[0]
        if not envelope.quarantine_id:
            quarantine_id = await asyncio.to_thread(
                self.quarantine.store,
                queue_id,
                untrusted_raw,
                client=envelope.client,
                helo=envelope.helo,
                mail_from=envelope.mail_from,
                rcpt_to=list(envelope.rcpt_tos),
                received_at=datetime.fromtimestamp(envelope.received_at, UTC),
            )
            envelope = envelope.with_(quarantine_id=quarantine_id)
            self.metrics.quarantined()
        started = time.monotonic()
        try:
            result = await self.sanitizer.run(
                untrusted_raw,
                envelope.quarantine_id,
                isolated=envelope.crashes > 0,
                policy=None if group is None else group.policy,
            )
        except TemporaryFailure as exc:
            await self._sanitize_later(envelope, untrusted_raw, f"temporary: {exc}")
            return
        except SanitizerCrashed as exc:
            await self._crashed(envelope, untrusted_raw, str(exc))
            return
        self.metrics.observe_sanitize(time.monotonic() - started)
        await self._sanitized(envelope, result, group)

    async def _split(
        self, envelope: Envelope, untrusted_raw: bytes, groups: list[PolicyGroup]
    ) -> Envelope:
        """One spooled message per policy group; returns the original, narrowed to group 1."""
        copies = [
            envelope.with_(queue_id=new_queue_id(), rcpt_tos=group.recipients)
            for group in groups[1:]
        ]
        for copy in copies:
            await asyncio.to_thread(self.spool.accept, copy, untrusted_raw)
        narrowed = envelope.with_(rcpt_tos=groups[0].recipients)
        await asyncio.to_thread(self.spool.put, "incoming", narrowed, untrusted_raw)
        for copy in copies:
            self.submit(copy.queue_id)
        log.info(
            "%s split by policy into %s",
            envelope.queue_id,
            ", ".join([envelope.queue_id, *(copy.queue_id for copy in copies)]),
        )
        return narrowed

    async def _sanitize_later(self, envelope: Envelope, untrusted_raw: bytes, why: str) -> None:
        now = self.clock()
        if now - envelope.received_at >= self.delivery.lifetime_seconds:
            failures = {
                rcpt: "451 4.3.0 could not be sanitized in time" for rcpt in envelope.rcpt_tos
            }
            await self._dead(envelope.with_(last_error=why), "incoming", b"", failures, "lifetime")
            return
        log.warning("%s sanitizing deferred (%s)", envelope.queue_id, why)
        self.metrics.deferred()
        self._later(
            "incoming", envelope.queue_id, now + self.settings.temporary_failure_retry_seconds
        )

    async def _crashed(self, envelope: Envelope, untrusted_raw: bytes, why: str) -> None:
        envelope = envelope.with_(crashes=envelope.crashes + 1, last_error=why)
        log.warning(
            "%s sanitizer %s (%d of %d)",
            envelope.queue_id,
            why,
            envelope.crashes,
            self.settings.max_crashes,
        )
        if envelope.crashes < self.settings.max_crashes:
            await asyncio.to_thread(self.spool.put, "incoming", envelope, untrusted_raw)
            self.submit(envelope.queue_id, "incoming")
            return
        notice = build_crash_hold_notice(envelope, from_address=self.notice_from)
        envelope = envelope.with_(verdict=str(Verdict.HOLD))
        await asyncio.to_thread(self.spool.advance, "incoming", envelope, notice, "outgoing")
        await self._deliver(envelope, notice)

    async def _sanitized(
        self, envelope: Envelope, result: SanitizeResult, group: PolicyGroup | None = None
    ) -> None:
        report = result.report
        self.metrics.verdict(str(report.verdict))
        for part in report.parts:
            self.metrics.part(str(part.action), str(part.reason))
        await asyncio.to_thread(self.quarantine.record_result, envelope.quarantine_id, report)
        data = report.to_dict()
        if group is not None and group.rules:
            data["rules"] = list(group.rules)
            data["exceptions"] = list(group.exceptions)
        envelope = envelope.with_(verdict=str(report.verdict), report=data)
        if report.verdict == Verdict.REJECT:
            self.metrics.rejected("verdict")
            failures = {rcpt: "550 5.7.1 message rejected by policy" for rcpt in envelope.rcpt_tos}
            await self._dead(envelope, "incoming", result.message, failures, "rejected")
            return
        await asyncio.to_thread(
            self.spool.advance, "incoming", envelope, result.message, "outgoing"
        )
        await self._deliver(envelope, result.message)

    # --- delivering -------------------------------------------------------------------------

    async def _deliver(self, envelope: Envelope, message: bytes) -> None:
        now = self.clock()
        recipients = list(envelope.rcpt_tos)
        outcome = await self.deliverer.deliver(envelope.mail_from, recipients, message)
        attempt = envelope.attempts + 1
        record = _attempt_record(now, attempt, self.deliverer, outcome)
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
            await self._dead(envelope, "outgoing", message, failed, "undeliverable")
            return
        await asyncio.to_thread(self.spool.advance, "outgoing", envelope, message, "delivered")
        state = "held" if envelope.verdict == Verdict.HOLD else "delivered"
        await asyncio.to_thread(self.quarantine.record_delivery, envelope.quarantine_id, state)
        self.metrics.delivered()
        self.metrics.observe_end_to_end(max(0.0, self.clock() - envelope.received_at))
        dsn = await self._notify(envelope, failed, "undeliverable") if failed else "none"
        self._audit(envelope, state, dsn)
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
        await asyncio.to_thread(self.quarantine.record_delivery, envelope.quarantine_id, "deferred")
        self.metrics.deferred()
        log.info("%s deferred %.0fs: %s", envelope.queue_id, delay, first_reply[:60])
        self._later("outgoing", envelope.queue_id, envelope.next_attempt)

    async def _dead(
        self,
        envelope: Envelope,
        from_state: str,
        message: bytes,
        failures: dict[str, str],
        reason: str,
    ) -> None:
        envelope = envelope.with_(failed=tuple((dict(envelope.failed) | failures).items()))
        # A message that was never sanitized is kept without content: the original is in
        # the quarantine, and a dead letter must never be retried as it came in.
        await asyncio.to_thread(self.spool.advance, from_state, envelope, message, "dead")
        if envelope.quarantine_id:
            await asyncio.to_thread(self.quarantine.record_delivery, envelope.quarantine_id, "dead")
        self.metrics.dead_lettered()
        dsn = await self._notify(envelope, failures, reason)
        self._audit(envelope, "dead", dsn, error=reason)
        log.warning("%s dead-lettered (%s)", envelope.queue_id, reason)

    async def _notify(self, envelope: Envelope, failures: dict[str, str], reason: str) -> str:
        """Send a delivery-status notice; never to the null sender. Returns what happened."""
        if not envelope.mail_from:
            return "none: null sender"
        if not self.delivery.dsn_relay_host:
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
                self.delivery.dsn_relay_host,
                self.delivery.dsn_relay_port,
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

    def _audit(self, envelope: Envelope, state: str, dsn: str, error: str | None = None) -> None:
        report = envelope.report or {}
        record: dict[str, Any] = {
            "event": "message",
            "queue_id": envelope.queue_id,
            "quarantine_id": envelope.quarantine_id,
            "client": envelope.client,
            "helo": envelope.helo,
            "mail_from": envelope.mail_from,
            "rcpt_to": list(envelope.delivered) + [rcpt for rcpt, _ in envelope.failed],
            "message_id": report.get("message_id"),
            "size": envelope.size,
            "sha256": report.get("sha256"),
            "verdict": envelope.verdict,
            "reasons": report.get("reasons", []),
            "parts": report.get("parts", []),
            "defects": report.get("defects", []),
            "timings": report.get("timings_ms", {}),
            "deliveries": list(envelope.deliveries),
            "state": state,
            "attempts": envelope.attempts,
        }
        if report.get("rules"):
            record["rules"] = report["rules"]
            record["exceptions"] = report.get("exceptions", [])
        if error is not None or dsn not in ("none", "sent"):
            record["error"] = error or f"dsn {dsn}"
        self.audit.write(record)


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
