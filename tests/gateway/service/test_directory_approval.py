"""Outbound approval from the directory: a held outbound mail of a sender in 税務課 is decided
only by 税務課's approver, never by another group's, never by the sender; the directory's
groups win over [[outbound.groups]] once it has any. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.configuration.config import Config
from gateway.configuration.settings import StoreSettings
from gateway.evidence.audit import AuditLog
from gateway.evidence.quarantine import Quarantine
from gateway.service.held_mail import (
    HeldMail,
    NotAllowedError,
    approvals_required,
    outbound_approval_problem,
)
from gateway.store import Store
from gateway.store.directory import Person, apply_import
from gateway.store.workflow import open_decision
from sanitizers.report import Report
from sanitizers.vocabulary import MessageState, Reason, RequestKind, RequestState, UserRole, Verdict
from tests.storekit import quarantine_in

SENDER = "suzuki@city.example.lg.jp"
DIRECTORY = [
    Person("tanaka", UserRole.APPROVER, ("tanaka@city.example.lg.jp",), ("税務課",)),
    Person("suzuki", UserRole.RECIPIENT, (SENDER,), ("税務課",)),
    Person("sato", UserRole.APPROVER, ("sato@city.example.lg.jp",), ("総務課",)),
    Person("ito", UserRole.APPROVER, ("ito@city.example.lg.jp",), ("税務課",)),
]
# What the configuration says without a directory: sato approves everyone's mail.
CONFIG = Config.model_validate(
    {"outbound": {"groups": [{"name": "全庁", "senders": ["city.example.lg.jp"],
                              "approvers": ["sato"]}]}}
)  # fmt: skip


def _held_outbound(quarantine: Quarantine, store: Store) -> str:
    now = datetime.now(UTC)
    qid = quarantine.store(
        "Q1",
        b"From: suzuki@city.example.lg.jp\r\nSubject: x\r\n\r\n\xe5\x80\x8b\xe4\xba\xba\r\n",
        client="127.0.0.1",
        helo="lgwan",
        mail_from=SENDER,
        rcpt_to=["a@example.com"],
        received_at=now,
    )
    quarantine.record_result(qid, Report(verdict=Verdict.HOLD, reasons=[Reason.PERSONAL_NUMBER]))
    quarantine.record_delivery(qid, MessageState.HELD)
    open_decision(
        store, qid, kind=RequestKind.OUTBOUND, actor=SENDER, reason="personal_number", now=now,
        allowed_from=(MessageState.HELD,), approved=False, expires_at=now + timedelta(days=1),
    )  # fmt: skip
    return qid


def test_only_the_approver_of_the_senders_group_approves(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    with (
        quarantine_in(tmp_path / "quarantine", settings=store_settings) as quarantine,
        AuditLog(tmp_path / "audit.jsonl") as audit,
    ):
        store = quarantine.index.store
        qid = _held_outbound(quarantine, store)
        held = HeldMail(store, CONFIG, audit)
        # Without a directory, [[outbound.groups]] decides: sato may.
        assert outbound_approval_problem(CONFIG, "sato", SENDER, store) is None
        apply_import(store, DIRECTORY, source="csv", actor="admin")
        # With one, the directory wins: sato approves for 総務課 only.
        with pytest.raises(
            NotAllowedError, match=r"not an approver of the sender's group \(税務課\)"
        ):
            held.approve(qid, "sato")
        outcome = held.approve(qid, "tanaka")
        assert outcome.decision.state is RequestState.APPROVED
        assert outcome.decision.decided_by == "tanaka"


def test_never_ones_own_mail_unless_the_directory_allows_it(tmp_path: Path) -> None:
    with quarantine_in(tmp_path / "quarantine") as quarantine:
        store = quarantine.index.store
        people = [*DIRECTORY[:1], Person("suzuki", UserRole.APPROVER, (SENDER,), ("税務課",))]
        apply_import(store, people, source="csv", actor="admin")
        assert "may not approve their own mail" in str(
            outbound_approval_problem(CONFIG, "suzuki", SENDER, store)
        )
        allowed = Config.model_validate({"directory": {"self_approval": True}})
        assert outbound_approval_problem(allowed, "suzuki", SENDER, store) is None
        # A sender in no group of the directory: any approver, never the sender.
        assert outbound_approval_problem(CONFIG, "tanaka", "x@city.example.lg.jp", store) is None


def test_k_of_n_for_the_directorys_groups_comes_from_directory_approvals_required(
    tmp_path: Path,
) -> None:
    # [[outbound.groups]] asks for two, but it is not read once the directory has groups.
    two_in_config = Config.model_validate(
        {"outbound": {"groups": [{"name": "全庁", "senders": ["city.example.lg.jp"],
                                  "approvers": ["sato", "ito"], "approvals_required": 2}]}}
    )  # fmt: skip
    two_in_directory = Config.model_validate({"directory": {"approvals_required": 2}})
    with (
        quarantine_in(tmp_path / "quarantine") as quarantine,
        AuditLog(tmp_path / "audit.jsonl") as audit,
    ):
        store = quarantine.index.store
        apply_import(store, DIRECTORY, source="csv", actor="admin")
        assert approvals_required(two_in_config, SENDER, store) == 1
        assert approvals_required(two_in_directory, "x@city.example.lg.jp", store) == 1
        qid = _held_outbound(quarantine, store)
        held = HeldMail(store, two_in_directory, audit)
        first = held.approve(qid, "tanaka")
        assert first.decision.state is RequestState.PENDING  # one of two
        second = held.approve(qid, "ito")  # the other approver of 税務課
        assert second.decision.state is RequestState.APPROVED
