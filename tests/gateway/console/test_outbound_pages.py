"""The outbound pages: an approver sees and decides the held outbound mail of the groups they
approve for (with a comment), nobody else sees it (other groups' approvers, operators,
auditors: 404, as a missing message); a sender sees their own held mail and cannot approve it
unless the group allows self-approval; a cancel names only one's own address."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.store.workflow import history, open_decision
from sanitizers.vocabulary import MessageState, Reason, RequestKind, RequestState, UserRole
from tests.gateway.console.consolekit import ConsoleWorld, console_world, sample_mail

SOMU = "somu.city.example.lg.jp"
KIKAKU = "kikaku.city.example.lg.jp"
CONFIG = f"""
[outbound]
[[outbound.groups]]
name = "総務課"
senders = ["{SOMU}"]
approvers = ["kacho@{SOMU}", "aki"]

[[outbound.groups]]
name = "財政課"
senders = ["zaisei@city.example.lg.jp"]
approvers = ["kacho@{SOMU}", "aki", "kacho@{KIKAKU}"]
approvals_required = 2

[[outbound.groups]]
name = "企画課"
senders = ["{KIKAKU}"]
approvers = ["kacho@{KIKAKU}"]
self_approval = true
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ConsoleWorld]:
    config = tmp_path / "mukaika.toml"
    config.write_text(CONFIG, encoding="utf-8")
    with console_world(tmp_path / "data", config) as world:
        world.add("kacho@" + SOMU, UserRole.APPROVER, "kacho@" + SOMU)
        world.add("aki", UserRole.APPROVER)
        world.add("kacho@" + KIKAKU, UserRole.APPROVER, "kacho@" + KIKAKU)
        world.add("taro", UserRole.RECIPIENT, "taro@" + SOMU)
        world.add("oto", UserRole.OPERATOR)
        world.add("kai", UserRole.AUDITOR)
        yield world


def held_outbound(world: ConsoleWorld, sender: str, subject: str = "個人番号の一覧") -> str:
    """An outbound mail held for approval, as the outbound stage leaves it."""
    ref = world.held(
        sample_mail(subject, to="partner@example.com"),
        rcpt_to=("partner@example.com",),
        mail_from=sender,
        reasons=(Reason.PERSONAL_NUMBER,),
        subject=subject,
    )
    now = datetime.now(UTC)
    open_decision(
        world.store,
        ref,
        kind=RequestKind.OUTBOUND,
        actor=sender,
        reason="personal_number",
        now=now,
        allowed_from=(MessageState.HELD,),
        approved=False,
        expires_at=now + timedelta(days=3),
    )
    return ref


def test_the_groups_approver_sees_and_approves_with_a_comment(world: ConsoleWorld) -> None:
    ref = held_outbound(world, f"taro@{SOMU}")
    kacho = world.signed_in(f"kacho@{SOMU}")
    listing = kacho.get("/outbound").content.decode()
    assert "個人番号の一覧" in listing
    assert f"/outbound/{ref}" in listing
    page = kacho.get(f"/outbound/{ref}").content.decode()
    assert "送信を承認する" in page
    assert "却下する" in page
    response = kacho.post(f"/outbound/{ref}/approve", {"comment": "確認済み"})
    assert response.status_code == 302
    (decision,) = history(world.store, ref)
    assert decision.state is RequestState.APPROVED
    assert (decision.decided_by, decision.decision_reason) == (f"kacho@{SOMU}", "確認済み")
    assert [line["actor"] for line in world.audit_lines() if line["event"] == "approval"] == [
        f"kacho@{SOMU}"
    ]


def test_a_rejection_needs_a_comment_and_records_it(world: ConsoleWorld) -> None:
    ref = held_outbound(world, f"taro@{SOMU}")
    aki = world.signed_in("aki")
    assert aki.post(f"/outbound/{ref}/reject", {"comment": "  "}).status_code == 409
    assert history(world.store, ref)[0].state is RequestState.PENDING
    assert aki.post(f"/outbound/{ref}/reject", {"comment": "宛先を確認"}).status_code == 302
    (decision,) = history(world.store, ref)
    assert (decision.state, decision.decision_reason) == (RequestState.DENIED, "宛先を確認")


@pytest.mark.parametrize("name", [f"kacho@{KIKAKU}", "oto", "kai"])
def test_nobody_else_sees_or_decides_it(world: ConsoleWorld, name: str) -> None:
    ref = held_outbound(world, f"taro@{SOMU}")
    client = world.signed_in(name)
    assert "個人番号の一覧" not in client.get("/outbound").content.decode()
    assert "個人番号の一覧" not in client.get("/", {"state": "all"}).content.decode()
    assert client.get(f"/outbound/{ref}").status_code == 404
    assert client.get(f"/mail/{ref}").status_code == 404
    assert client.post(f"/outbound/{ref}/approve").status_code in (403, 404)
    assert client.post(f"/mail/{ref}/approve").status_code in (403, 404)
    assert history(world.store, ref)[0].state is RequestState.PENDING


