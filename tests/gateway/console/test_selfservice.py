"""Self-service: a recipient sees the held mail of their own addresses, asks for its release
with a reason (never an exception, never for another's mail, never twice while one is open),
and an approver decides; the workflow checks ownership itself, not only the page."""

from __future__ import annotations

import pytest

from gateway.service.held_mail import InvalidRequestError, NotAllowedError, WrongStateError
from gateway.store.workflow import history
from sanitizers.vocabulary import MessageState, RequestKind, RequestState
from tests.gateway.console.consolekit import ConsoleWorld, sample_mail


def _mail(world: ConsoleWorld, *rcpt: str, subject: str = "請求書") -> str:
    return world.held(sample_mail(subject), rcpt_to=rcpt, subject=subject)


def test_a_recipient_sees_the_form_on_their_own_mail_and_asks_with_a_reason(
    world: ConsoleWorld,
) -> None:
    ref = _mail(world, "rin@city.example.lg.jp")
    rin = world.signed_in("rin", csrf_checks=True)
    page = rin.get(f"/mail/{ref}").content.decode()
    assert 'id="ask-release"' in page
    assert "受信の許可を申請" in page
    assert f'action="/mail/{ref}/release"' not in page  # a recipient never releases directly
    token = rin.cookies["mukaika_csrf"].value
    asked = rin.post(
        f"/mail/{ref}/request", {"reason": "取引先からの請求書です", "csrfmiddlewaretoken": token}
    )
    assert asked.status_code == 302
    assert world.runtime.quarantine.get(ref).state == MessageState.RELEASE_REQUESTED
    [decision] = history(world.store, ref)
    assert (decision.kind, decision.state) == (RequestKind.RELEASE, RequestState.PENDING)
    assert (decision.requested_by, decision.reason) == ("rin", "取引先からの請求書です")
    assert [(line["event"], line.get("actor")) for line in world.audit_lines()][-1] == (
        "request",
        "rin",
    )
    # An approver decides; the requester cannot.
    assert rin.post(f"/mail/{ref}/approve", {"csrfmiddlewaretoken": token}).status_code == 403
    assert world.signed_in("aki").post(f"/mail/{ref}/approve").status_code == 302
    assert world.runtime.quarantine.get(ref).state == MessageState.APPROVED


def test_a_shared_mailbox_is_each_of_its_readers_own(world: ConsoleWorld) -> None:
    ref = _mail(world, "kacho@city.example.lg.jp")
    assert (
        world.signed_in("ren").post(f"/mail/{ref}/request", {"reason": "課宛"}).status_code == 302
    )
    assert history(world.store, ref)[0].requested_by == "ren"


def test_a_recipient_cannot_ask_for_anothers_mail(world: ConsoleWorld) -> None:
    ref = _mail(world, "ren@city.example.lg.jp")
    rin = world.signed_in("rin")
    assert rin.get(f"/mail/{ref}").status_code == 404
    assert rin.post(f"/mail/{ref}/request", {"reason": "見せて"}).status_code == 404
    # Nor around the console: the workflow checks the addresses itself.
    with pytest.raises(NotAllowedError, match="their own addresses"):
        world.runtime.held.request(ref, "rin", "見せて")
    assert history(world.store, ref) == []
    assert world.runtime.quarantine.get(ref).state == MessageState.HELD


def test_a_recipient_asks_once_while_a_request_is_open(world: ConsoleWorld) -> None:
    ref = _mail(world, "rin@city.example.lg.jp")
    rin = world.signed_in("rin")
    assert rin.post(f"/mail/{ref}/request", {"reason": "一回目"}).status_code == 302
    again = rin.post(f"/mail/{ref}/request", {"reason": "二回目"})
    assert again.status_code == 409
    assert [d.reason for d in history(world.store, ref)] == ["一回目"]
    with pytest.raises(WrongStateError):
        world.runtime.held.request(ref, "rin", "三回目")


def test_a_recipient_asks_again_after_a_denial(world: ConsoleWorld) -> None:
    ref = _mail(world, "rin@city.example.lg.jp")
    rin = world.signed_in("rin")
    assert rin.post(f"/mail/{ref}/request", {"reason": "一回目"}).status_code == 302
    world.runtime.held.deny(ref, "aki", "差出人が不明です")
    assert world.runtime.quarantine.get(ref).state == MessageState.DENIED
    assert rin.post(f"/mail/{ref}/request", {"reason": "差出人に確認しました"}).status_code == 302
    assert [d.state for d in history(world.store, ref)] == [
        RequestState.DENIED,
        RequestState.PENDING,
    ]


def test_a_recipient_asks_for_a_release_never_an_exception(world: ConsoleWorld) -> None:
    ref = _mail(world, "rin@city.example.lg.jp")
    refused = world.signed_in("rin").post(f"/mail/{ref}/request", {"reason": "x", "parts": "1"})
    assert refused.status_code == 403
    with pytest.raises(NotAllowedError, match="not an exception"):
        world.runtime.held.request(ref, "rin", "x", parts=["1"])
    assert history(world.store, ref) == []


def test_a_request_without_a_reason_records_nothing(world: ConsoleWorld) -> None:
    ref = _mail(world, "rin@city.example.lg.jp")
    assert world.signed_in("rin").post(f"/mail/{ref}/request", {"reason": "  "}).status_code == 409
    with pytest.raises(InvalidRequestError):
        world.runtime.held.request(ref, "rin", "")
    assert history(world.store, ref) == []


def test_a_get_of_the_request_address_changes_nothing(world: ConsoleWorld) -> None:
    ref = _mail(world, "rin@city.example.lg.jp")
    assert world.signed_in("rin").get(f"/mail/{ref}/request", {"reason": "x"}).status_code == 405
    assert history(world.store, ref) == []


def test_a_post_without_the_csrf_token_asks_for_nothing(world: ConsoleWorld) -> None:
    ref = _mail(world, "rin@city.example.lg.jp")
    rin = world.signed_in("rin", csrf_checks=True)
    assert rin.post(f"/mail/{ref}/request", {"reason": "x"}).status_code == 403
    assert history(world.store, ref) == []
