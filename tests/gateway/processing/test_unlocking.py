"""Unlock bookkeeping: attempts counted in the store's quarantine index, and the password
candidates that wait in memory for an encrypted mail still to come."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.evidence.quarantine import QuarantineNotFoundError
from gateway.processing.unlocking import WaitingPasswords
from tests.storekit import quarantine_in


def _stored(directory: Path) -> str:
    with quarantine_in(directory) as quarantine:
        return quarantine.store(
            "Q1",
            b"Subject: x\r\n\r\nbody\r\n",
            client="192.0.2.1",
            helo="mx",
            mail_from="a@example.com",
            rcpt_to=["b@example.lg.jp"],
            received_at=datetime(2026, 12, 3, tzinfo=UTC),
        )


def test_attempts_are_counted_up_to_the_limit(tmp_path: Path) -> None:
    qid = _stored(tmp_path / "quarantine")
    with quarantine_in(tmp_path / "quarantine") as quarantine:
        counts = [quarantine.count_unlock_attempt(qid, 2) for _ in range(3)]
        assert counts == [1, 2, None]
        assert quarantine.get(qid).unlock_attempts == 2
        assert quarantine.get(qid).to_dict()["unlock_attempts"] == 2


def test_unknown_references_are_not_found(tmp_path: Path) -> None:
    _stored(tmp_path / "quarantine")
    with quarantine_in(tmp_path / "quarantine") as quarantine:
        with pytest.raises(QuarantineNotFoundError):
            quarantine.count_unlock_attempt("20261122T020021Z-000000000000", 5)
        with pytest.raises(QuarantineNotFoundError):
            quarantine.count_unlock_attempt("../../etc", 5)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_waiting_candidates_match_sender_and_recipients_within_the_window() -> None:
    clock = _Clock()
    waiting = WaitingPasswords(clock)
    waiting.add("A@example.com", ["x@lg.jp", "y@lg.jp"], ("pw1",), limit=10, window=60)
    assert waiting.matching("a@example.com", ["x@lg.jp"], window=60) == ("pw1",)
    assert waiting.matching("a@example.com", ["z@lg.jp"], window=60) == ()  # not a recipient
    assert waiting.matching("other@example.com", ["x@lg.jp"], window=60) == ()
    clock.now += 61
    assert waiting.matching("a@example.com", ["x@lg.jp"], window=60) == ()  # forgotten
    assert len(waiting) == 0


def test_waiting_mails_are_bounded_the_oldest_forgotten_first() -> None:
    waiting = WaitingPasswords(_Clock())
    for number in range(5):
        waiting.add("a@example.com", ["x@lg.jp"], (f"pw{number}",), limit=3, window=60)
    assert len(waiting) == 3
    assert waiting.matching("a@example.com", ["x@lg.jp"], window=60) == ("pw4", "pw3", "pw2")
    waiting.add("a@example.com", ["x@lg.jp"], ("none",), limit=0, window=60)
    assert len(waiting) == 3  # max_waiting = 0 keeps nothing new
