"""serve's side of a release, alone: what it refuses to carry out, what it leaves for later,
and that a copy is never spooled twice for one decision."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from gateway.configuration.config import Config
from gateway.configuration.settings import StoreSettings
from gateway.evidence.quarantine import Quarantine
from gateway.queue.spool import Spool
from gateway.service.held_mail import HeldMail
from gateway.service.releasing import Releasing, release_queue_id, terms_for
from gateway.store.schema import messages, requests
from gateway.store.users import add_user
from gateway.store.workflow import due, history
from sanitizers.report import Report
from sanitizers.senderauth import AuthAction, AuthOutcome, MethodResult
from sanitizers.vocabulary import MessageState, Reason, RequestState, UserRole, Verdict
from tests.gateway.relaykit import FakeAudit, FakeSanitizer
from tests.storekit import quarantine_in


class _Scheduler:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, str]] = []

    def submit(self, queue_id: str, state: str = "incoming") -> None:
        self.submitted.append((queue_id, state))


@pytest.fixture
def quarantine(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Quarantine]:
    """A quarantine with two users, on each backend of the store (SQLite, PostgreSQL)."""
    with quarantine_in(tmp_path / "quarantine", settings=store_settings) as q:
        add_user(q.index.store, "alice", UserRole.OPERATOR, "root")
        add_user(q.index.store, "bob", UserRole.APPROVER, "root")
        yield q


def _held(q: Quarantine, reasons: list[Reason]) -> str:
    qid = q.store(
        "Q1",
        b"Subject: x\r\n\r\nbody\r\n",
        client="192.0.2.1",
        helo="h",
        mail_from="a@example.jp",
        rcpt_to=["b@city.example.lg.jp"],
        received_at=datetime.now(UTC),
    )
    q.record_result(qid, Report(verdict=Verdict.HOLD, reasons=reasons))
    q.record_delivery(qid, MessageState.HELD)
    return qid


def _releasing(
    q: Quarantine, tmp_path: Path, sanitizer: Any, **config: Any
) -> tuple[Releasing, Spool, _Scheduler, Config]:
    settings = Config.model_validate(config)
    spool = Spool(tmp_path / "spool")
    scheduler = _Scheduler()
    releasing = Releasing(
        q.index.store,
        q,
        sanitizer,
        spool,
        scheduler,  # type: ignore[arg-type]
        FakeAudit(),
        settings,
        rules=lambda: None,
    )
    return releasing, spool, scheduler, settings


async def test_an_expired_exception_is_not_carried_out(
    quarantine: Quarantine, tmp_path: Path
) -> None:
    ref = _held(quarantine, [Reason.ENCRYPTED_ARCHIVE])
    config = {"scanner": {"enabled": True}}
    held = HeldMail(quarantine.index.store, Config.model_validate(config), FakeAudit())
    held.request(ref, "alice", "決裁", parts=["1.2"])
    held.approve(ref, "bob", expires=datetime.now(UTC) + timedelta(seconds=30))
    with quarantine.index.store.writing() as db:  # time passes: the approval runs out
        db.execute(update(requests).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    sanitizer = FakeSanitizer()
    releasing, spool, _, _ = _releasing(quarantine, tmp_path, sanitizer, **config)
    assert await releasing.carry_out_due() == 1
    assert sanitizer.calls == []
    assert spool.ids("outgoing") == []
    (decision,) = history(quarantine.index.store, ref)
    assert (decision.state, decision.outcome) == (RequestState.FAILED, "the approval expired")
    assert quarantine.get(ref).state == MessageState.HELD


async def test_a_scanner_outage_leaves_the_release_for_later(
    quarantine: Quarantine, tmp_path: Path
) -> None:
    ref = _held(quarantine, [Reason.ENCRYPTED_ARCHIVE])
    HeldMail(quarantine.index.store, Config(), FakeAudit()).release(ref, "alice")
    sanitizer = FakeSanitizer(["temporary"])
    releasing, spool, scheduler, _ = _releasing(quarantine, tmp_path, sanitizer)
    assert await releasing.carry_out_due() == 0
    assert quarantine.get(ref).state == MessageState.APPROVED
    assert await releasing.carry_out_due() == 1
    assert quarantine.get(ref).state == MessageState.RELEASED
    assert [q for q, _ in scheduler.submitted] == spool.ids("outgoing")
    assert spool.envelope("outgoing", spool.ids("outgoing")[0]).release == 1


async def test_a_crash_after_spooling_never_spools_twice(
    quarantine: Quarantine, tmp_path: Path
) -> None:
    ref = _held(quarantine, [Reason.ENCRYPTED_ARCHIVE])
    HeldMail(quarantine.index.store, Config(), FakeAudit()).release(ref, "alice")
    (decision,) = due(quarantine.index.store, 10)
    releasing, spool, _, _ = _releasing(quarantine, tmp_path, FakeSanitizer())
    # As if serve had spooled the copy and died before recording it: the same id is found.
    assert await releasing.carry_out(decision)
    first = spool.ids("outgoing")
    assert first == [release_queue_id(decision, 0)]
    spool.move(first[0], "outgoing", "delivered")  # and delivered it
    with quarantine.index.store.writing() as db:
        db.execute(update(requests).values(state=str(RequestState.APPROVED)))
        db.execute(update(messages).values(state=str(MessageState.APPROVED)))
    assert await releasing.carry_out(decision)
    assert spool.ids("outgoing") == []  # found in delivered: not spooled again
    assert quarantine.get(ref).state == MessageState.RELEASED


def test_text_only_unless_every_limit_that_held_it_was_raised(quarantine: Quarantine) -> None:
    ref = _held(quarantine, [Reason.LIMIT_PARTS, Reason.LIMIT_TIME, Reason.LIMIT_PIXELS])
    held = HeldMail(quarantine.index.store, Config(), FakeAudit())
    decision = held.release(ref, "alice", raised_limits={"max_parts": 1000}).decision
    reasons = quarantine.get(ref).reasons
    assert terms_for(decision, reasons).text_only  # limit_time was not raised
    both = replace(decision, raised_limits={"max_parts": 1000, "seconds": 60})
    assert not terms_for(both, reasons).text_only  # limit_pixels holds no message by itself
    assert terms_for(replace(decision, raised_limits={}), []).text_only is False


async def test_a_copy_is_rebuilt_with_the_sender_authentication_found_before_the_250(
    quarantine: Quarantine, tmp_path: Path
) -> None:
    held = AuthOutcome("gw.test", (MethodResult("dmarc", "fail"),), AuthAction.HOLD)
    qid = quarantine.store(
        "Q2",
        b"From: a@quarantined.co.jp\r\n\r\nbody\r\n",
        client="192.0.2.1",
        helo="h",
        mail_from="a@quarantined.co.jp",
        rcpt_to=["b@city.example.lg.jp"],
        received_at=datetime.now(UTC),
    )
    report = Report(verdict=Verdict.HOLD, reasons=[Reason.DMARC_QUARANTINE], auth=held.to_dict())
    quarantine.record_result(qid, report)
    quarantine.record_delivery(qid, MessageState.HELD)
    HeldMail(quarantine.index.store, Config(), FakeAudit()).release(qid, "alice")
    sanitizer = FakeSanitizer()
    releasing, _, _, _ = _releasing(quarantine, tmp_path, sanitizer)
    assert await releasing.carry_out_due() == 1
    # The same results; the hold the operator lifted is a warning to the recipient now.
    assert sanitizer.auths == [held.released()]
    assert held.released().action is AuthAction.WARN
    assert held.released().results == held.results
