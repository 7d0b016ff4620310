"""A recipient who asked for a release is told by mail, through the LGWAN-side MTA, when an
approver decided: approved (once serve carried it out) or denied (with the comment); once per
decision, never for an operator's own release; a notice that cannot be sent is audited."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest

from gateway.configuration.config import Config
from gateway.configuration.settings import StoreSettings
from gateway.evidence.quarantine import Quarantine
from gateway.queue.spool import Spool
from gateway.service.decision_notices import DecisionNotices
from gateway.service.held_mail import HeldMail
from gateway.service.releasing import Releasing
from gateway.store.users import add_user
from gateway.store.workflow import history
from sanitizers.report import Report
from sanitizers.vocabulary import MessageState, Reason, RequestState, UserRole, Verdict
from tests.gateway.relaykit import Delivered, FakeAudit, FakeSanitizer, Sink, free_port
from tests.storekit import quarantine_in

NOTICE_FROM = "mukaika-notice@gw.test"


class _Scheduler:
    def submit(self, queue_id: str, state: str = "incoming") -> None:
        return None


@pytest.fixture
def quarantine(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Quarantine]:
    with quarantine_in(tmp_path / "quarantine", settings=store_settings) as q:
        store = q.index.store
        add_user(store, "oto", UserRole.OPERATOR, "root")
        add_user(store, "aki", UserRole.APPROVER, "root")
        add_user(store, "rin", UserRole.RECIPIENT, "root", addresses=("rin@city.example.lg.jp",))
        yield q


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    relay = await Sink().start()
    yield relay
    await relay.stop()


def _held(q: Quarantine) -> str:
    qid = q.store(
        "Q1",
        b"Subject: x\r\n\r\nbody\r\n",
        client="192.0.2.1",
        helo="h",
        mail_from="billing@example.co.jp",
        rcpt_to=["rin@city.example.lg.jp"],
        received_at=datetime(2026, 12, 3, 1, 30, tzinfo=UTC),
    )
    q.record_result(qid, Report(verdict=Verdict.HOLD, reasons=[Reason.MACRO], subject="請求書"))
    q.record_delivery(qid, MessageState.HELD)
    return qid


def _serve(
    q: Quarantine, tmp_path: Path, port: int, sanitizer: FakeSanitizer | None = None
) -> tuple[Releasing, FakeAudit, Config]:
    config = Config.model_validate(
        {
            "service": {"display_timezone": "Asia/Tokyo"},
            "delivery": {"relay_host": "127.0.0.1", "relay_port": port, "timeout_seconds": 5},
            "console": {"public_url": "https://mukaika.city.example.lg.jp", "contact": "内線1234"},
        }
    )
    audit = FakeAudit()
    releasing = Releasing(
        q.index.store,
        q,
        sanitizer or FakeSanitizer(),
        Spool(tmp_path / "spool"),
        _Scheduler(),  # type: ignore[arg-type]
        audit,
        config,
        rules=lambda: None,
        notices=DecisionNotices(config, q.index.store, audit, NOTICE_FROM),
    )
    return releasing, audit, config


def _text(delivered: Delivered) -> tuple[str, str]:
    parsed = delivered.parsed()
    body = parsed.get_body(("plain",))
    assert body is not None
    return str(make_header(decode_header(parsed["Subject"]))), body.get_content()


async def test_the_requester_is_told_of_the_approval_once_it_is_carried_out(
    quarantine: Quarantine, tmp_path: Path, sink: Sink
) -> None:
    ref = _held(quarantine)
    releasing, audit, config = _serve(quarantine, tmp_path, sink.port)
    held = HeldMail(quarantine.index.store, config, FakeAudit())
    held.request(ref, "rin", "取引先からの請求書です")
    assert await releasing.carry_out_due() == 0
    assert sink.messages == []  # nothing decided yet
    held.approve(ref, "aki")
    assert await releasing.carry_out_due() == 1
    [notice] = sink.messages
    assert notice.mail_from == "<>"  # the null reverse-path
    assert notice.rcpt_tos == ["rin@city.example.lg.jp"]
    subject, text = _text(notice)
    assert subject == "[mukaika] 受信許可の申請：承認 / Release request approved"
    assert text.splitlines()[:10] == [
        "保留されていたメールの受信許可の申請が承認されました。メールは無害化し直して配送されます。",
        "",
        "件名：請求書",
        "差出人：billing@example.co.jp",
        "受付日時：2026-12-03 10:30 JST",
        f"参照番号：{ref}",
        "申請理由：取引先からの請求書です",
        f"確認：https://mukaika.city.example.lg.jp/mail/{ref}",
        "問い合わせ先：内線1234",
        "",
    ]
    told = [r for r in audit.records if r["event"] == "notice"]
    assert [(r["user"], r["outcome"]) for r in told] == [("rin", "requester told: sent")]
    assert await releasing.carry_out_due() == 0
    assert len(sink.messages) == 1


async def test_the_requester_is_told_of_a_denial_with_the_comment_once(
    quarantine: Quarantine, tmp_path: Path, sink: Sink
) -> None:
    ref = _held(quarantine)
    releasing, _, config = _serve(quarantine, tmp_path, sink.port)
    held = HeldMail(quarantine.index.store, config, FakeAudit())
    held.request(ref, "rin", "必要です")
    held.deny(ref, "aki", "差出人を確認できません")
    await releasing.carry_out_due()
    await releasing.carry_out_due()
    [notice] = sink.messages
    subject, text = _text(notice)
    assert subject == "[mukaika] 受信許可の申請：否認 / Release request denied"
    lines = text.splitlines()
    assert lines[0] == (
        "保留されていたメールの受信許可の申請は認められませんでした。メールは配送されません。"
    )
    assert "承認者のコメント：差出人を確認できません" in lines
    assert "Approver's comment: 差出人を確認できません" in lines
    (decision,) = history(quarantine.index.store, ref)
    assert (decision.state, decision.outcome) == (RequestState.DENIED, "requester notice")


async def test_an_operators_own_release_tells_nobody(
    quarantine: Quarantine, tmp_path: Path, sink: Sink
) -> None:
    ref = _held(quarantine)
    releasing, audit, config = _serve(quarantine, tmp_path, sink.port)
    HeldMail(quarantine.index.store, config, FakeAudit()).release(ref, "oto")
    assert await releasing.carry_out_due() == 1
    assert quarantine.get(ref).state == MessageState.RELEASED
    assert sink.messages == []
    assert [r for r in audit.records if r["event"] == "notice"] == []


async def test_a_notice_the_mta_refuses_is_audited_and_not_retried(
    quarantine: Quarantine, tmp_path: Path
) -> None:
    ref = _held(quarantine)
    releasing, audit, config = _serve(quarantine, tmp_path, free_port())  # nobody listens
    held = HeldMail(quarantine.index.store, config, FakeAudit())
    held.request(ref, "rin", "必要です")
    held.deny(ref, "aki", "不要です")
    await releasing.carry_out_due()
    await releasing.carry_out_due()
    told: list[dict[str, Any]] = [r for r in audit.records if r["event"] == "notice"]
    assert [r["outcome"] for r in told] == ["requester told: failed"]


async def test_an_approval_serve_could_not_carry_out_is_told_as_such(
    quarantine: Quarantine, tmp_path: Path, sink: Sink
) -> None:
    ref = _held(quarantine)
    releasing, _, config = _serve(quarantine, tmp_path, sink.port, FakeSanitizer(["crash"]))
    held = HeldMail(quarantine.index.store, config, FakeAudit())
    held.request(ref, "rin", "必要です")
    held.approve(ref, "aki")
    assert await releasing.carry_out_due() == 1
    assert quarantine.get(ref).state == MessageState.HELD  # back as it was
    [notice] = sink.messages
    subject, text = _text(notice)
    assert (
        subject == "[mukaika] 受信許可の申請：承認（配送できず） / Release approved, not delivered"
    )
    assert text.splitlines()[0] == (
        "受信許可の申請は承認されましたが、メールを配送できませんでした。問い合わせ先にご連絡ください。"
    )
