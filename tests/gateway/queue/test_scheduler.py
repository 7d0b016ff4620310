"""The scheduler alone: due times, the rescan that picks up ``queue retry``, deferring a stage
that fails unexpectedly, and the queue gauges. Driven over a real spool in a temporary
directory with a settable clock; the stage is a recorder, no SMTP, no pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.cli.queue import _retry
from gateway.configuration.settings import WorkerSettings
from gateway.queue.scheduler import Scheduler
from gateway.queue.spool import Envelope, Spool, new_queue_id
from tests.gateway.relaykit import wait_until

START = 1_800_000_000.0  # the settable clock's start (2027-01-15)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class GaugeMetrics:
    """Keeps the gauges the scheduler sets; counts the rescans (one depth report each)."""

    def __init__(self) -> None:
        self.depth: dict[str, int] = {}
        self.oldest_age: float | None = None
        self.reports = 0

    def set_queue_depth(self, state: str, n: int) -> None:
        self.depth[state] = n

    def set_oldest_age(self, seconds: float) -> None:
        self.oldest_age = seconds
        self.reports += 1

    def set_busy_workers(self, n: int) -> None:
        return None


class Recorder:
    """The stage: records each job and, like a real stage, moves a spooled message on (to
    ``delivered``); fails the first ``failures`` jobs with a bug-like error."""

    def __init__(self, failures: int = 0) -> None:
        self.jobs: list[tuple[str, str]] = []
        self.failures = failures
        self.spool: Spool | None = None

    async def __call__(self, state: str, queue_id: str) -> None:
        self.jobs.append((state, queue_id))
        if self.failures:
            self.failures -= 1
            raise RuntimeError("a bug in a stage")
        if self.spool is not None and self.spool.find(queue_id) == state:
            await asyncio.to_thread(self.spool.move, queue_id, state, "delivered")


def spooled(spool: Spool, state: str, *, received_at: float, next_attempt: float = 0.0) -> str:
    queue_id = new_queue_id(received_at)
    envelope = Envelope(
        queue_id=queue_id,
        mail_from="a@example.com",
        rcpt_tos=("u@example.lg.jp",),
        received_at=received_at,
        next_attempt=next_attempt,
    )
    spool.accept(envelope, b"Subject: x\r\n\r\nbody\r\n")
    if state != "incoming":
        spool.move(queue_id, "incoming", state)
    return queue_id


@dataclass
class Bench:
    """A scheduler over a real spool, its settable clock, recording stage and gauges."""

    scheduler: Scheduler
    spool: Spool
    metrics: GaugeMetrics
    clock: Clock
    stage: Recorder
    started: bool = False

    async def start(self) -> None:
        await self.scheduler.start()
        self.started = True


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    clock, stage = Clock(), Recorder()
    spool = Spool(tmp_path / "spool")
    stage.spool = spool
    metrics = GaugeMetrics()
    settings = WorkerSettings(
        concurrency=2, rescan_seconds=0.02, temporary_failure_retry_seconds=60.0
    )
    scheduler = Scheduler(
        spool,
        stage,
        settings=settings,
        metrics=metrics,
        keep_delivered_seconds=86400.0,
        clock=clock,
    )
    made = Bench(scheduler, spool, metrics, clock, stage)
    yield made
    if made.started:
        await scheduler.stop(5.0)


async def rescans(metrics: GaugeMetrics, n: int = 2) -> None:
    """Wait until the scheduler has gone over the spool ``n`` more times."""
    target = metrics.reports + n
    await wait_until(lambda: metrics.reports >= target)


# --- the queue gauges ---------------------------------------------------------------------


@pytest.mark.parametrize("state", ["incoming", "outgoing"])
def test_a_message_waiting_two_hours_shows_in_the_oldest_age_gauge(
    bench: Bench, state: str
) -> None:
    spooled(bench.spool, state, received_at=bench.clock.now - 7200)
    spooled(bench.spool, state, received_at=bench.clock.now - 60)
    bench.scheduler.report_depth()
    assert bench.metrics.oldest_age is not None
    assert bench.metrics.oldest_age >= 7200
    assert bench.metrics.depth == {"incoming": 0, "outgoing": 0, "dead": 0} | {state: 2}


def test_the_oldest_age_is_the_oldest_over_incoming_and_outgoing(bench: Bench) -> None:
    spooled(bench.spool, "incoming", received_at=bench.clock.now - 300)
    spooled(bench.spool, "outgoing", received_at=bench.clock.now - 5000)
    bench.scheduler.report_depth()
    assert bench.metrics.oldest_age == 5000


def test_dead_letters_and_an_empty_queue_give_an_age_of_zero(bench: Bench) -> None:
    bench.scheduler.report_depth()
    assert bench.metrics.oldest_age == 0
    spooled(bench.spool, "dead", received_at=bench.clock.now - 86400)  # for the operator
    bench.scheduler.report_depth()
    assert bench.metrics.oldest_age == 0
    assert bench.metrics.depth["dead"] == 1


def test_housekeeping_runs_with_every_report(tmp_path: Path) -> None:
    calls: list[str] = []
    scheduler = Scheduler(
        Spool(tmp_path / "spool"),
        Recorder(),
        settings=WorkerSettings(),
        metrics=GaugeMetrics(),
        keep_delivered_seconds=1.0,
        housekeeping=[lambda: calls.append("expired exceptions")],
    )
    scheduler.report_depth()
    scheduler.report_depth()
    assert calls == ["expired exceptions"] * 2


# --- due times ------------------------------------------------------------------------------

ID_A = "20270115000000-00000000aa"
ID_B = "20270115000000-00000000bb"


async def test_a_submitted_message_is_worked_on_at_once(bench: Bench) -> None:
    await bench.start()
    bench.scheduler.submit(ID_A)
    bench.scheduler.submit(ID_A)  # already scheduled: once
    await wait_until(lambda: len(bench.stage.jobs) >= 1)
    await rescans(bench.metrics)
    assert bench.stage.jobs == [("incoming", ID_A)]


async def test_a_delayed_message_waits_for_its_due_time(bench: Bench) -> None:
    await bench.start()
    bench.scheduler.later("outgoing", ID_A, bench.clock.now + 600)
    bench.scheduler.later("outgoing", ID_B, bench.clock.now + 1200)
    await rescans(bench.metrics)
    assert bench.stage.jobs == []
    bench.clock.now += 600
    await wait_until(lambda: len(bench.stage.jobs) >= 1)
    await rescans(bench.metrics)
    assert bench.stage.jobs == [("outgoing", ID_A)]
    bench.clock.now += 600
    await wait_until(lambda: len(bench.stage.jobs) >= 2)
    assert bench.stage.jobs[1] == ("outgoing", ID_B)


async def test_a_rescheduled_message_runs_at_its_new_time_only(bench: Bench) -> None:
    await bench.start()
    bench.scheduler.later("outgoing", ID_A, bench.clock.now + 100)
    bench.scheduler.later("outgoing", ID_A, bench.clock.now + 900)
    bench.clock.now += 100
    await rescans(bench.metrics)
    assert bench.stage.jobs == []
    bench.clock.now += 800
    await wait_until(lambda: len(bench.stage.jobs) >= 1)
    await rescans(bench.metrics)
    assert bench.stage.jobs == [("outgoing", ID_A)]


# --- the spool on disk is the truth -------------------------------------------------------


async def test_start_picks_up_what_is_on_disk(bench: Bench) -> None:
    now = bench.clock.now
    waiting = spooled(bench.spool, "incoming", received_at=now - 10)
    due = spooled(bench.spool, "outgoing", received_at=now - 10, next_attempt=now - 1)
    later = spooled(bench.spool, "outgoing", received_at=now - 10, next_attempt=now + 3600)
    spooled(bench.spool, "dead", received_at=now - 10)
    await bench.start()
    await wait_until(lambda: len(bench.stage.jobs) >= 2)
    await rescans(bench.metrics)
    assert sorted(bench.stage.jobs) == [("incoming", waiting), ("outgoing", due)]
    bench.clock.now += 3600
    await wait_until(lambda: len(bench.stage.jobs) >= 3)
    assert bench.stage.jobs[2] == ("outgoing", later)


async def test_queue_retry_on_disk_is_picked_up_by_the_next_rescan(
    bench: Bench, capsys: pytest.CaptureFixture[str]
) -> None:
    now = bench.clock.now
    deferred = spooled(bench.spool, "outgoing", received_at=now, next_attempt=now + 3600)
    await bench.start()
    await rescans(bench.metrics)
    assert bench.stage.jobs == []
    await asyncio.to_thread(_retry, bench.spool, deferred)  # `mukaika queue retry ID`
    assert "due now" in capsys.readouterr().out
    await wait_until(lambda: len(bench.stage.jobs) >= 1)
    bench.clock.now += 3600  # the forgotten old schedule does not run it a second time
    await rescans(bench.metrics)
    assert bench.stage.jobs == [("outgoing", deferred)]


async def test_a_stage_that_fails_unexpectedly_is_deferred_not_dropped(bench: Bench) -> None:
    bench.stage.failures = 1
    await bench.start()
    bench.scheduler.submit(ID_A)
    await wait_until(lambda: len(bench.stage.jobs) >= 1)
    await rescans(bench.metrics)
    assert len(bench.stage.jobs) == 1  # not retried at once
    bench.clock.now += 60  # worker.temporary_failure_retry_seconds
    await wait_until(lambda: len(bench.stage.jobs) >= 2)
    assert bench.stage.jobs == [("incoming", ID_A)] * 2


async def test_resume_takes_up_at_once_what_waits_for_a_retry_in_that_state(bench: Bench) -> None:
    """The store answers again: mail its outage deferred before quarantining is taken up now,
    not after temporary_failure_retry_seconds; mail waiting in another state keeps its time."""
    bench.stage.failures = 1
    incoming = spooled(bench.spool, "incoming", received_at=bench.clock.now)
    later = bench.clock.now + 600
    outgoing = spooled(bench.spool, "outgoing", received_at=bench.clock.now, next_attempt=later)
    await bench.start()
    await wait_until(lambda: len(bench.stage.jobs) == 1)  # failed: due again in 60 s
    await rescans(bench.metrics)
    assert bench.stage.jobs == [("incoming", incoming)]
    assert bench.scheduler.resume("incoming") == 1
    await wait_until(lambda: len(bench.stage.jobs) == 2)
    assert bench.stage.jobs[-1] == ("incoming", incoming)
    await rescans(bench.metrics)
    assert ("outgoing", outgoing) not in bench.stage.jobs
    assert bench.scheduler.resume("incoming") == 0
