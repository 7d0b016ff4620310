"""The worker: takes spooled messages through quarantine, sanitizing and delivery.

Intent: every acknowledged message ends delivered or reported (dead letter, audit line,
notice to the sender), and nothing unsanitized ever leaves. This module only assembles the
four jobs, each in the package of its stage:

- :mod:`gateway.queue.scheduler` keeps the schedule, rebuilt from the spool on disk;
- :mod:`gateway.processing.sanitizing` quarantines, splits by policy and sanitizes;
- :mod:`gateway.delivery.attempts` delivers and retries;
- :mod:`gateway.delivery.bounces` dead-letters, notifies the sender and audits every end.

A message's state changes only by the spool's atomic operations, so stopping or crashing at
any point leaves each message where it can continue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from gateway.configuration.rules import RuleSet
from gateway.configuration.settings import DeliverySettings, WorkerSettings
from gateway.delivery.attempts import Delivering
from gateway.delivery.bounces import Bounces
from gateway.delivery.client import Deliverer
from gateway.evidence.ports import AuditPort, QuarantinePort
from gateway.evidence.quarantine import Quarantine
from gateway.observation.ports import MetricsPort
from gateway.processing.pool import Sanitizer
from gateway.processing.sanitizing import Sanitizing
from gateway.processing.unlock_links import UnlockLinks
from gateway.processing.unlocking import Unlocking
from gateway.queue.scheduler import Scheduler
from gateway.queue.spool import Spool, SpoolError
from sanitizers.notice import NoticeContext
from sanitizers.policy import Policy

log = logging.getLogger("mukaika.worker")


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
        notice_context: NoticeContext | None = None,
        unlock_from: Quarantine | None = None,
        links: UnlockLinks | None = None,
    ) -> None:
        """``unlock_from``: the real quarantine, which unlocking (PPAP) reads originals from
        and counts attempts in; without it nothing can be unlocked. ``links``: signs the PPAP
        link of each recipient of a held notice (None: no links)."""
        self.metrics = metrics
        # The outbound stage (gateway/outbound), set by the assembly when [outbound] is on.
        self.outbound: Callable[[str], Awaitable[None]] | None = None
        self.scheduler = Scheduler(
            spool,
            self._work,
            settings=settings,
            metrics=metrics,
            keep_delivered_seconds=keep_delivered_seconds,
            clock=clock,
            housekeeping=[self._report_expired],
        )
        self.bounces = Bounces(
            spool,
            delivery=delivery,
            quarantine=quarantine,
            audit=audit,
            metrics=metrics,
            hostname=hostname,
        )
        self.delivering = Delivering(
            spool,
            deliverer,
            self.scheduler,
            self.bounces,
            delivery=delivery,
            quarantine=quarantine,
            metrics=metrics,
            clock=clock,
        )
        self.unlocking = (
            None
            if unlock_from is None
            else Unlocking(
                spool,
                sanitizer,
                self.scheduler,
                quarantine=unlock_from,
                audit=audit,
                rules=lambda: self.rules,
                base_policy=lambda: self.rules.base if self.rules is not None else Policy(),
                clock=clock,
            )
        )
        self.sanitizing = Sanitizing(
            spool,
            sanitizer,
            self.scheduler,
            self.delivering,
            self.bounces,
            settings=settings,
            delivery=delivery,
            quarantine=quarantine,
            metrics=metrics,
            clock=clock,
            rules=rules,
            notice_context=notice_context,
            unlocking=self.unlocking,
            links=links,
        )

    @property
    def rules(self) -> RuleSet | None:
        """The rule set messages are sanitized with from now on."""
        return self.sanitizing.rules

    @rules.setter
    def rules(self, rules: RuleSet | None) -> None:
        self.sanitizing.rules = rules

    def direction(self, queue_id: str) -> str:
        """The direction of an incoming message (its envelope says); "inbound" when the file
        cannot be read (the sanitizing stage sets it aside)."""
        try:
            return self.scheduler.spool.envelope("incoming", queue_id).direction
        except SpoolError:
            return "inbound"

    def submit(self, queue_id: str, state: str = "incoming") -> None:
        """Work on a message now (called after the SMTP side spooled it)."""
        self.scheduler.submit(queue_id, state)

    async def start(self) -> None:
        """Recover the spool and start working."""
        await self.scheduler.start()

    async def stop(self, grace_seconds: float) -> None:
        """Finish work in flight within the grace period; anything cut off stays spooled."""
        await self.scheduler.stop(grace_seconds)

    async def _work(self, state: str, queue_id: str) -> None:
        if state == "incoming":
            if await asyncio.to_thread(self.direction, queue_id) == "outbound":
                await self._outbound(queue_id)
            else:
                await self.sanitizing.run(queue_id)
        elif state == "outgoing":
            await self.delivering.run(queue_id)

    async def _outbound(self, queue_id: str) -> None:
        """Outbound mail goes to the outbound stage, never through the sanitizer; with the
        direction off, it waits in the spool (never sent, never sanitized as inbound)."""
        if self.outbound is None:
            log.error("%s is outbound mail but [outbound] is off: kept waiting", queue_id)
            self.scheduler.retry_later("incoming", queue_id)
            return
        await self.outbound(queue_id)

    def _report_expired(self) -> None:
        if self.rules is not None:
            self.metrics.set_expired_exceptions(len(self.rules.expired()))
