"""k of n approval in the store: each approver's approval recorded once, the decision approved
when the k-th is in (also when two approve at the same moment), never before; on SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.configuration.settings import StoreSettings
from gateway.evidence.quarantine import Quarantine
from gateway.store import Store
from gateway.store.workflow import (
    ALREADY,
    Decision,
    StateConflict,
    add_approval,
    approvals_of,
    decide,
    open_decision,
    open_decision_of,
)
from sanitizers.report import Report
from sanitizers.vocabulary import MessageState, Reason, RequestKind, RequestState, Verdict
from tests.storekit import migrated_store

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)


def _pending(store: Store, directory: Path) -> Decision:
    quarantine = Quarantine(directory, store=store)
    qid = quarantine.store(
        "Q1",
        b"Subject: x\r\n\r\n621498320257\r\n",
        client="127.0.0.1",
        helo="lgwan",
        mail_from="taro@city.example.lg.jp",
        rcpt_to=["partner@example.com"],
        received_at=NOW,
    )
    quarantine.record_result(qid, Report(verdict=Verdict.HOLD, reasons=[Reason.PERSONAL_NUMBER]))
    quarantine.record_delivery(qid, MessageState.HELD)
    return open_decision(
        store,
        qid,
        kind=RequestKind.OUTBOUND,
        actor="taro@city.example.lg.jp",
        reason="personal_number",
        now=NOW,
        allowed_from=(MessageState.HELD,),
        approved=False,
        expires_at=LATER,
    )


def test_the_kth_approval_approves_and_each_is_recorded_once(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    with migrated_store(tmp_path, settings=store_settings) as store:
        pending = _pending(store, tmp_path / "quarantine")
        first, count = add_approval(
            store, pending, approver="a", comment="確認", required=2, expires_at=LATER, now=NOW
        )
        assert (first.state, count) == (RequestState.PENDING, 1)
        with pytest.raises(StateConflict) as again:
            add_approval(
                store, pending, approver="a", comment=None, required=2, expires_at=LATER, now=NOW
            )
        assert again.value.found == ALREADY
        last, count = add_approval(
            store, pending, approver="b", comment=None, required=2, expires_at=LATER, now=NOW
        )
        assert (last.state, last.decided_by, count) == (RequestState.APPROVED, "b", 2)
        assert [(a.approver, a.comment) for a in approvals_of(store, pending.id)] == [
            ("a", "確認"),
            ("b", None),
        ]
        # Decided: no further approval is taken.
        with pytest.raises(StateConflict):
            add_approval(
                store, pending, approver="c", comment=None, required=2, expires_at=LATER, now=NOW
            )


def test_one_denial_after_an_approval_denies(tmp_path: Path, store_settings: StoreSettings) -> None:
    with migrated_store(tmp_path, settings=store_settings) as store:
        pending = _pending(store, tmp_path / "quarantine")
        add_approval(
            store, pending, approver="a", comment=None, required=3, expires_at=LATER, now=NOW
        )
        denied = decide(
            store, pending, approve=False, actor="b", reason="誤送信", expires_at=None, now=NOW
        )
        assert denied.state is RequestState.DENIED
        with pytest.raises(StateConflict):
            add_approval(
                store, pending, approver="c", comment=None, required=3, expires_at=LATER, now=NOW
            )


def test_two_approvals_at_once_are_both_counted(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    with migrated_store(tmp_path, settings=store_settings) as store:
        pending = _pending(store, tmp_path / "quarantine")
        start = threading.Barrier(2)
        counts: list[int] = []

        def approve(name: str) -> None:
            start.wait()
            _, count = add_approval(
                store, pending, approver=name, comment=None, required=2, expires_at=LATER, now=NOW
            )
            counts.append(count)

        threads = [threading.Thread(target=approve, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(counts) == [1, 2]
        assert open_decision_of(store, pending.message) is not None
        assert open_decision_of(store, pending.message).state is RequestState.APPROVED  # type: ignore[union-attr]
