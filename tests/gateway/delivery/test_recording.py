"""Delivery states for the quarantine index: written at once while the store answers, kept (the
latest per message, at most a bounded number) while it does not, written in order when it is
back; a store fault never reaches the delivery that records."""

from __future__ import annotations

import errno

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
