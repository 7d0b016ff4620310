"""The schedule of the work on the spool: what is due, when, and who works on it.

Intent: the spool on disk is the truth. The in-memory schedule is rebuilt from it on start and
re-read every ``worker.rescan_seconds`` (which also picks up ``mukaika queue retry``, made due
early on disk), so losing the schedule loses nothing. ``concurrency`` tasks take due jobs and
hand each to the stage for its spool state; a message is worked on by at most one task at a
time. An unexpected error in a stage defers the message (logged with its queue id), never
drops it. Each rescan also reports the queue's depth and age to the metrics and purges
delivered messages kept past ``spool.keep_delivered_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from gateway.configuration.settings import WorkerSettings
from gateway.observation.ports import MetricsPort
from gateway.queue.spool import Spool, SpoolError
from sanitizers.vocabulary import MessageState

log = logging.getLogger("mukaika.worker")

Job = tuple[str, str]  # (spool state, queue id)
# Works on one message in one spool state; called with (state, queue id).
Stage = Callable[[str, str], Awaitable[None]]


class Scheduler:
    """Keeps the due times of spooled messages and runs ``stage`` on each when it is due."""

    def __init__(
        self,
        spool: Spool,
        stage: Stage,
        *,
        settings: WorkerSettings,
        metrics: MetricsPort,
        keep_delivered_seconds: float,
        clock: Callable[[], float] = time.time,
        housekeeping: Sequence[Callable[[], object]] = (),
    ) -> None:
        self.spool = spool
        self.stage = stage
        self.settings = settings
        self.metrics = metrics
        self.keep_delivered_seconds = keep_delivered_seconds
        self.clock = clock
        # Run in a thread with every rescan, after the scheduler's own reports.
        self.housekeeping = tuple(housekeeping)
        self._ready: asyncio.Queue[Job] = asyncio.Queue()
        self._received_at: dict[str, float] = {}  # of the messages waiting, by queue id
        self._delayed: list[tuple[float, int, str, str]] = []
        self._counter = itertools.count()
        self._known: set[str] = set()  # scheduled
        self._inflight: set[str] = set()  # being worked on
        self._due: dict[str, float] = {}  # when each delayed message is due
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self._stopping = False

    def submit(self, queue_id: str, state: str = "incoming") -> None:
        """Work on a message now (called after the SMTP side spooled it)."""
        if queue_id in self._known or queue_id in self._inflight:
            return
        self._known.add(queue_id)
        self._ready.put_nowait((state, queue_id))

    def later(self, state: str, queue_id: str, due: float) -> None:
        """Work on a message at ``due`` (a clock time)."""
        self._known.add(queue_id)
        self._due[queue_id] = due
        heapq.heappush(self._delayed, (due, next(self._counter), state, queue_id))
        self._changed.set()

    def resume(self, state: str) -> int:
        """Make every message of ``state`` waiting for a retry due now (what failed them, e.g.
        the store, answers again); return how many."""
        now = self.clock()
        waiting = [
            queue_id
            for due, _, waiting_state, queue_id in self._delayed
            if waiting_state == state and self._due.get(queue_id) == due and due > now
        ]
        for queue_id in waiting:
            self.later(state, queue_id, now)  # the old heap entry is skipped as rescheduled
        return len(waiting)

    def retry_later(self, state: str, queue_id: str) -> None:
        """Work on a message again after ``worker.temporary_failure_retry_seconds``."""
        self.later(state, queue_id, self.clock() + self.settings.temporary_failure_retry_seconds)

    def _scan_disk(self) -> tuple[list[str], list[tuple[str, float]]]:
        """What is on disk to work on (runs in a thread: file system access only)."""
        outgoing: list[tuple[str, float]] = []
        for queue_id in self.spool.ids("outgoing"):
            try:
                outgoing.append((queue_id, self.spool.envelope("outgoing", queue_id).next_attempt))
            except SpoolError:
                outgoing.append((queue_id, 0.0))  # unreadable: processing sets it aside
        return self.spool.ids("incoming"), outgoing

    async def rescan(self) -> None:
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
                self.later("outgoing", queue_id, next_attempt)

    def report_depth(self) -> None:
        """Queue depth per state and the age of the oldest message still waiting in
        ``incoming`` or ``outgoing`` (dead letters wait for the operator, not the queue).
        Runs in a thread."""
        now = self.clock()
        oldest = now
        waiting: dict[str, float] = {}
        for state in (MessageState.INCOMING, MessageState.OUTGOING, MessageState.DEAD):
            ids = self.spool.ids(state)
            self.metrics.set_queue_depth(state, len(ids))
            if state == "dead":
                continue  # given up on: no longer waiting
            # Every id: the copies the policy split makes get later ids but keep the original's
            # received_at, so id order is not acceptance order.
            for queue_id in ids:
                received_at = self._received_at.get(queue_id)
                if received_at is None:
                    try:
                        received_at = self.spool.envelope(state, queue_id).received_at
                    except SpoolError:
                        continue
                waiting[queue_id] = received_at
                oldest = min(oldest, received_at)
        self._received_at = waiting  # an id's received_at never changes: read each file once
        for hook in self.housekeeping:
            hook()
        self.metrics.set_oldest_age(max(0.0, now - oldest))

    async def _loop(self) -> None:
        # Due times are wall-clock times (they are written in the spool); the rescan period is
        # measured on the monotonic clock, so a step of the system clock cannot stop rescans.
        next_scan = 0.0
        while not self._stopping:
            now = self.clock()
            while self._delayed and self._delayed[0][0] <= now:
                due, _, state, queue_id = heapq.heappop(self._delayed)
                if self._due.get(queue_id) != due:
                    continue  # rescheduled meanwhile
                del self._due[queue_id]
                self._ready.put_nowait((state, queue_id))
            if time.monotonic() >= next_scan:
                await self.rescan()
                await asyncio.to_thread(self.report_depth)
                await asyncio.to_thread(self.spool.purge_delivered, self.keep_delivered_seconds)
                next_scan = time.monotonic() + self.settings.rescan_seconds
            wait = next_scan - time.monotonic()
            if self._delayed:
                wait = min(wait, self._delayed[0][0] - now)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(wait, 0.001))

    async def start(self) -> None:
        """Recover the spool and start the schedule and ``concurrency`` workers."""
        await asyncio.to_thread(self.spool.recover)
        self._tasks.append(asyncio.create_task(self._loop(), name="mukaika-scheduler"))
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
                self.retry_later(state, queue_id)
            finally:
                self._busy -= 1
                self.metrics.set_busy_workers(self._busy)

    async def _process(self, state: str, queue_id: str) -> None:
        self._known.discard(queue_id)
        if queue_id in self._inflight:
            return
        self._inflight.add(queue_id)
        try:
            await self.stage(state, queue_id)
        finally:
            self._inflight.discard(queue_id)
