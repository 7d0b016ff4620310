"""The scheduler alone: due times, the rescan that picks up ``queue retry``, deferring a stage
that fails unexpectedly, and the queue gauges. Driven over a real spool in a temporary
directory with a settable clock; the stage is a recorder, no SMTP, no pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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


def make(tmp_path: Path, stage: Recorder, clock: Clock) -> tuple[Scheduler, Spool, GaugeMetrics]:
    spool = Spool(tmp_path / "spool")
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
    stage.spool = spool
    return scheduler, spool, metrics


@pytest.fixture
async def running() -> AsyncIterator[list[Scheduler]]:
    started: list[Scheduler] = []
    yield started
    for scheduler in started:
        await scheduler.stop(5.0)


async def rescans(metrics: GaugeMetrics, n: int = 2) -> None:
    """Wait until the scheduler has gone over the spool ``n`` more times."""
    target = metrics.reports + n
    await wait_until(lambda: metrics.reports >= target)


# --- the queue gauges ---------------------------------------------------------------------


@pytest.mark.parametrize("state", ["incoming", "outgoing"])
def test_a_message_waiting_two_hours_shows_in_the_oldest_age_gauge(
    tmp_path: Path, state: str
) -> None:
    clock = Clock()
    scheduler, spool, metrics = make(tmp_path, Recorder(), clock)
    spooled(spool, state, received_at=clock.now - 7200)
    spooled(spool, state, received_at=clock.now - 60)
    scheduler.report_depth()
    assert metrics.oldest_age is not None
    assert metrics.oldest_age >= 7200
    assert metrics.depth == {"incoming": 0, "outgoing": 0, "dead": 0} | {state: 2}


def test_the_oldest_age_is_the_oldest_over_incoming_and_outgoing(tmp_path: Path) -> None:
    clock = Clock()
    scheduler, spool, metrics = make(tmp_path, Recorder(), clock)
    spooled(spool, "incoming", received_at=clock.now - 300)
    spooled(spool, "outgoing", received_at=clock.now - 5000)
    scheduler.report_depth()
    assert metrics.oldest_age == 5000


def test_dead_letters_and_an_empty_queue_give_an_age_of_zero(tmp_path: Path) -> None:
    clock = Clock()
    scheduler, spool, metrics = make(tmp_path, Recorder(), clock)
    scheduler.report_depth()
    assert metrics.oldest_age == 0
    spooled(spool, "dead", received_at=clock.now - 86400)  # waits for the operator
    scheduler.report_depth()
    assert metrics.oldest_age == 0
    assert metrics.depth["dead"] == 1


def test_housekeeping_runs_with_every_report(tmp_path: Path) -> None:
    calls: list[str] = []
    spool = Spool(tmp_path / "spool")
    scheduler = Scheduler(
        spool,
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


async def test_a_submitted_message_is_worked_on_at_once(
    tmp_path: Path, running: list[Scheduler]
) -> None:
    stage = Recorder()
    scheduler, _, _ = make(tmp_path, stage, Clock())
    await scheduler.start()
    running.append(scheduler)
    scheduler.submit("20270115000000-0000000001")
    scheduler.submit("20270115000000-0000000001")  # already scheduled: once
    await wait_until(lambda: len(stage.jobs) >= 1)
    assert stage.jobs == [("incoming", "20270115000000-0000000001")]


async def test_a_delayed_message_waits_for_its_due_time(
    tmp_path: Path, running: list[Scheduler]
) -> None:
    clock = Clock()
    stage = Recorder()
    scheduler, _, metrics = make(tmp_path, stage, clock)
    await scheduler.start()
    running.append(scheduler)
    scheduler.later("outgoing", "20270115000000-00000000aa", clock.now + 600)
    scheduler.later("outgoing", "20270115000000-00000000bb", clock.now + 1200)
    await rescans(metrics)
    assert stage.jobs == []
    clock.now += 600
    await wait_until(lambda: len(stage.jobs) >= 1)
    await rescans(metrics)
    assert stage.jobs == [("outgoing", "20270115000000-00000000aa")]
    clock.now += 600
    await wait_until(lambda: len(stage.jobs) >= 2)
    assert stage.jobs[1] == ("outgoing", "20270115000000-00000000bb")


async def test_a_rescheduled_message_runs_at_its_new_time_only(
    tmp_path: Path, running: list[Scheduler]
) -> None:
    clock = Clock()
    stage = Recorder()
    scheduler, _, metrics = make(tmp_path, stage, clock)
    await scheduler.start()
    running.append(scheduler)
    scheduler.later("outgoing", "20270115000000-00000000aa", clock.now + 100)
    scheduler.later("outgoing", "20270115000000-00000000aa", clock.now + 900)
    clock.now += 100
    await rescans(metrics)
    assert stage.jobs == []
    clock.now += 800
    await wait_until(lambda: len(stage.jobs) >= 1)
    await rescans(metrics)
    assert stage.jobs == [("outgoing", "20270115000000-00000000aa")]


# --- the spool on disk is the truth -------------------------------------------------------


async def test_start_picks_up_what_is_on_disk(tmp_path: Path, running: list[Scheduler]) -> None:
    clock = Clock()
    stage = Recorder()
    scheduler, spool, metrics = make(tmp_path, stage, clock)
    waiting = spooled(spool, "incoming", received_at=clock.now - 10)
    due = spooled(spool, "outgoing", received_at=clock.now - 10, next_attempt=clock.now - 1)
    later = spooled(spool, "outgoing", received_at=clock.now - 10, next_attempt=clock.now + 3600)
    spooled(spool, "dead", received_at=clock.now - 10)
    await scheduler.start()
    running.append(scheduler)
    await wait_until(lambda: len(stage.jobs) >= 2)
    await rescans(metrics)
    assert sorted(stage.jobs) == [("incoming", waiting), ("outgoing", due)]
    clock.now += 3600
    await wait_until(lambda: len(stage.jobs) >= 3)
    assert stage.jobs[2] == ("outgoing", later)


async def test_queue_retry_on_disk_is_picked_up_by_the_next_rescan(
    tmp_path: Path, running: list[Scheduler], capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    stage = Recorder()
    scheduler, spool, metrics = make(tmp_path, stage, clock)
    deferred = spooled(spool, "outgoing", received_at=clock.now, next_attempt=clock.now + 3600)
    await scheduler.start()
    running.append(scheduler)
    await rescans(metrics)
    assert stage.jobs == []
    assert await asyncio.to_thread(_retry, spool, deferred) == 0  # `mukaika queue retry ID`
    assert "due now" in capsys.readouterr().out
    await wait_until(lambda: len(stage.jobs) >= 1)
    clock.now += 3600  # the forgotten old schedule does not run it a second time
    await rescans(metrics)
    assert stage.jobs == [("outgoing", deferred)]


async def test_a_stage_that_fails_unexpectedly_is_deferred_not_dropped(
    tmp_path: Path, running: list[Scheduler]
) -> None:
    clock = Clock()
    stage = Recorder(failures=1)
    scheduler, _, metrics = make(tmp_path, stage, clock)
    await scheduler.start()
    running.append(scheduler)
    scheduler.submit("20270115000000-00000000cc")
    await wait_until(lambda: len(stage.jobs) >= 1)
    await rescans(metrics)
    assert len(stage.jobs) == 1  # not retried at once
    clock.now += 60  # worker.temporary_failure_retry_seconds
    await wait_until(lambda: len(stage.jobs) >= 2)
    assert stage.jobs == [("incoming", "20270115000000-00000000cc")] * 2
