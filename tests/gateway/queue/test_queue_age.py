"""The oldest-queued-age gauge is the age of the message received first, whatever its id.

A queue id begins with its acceptance time, but the copies the policy split makes get new
(later) ids and keep the original's ``received_at``: the order of ids is not the order of
acceptance. Built in code: spools whose id order and acceptance order disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.configuration.settings import WorkerSettings
from gateway.queue.scheduler import Scheduler
from gateway.queue.spool import Envelope, Spool, new_queue_id


class Gauges:
    def __init__(self) -> None:
        self.depth: dict[str, int] = {}
        self.oldest_age = -1.0

    def set_queue_depth(self, state: str, depth: int) -> None:
        self.depth[state] = depth

    def set_oldest_age(self, seconds: float) -> None:
        self.oldest_age = seconds


NOW = 10_000.0


@pytest.mark.parametrize("copies", [1, 3])
@pytest.mark.parametrize("state", ["incoming", "outgoing"])
def test_a_split_copy_with_a_later_id_counts_from_its_original_time(
    tmp_path: Path, copies: int, state: str
) -> None:
    spool = Spool(tmp_path / "spool")
    # First in id order, but received recently; then copies of a much older message.
    ids = [new_queue_id(now=5_000.0)] + [new_queue_id(now=6_000.0 + n) for n in range(copies)]
    received = [9_000.0] + [1_000.0 + n for n in range(copies)]
    for queue_id, received_at in zip(ids, received, strict=True):
        envelope = Envelope(
            queue_id=queue_id, mail_from="", rcpt_tos=("a@example.lg.jp",), received_at=received_at
        )
        spool.accept(envelope, b"Subject: x\r\n\r\nx\r\n")
        if state == "outgoing":
            spool.move(queue_id, "incoming", "outgoing")
    assert spool.ids(state)[0] == ids[0]  # the premise: id order is not acceptance order
    gauges = Gauges()
    stage: Any = None
    scheduler = Scheduler(
        spool,
        stage,
        settings=WorkerSettings(),
        metrics=gauges,
        keep_delivered_seconds=0,
        clock=lambda: NOW,
    )
    scheduler.report_depth()
    assert gauges.depth[state] == copies + 1
    assert gauges.oldest_age == NOW - 1_000.0
    scheduler.report_depth()  # again, from what it remembered
    assert gauges.oldest_age == NOW - 1_000.0
