"""Delivery states for the quarantine index: written at once while the store answers, kept (the
latest per message, at most a bounded number) while it does not, written in order when it is
back; a store fault never reaches the delivery that records."""

from __future__ import annotations

import asyncio
import errno
import threading

import pytest

from gateway.delivery.recording import DeliveryRecords
from gateway.evidence.quarantine import QuarantineNotFoundError, QuarantineStoreError
from sanitizers.vocabulary import MessageState


class _Index:
    """Stands in for the quarantine: records states, or fails like a store that is away."""

    def __init__(self) -> None:
        self.away = False
        self.written: list[tuple[str, MessageState]] = []
        self.purged: set[str] = set()

    def record_delivery(self, qid: str, state: MessageState) -> None:
        if self.away:
            raise QuarantineStoreError(errno.EIO, "store unreachable")
        if qid in self.purged:
            raise QuarantineNotFoundError(qid)
        self.written.append((qid, state))


async def test_states_are_written_at_once_while_the_store_answers() -> None:
    index = _Index()
    records = DeliveryRecords(index)  # type: ignore[arg-type]
    await records.record("q1", MessageState.DELIVERED)
    await records.record("", MessageState.DELIVERED)  # a message never quarantined: nothing
    assert index.written == [("q1", MessageState.DELIVERED)]
    assert not records.pending


async def test_states_wait_for_the_store_and_are_written_in_order() -> None:
    index = _Index()
    records = DeliveryRecords(index)  # type: ignore[arg-type]
    index.away = True
    await records.record("q1", MessageState.DEFERRED)
    await records.record("q2", MessageState.DELIVERED)
    await records.record("q1", MessageState.DELIVERED)  # the latest state of q1 wins
    assert index.written == []
    assert list(records.pending.items()) == [
        ("q2", MessageState.DELIVERED),
        ("q1", MessageState.DELIVERED),
    ]
    index.away = False
    index.purged.add("q2")  # purged meanwhile: dropped, not retried forever
    await records.flush()
    assert index.written == [("q1", MessageState.DELIVERED)]
    assert not records.pending


async def test_an_outage_of_any_length_keeps_a_bounded_number_of_states(
    caplog: pytest.LogCaptureFixture,
) -> None:
    index = _Index()
    records = DeliveryRecords(index, max_pending=3)  # type: ignore[arg-type]
    index.away = True
    for n in range(5):
        await records.record(f"q{n}", MessageState.DELIVERED)
    assert list(records.pending) == ["q2", "q3", "q4"]
    assert "q0: delivery state delivered dropped" in caplog.text


async def test_concurrent_deliveries_write_each_state_once() -> None:
    """Many deliveries finishing at once (the worker's concurrency): each state is written
    once, not once per delivery that flushes while another write is under way."""
    index = _Index()
    started, release = threading.Event(), threading.Event()
    record_delivery = index.record_delivery

    def slow(qid: str, state: MessageState) -> None:
        started.set()
        release.wait(30)
        record_delivery(qid, state)

    index.record_delivery = slow  # type: ignore[method-assign]
    records = DeliveryRecords(index)  # type: ignore[arg-type]
    first = asyncio.create_task(records.record("q0", MessageState.DELIVERED))
    await asyncio.to_thread(started.wait, 30)  # q0's write is under way
    others = [
        asyncio.create_task(records.record(f"q{n}", MessageState.DELIVERED)) for n in range(1, 8)
    ]
    await asyncio.sleep(0)  # every other delivery has asked to flush
    release.set()
    await asyncio.gather(first, *others)
    assert sorted(qid for qid, _ in index.written) == [f"q{n}" for n in range(8)]
    assert not records.pending
