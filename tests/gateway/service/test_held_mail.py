"""The rules of the held-mail workflow, on a real store: who may do what, one decision at a
time, one winner when two act at once, and what serve refuses to carry out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.configuration.config import Config
from gateway.configuration.settings import StoreSettings
from gateway.evidence.quarantine import Quarantine
from gateway.service.held_mail import (
    HeldMail,
    InvalidRequestError,
    NotAllowedError,
    WrongStateError,
)
from gateway.service.identity import acting_user
from gateway.store.users import add_user, change_user
from gateway.store.workflow import history
from sanitizers.report import Report
from sanitizers.vocabulary import MessageState, Reason, UserRole, Verdict
from tests.gateway.relaykit import FakeAudit
from tests.storekit import quarantine_in


@pytest.fixture
def quarantine(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Quarantine]:
    """A quarantine with three users, on each backend of the store (SQLite, PostgreSQL)."""
    with quarantine_in(tmp_path / "quarantine", settings=store_settings) as q:
        store = q.index.store
        add_user(store, "alice", UserRole.OPERATOR, "root")
        add_user(store, "bob", UserRole.APPROVER, "root")
        add_user(store, "carol", UserRole.APPROVER, "root")
        yield q


def _held(q: Quarantine, verdict: Verdict = Verdict.HOLD) -> str:
    qid = q.store(
        "Q1",
        b"Subject: x\r\n\r\nbody\r\n",
        client="192.0.2.1",
        helo="h",
        mail_from="a@example.jp",
        rcpt_to=["b@city.example.lg.jp"],
        received_at=datetime.now(UTC),
    )
    q.record_result(qid, Report(verdict=verdict, reasons=[Reason.ENCRYPTED_ARCHIVE]))
    q.record_delivery(qid, MessageState.HELD if verdict is Verdict.HOLD else MessageState.DELIVERED)
    return qid


def _held_mail(q: Quarantine, **config: object) -> tuple[HeldMail, FakeAudit]:
    audit = FakeAudit()
    return HeldMail(q.index.store, Config.model_validate(config), audit), audit


def test_roles_and_people(quarantine: Quarantine) -> None:
    ref = _held(quarantine)
    held, _ = _held_mail(quarantine)
    with pytest.raises(NotAllowedError, match="not a user"):
        held.release(ref, "mallory")
    change_user(quarantine.index.store, "alice", disabled=True)
    with pytest.raises(NotAllowedError, match="disabled"):
        held.release(ref, "alice")
    change_user(quarantine.index.store, "alice", disabled=False)
    held.request(ref, "alice", "理由")
    with pytest.raises(NotAllowedError, match="not an approver"):
        held.approve(ref, "alice")
    with pytest.raises(WrongStateError):
        held.request(ref, "bob", "again")
    with pytest.raises(InvalidRequestError, match="reason"):
        held.deny(ref, "bob", "  ")
    outcome = held.deny(ref, "bob", "原本は別経路")
    assert outcome.entry.state == MessageState.DENIED
    held.request(ref, "bob", "bob asks")
    with pytest.raises(NotAllowedError, match="another approver"):
        held.approve(ref, "bob")
    with pytest.raises(InvalidRequestError, match="future"):
        held.approve(ref, "carol", expires=datetime.now(UTC) - timedelta(days=1))
    assert held.approve(ref, "carol").entry.state == MessageState.APPROVED
    kinds = [(d.requested_by, d.decided_by, str(d.state)) for d in held.history(ref)]
    assert kinds == [("alice", "bob", "denied"), ("bob", "carol", "approved")]


def test_an_exception_needs_the_scanner_and_part_paths(quarantine: Quarantine) -> None:
    ref = _held(quarantine, Verdict.DELIVER)
    held, _ = _held_mail(quarantine)
    with pytest.raises(NotAllowedError, match="scanner"):
        held.request(ref, "alice", "決裁", parts=["1.2"])
    with pytest.raises(WrongStateError, match="not held"):
        held.release(ref, "alice")  # delivered mail: only an exception applies
    scanning, audit = _held_mail(quarantine, scanner={"enabled": True})
    for bad in ("../1", "1;2", "", "x"):
        with pytest.raises(InvalidRequestError, match="part path"):
            scanning.request(ref, "alice", "決裁", parts=[bad])
    outcome = scanning.request(ref, "alice", "決裁", parts=["1.2", "1.2"])
    assert outcome.decision.parts == ("1.2",)
    assert audit.records[-1]["event"] == "request"


def test_two_releases_at_once_have_one_winner(quarantine: Quarantine) -> None:
    ref = _held(quarantine)
    held, _ = _held_mail(quarantine)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def release() -> None:
        barrier.wait()
        try:
            held.release(ref, "alice")
            results.append("ok")
        except WrongStateError:
            results.append("refused")

    threads = [threading.Thread(target=release) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ok"] + ["refused"] * 7
    assert len(history(quarantine.index.store, ref)) == 1


def test_the_acting_user_is_the_login_sudo_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_USER", "yamada")
    monkeypatch.setenv("SUDO_UID", "4242")
    assert acting_user() == "yamada"
    monkeypatch.setenv("SUDO_UID", "0")  # sudo to oneself: the account itself
    assert acting_user() == "root"
    monkeypatch.delenv("SUDO_USER")
    assert acting_user() == "root"


@pytest.mark.parametrize("role", [UserRole.RECIPIENT, UserRole.AUDITOR, UserRole.ADMIN])
def test_roles_without_the_release_permission_are_refused(
    quarantine: Quarantine, role: UserRole
) -> None:
    """The console's roles reach the same functions: none of them releases or decides (a
    recipient asks only for mail to their own addresses: test_selfservice.py)."""
    ref = _held(quarantine)
    add_user(quarantine.index.store, "dave", role, "root")
    held, audit = _held_mail(quarantine)
    with pytest.raises(NotAllowedError, match="may not release"):
        held.release(ref, "dave")
    with pytest.raises(NotAllowedError, match=r"may not release|their own addresses"):
        held.request(ref, "dave", "理由")
    held.request(ref, "alice", "理由")
    with pytest.raises(NotAllowedError, match="not an approver"):
        held.approve(ref, "dave")
    assert [r["actor"] for r in audit.records] == ["alice"]