def test_the_sender_sees_their_held_mail_but_cannot_decide_it(world: ConsoleWorld) -> None:
    ref = held_outbound(world, f"taro@{SOMU}")
    taro = world.signed_in("taro")
    listing = taro.get("/outbound").content.decode()
    assert "承認待ちで保留中のメール" in listing
    assert f"/outbound/{ref}" in listing
    page = taro.get(f"/outbound/{ref}").content.decode()
    assert "送信を承認する" not in page
    assert taro.get(f"/mail/{ref}").status_code == 302  # the outbound page is where it is shown
    assert taro.post(f"/outbound/{ref}/approve").status_code == 403
    assert history(world.store, ref)[0].state is RequestState.PENDING


def test_self_approval_only_where_the_group_allows_it(world: ConsoleWorld) -> None:
    own = held_outbound(world, f"kacho@{SOMU}", subject="課長自身の送信")
    kacho = world.signed_in(f"kacho@{SOMU}")
    page = kacho.get(f"/outbound/{own}").content.decode()
    assert "送信を承認する" not in page
    assert "self_approval is off" in page
    assert kacho.post(f"/outbound/{own}/approve").status_code == 403
    assert history(world.store, own)[0].state is RequestState.PENDING
    allowed = held_outbound(world, f"kacho@{KIKAKU}", subject="企画課長自身の送信")
    kikaku = world.signed_in(f"kacho@{KIKAKU}")
    assert kikaku.post(f"/outbound/{allowed}/approve").status_code == 302
    assert history(world.store, allowed)[0].state is RequestState.APPROVED


def test_a_cancel_names_only_ones_own_address(world: ConsoleWorld) -> None:
    taro = world.signed_in("taro")
    queue_id = "20261204010203-0123456789"
    response = taro.post(f"/outbound/cancel/{queue_id}", {"sender": f"kacho@{SOMU}"})
    assert response.status_code == 404
    # Its own address, but no serve to ask: said, nothing else happens.
    response = taro.post(f"/outbound/cancel/{queue_id}", {"sender": f"taro@{SOMU}"})
    assert response.status_code == 503


def test_outbound_actions_need_the_csrf_token(world: ConsoleWorld) -> None:
    ref = held_outbound(world, f"taro@{SOMU}")
    kacho = world.signed_in(f"kacho@{SOMU}", csrf_checks=True)
    assert kacho.post(f"/outbound/{ref}/approve", {"comment": "x"}).status_code == 403
    assert history(world.store, ref)[0].state is RequestState.PENDING


def test_two_of_three_approvers_must_approve_and_each_is_audited(world: ConsoleWorld) -> None:
    ref = held_outbound(world, "zaisei@city.example.lg.jp", subject="予算資料")
    aki, kacho = world.signed_in("aki"), world.signed_in(f"kacho@{SOMU}")
    assert "必要な承認数：2（これまでの承認：0）" in aki.get(f"/outbound/{ref}").content.decode()
    assert aki.post(f"/outbound/{ref}/approve", {"comment": "一人目"}).status_code == 302
    assert history(world.store, ref)[0].state is RequestState.PENDING
    page = aki.get(f"/outbound/{ref}").content.decode()
    assert "必要な承認数：2（これまでの承認：1）" in page
    assert "承認済みです" in page
    assert "送信を承認する" not in page
    assert aki.post(f"/outbound/{ref}/approve").status_code == 409  # never twice
    assert kacho.post(f"/outbound/{ref}/approve").status_code == 302
    (decision,) = history(world.store, ref)
    assert (decision.state, decision.decided_by) == (RequestState.APPROVED, f"kacho@{SOMU}")
    lines = [line for line in world.audit_lines() if line["event"] == "approval"]
    assert [(x["actor"], x["approvals"], x["approvals_required"], x["state"]) for x in lines] == [
        ("aki", 1, 2, "pending"),
        (f"kacho@{SOMU}", 2, 2, "approved"),
    ]


def test_one_rejection_rejects_after_an_approval(world: ConsoleWorld) -> None:
    ref = held_outbound(world, "zaisei@city.example.lg.jp", subject="予算資料")
    assert world.signed_in("aki").post(f"/outbound/{ref}/approve").status_code == 302
    rejected = world.signed_in(f"kacho@{KIKAKU}").post(
        f"/outbound/{ref}/reject", {"comment": "添付が違います"}
    )
    assert rejected.status_code == 302
    assert history(world.store, ref)[0].state is RequestState.DENIED
