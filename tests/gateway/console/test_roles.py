"""Who sees and does what: recipients see only the mail of their addresses (shared 課 mailboxes
included), operators all of it and the download, approvers decide others' requests only,
auditors read and change nothing; every action goes through the workflow of the command line."""

from __future__ import annotations

import pytest

from gateway.store.workflow import history
from sanitizers.vocabulary import MessageState
from tests.gateway.console.consolekit import ConsoleWorld, sample_mail


def _mail(world: ConsoleWorld, *rcpt: str, subject: str = "会議資料") -> str:
    return world.held(sample_mail(subject), rcpt_to=rcpt, subject=subject)


def test_a_recipient_sees_only_the_mail_of_their_addresses(world: ConsoleWorld) -> None:
    own = _mail(world, "rin@city.example.lg.jp", subject="りんさん宛")
    shared = _mail(world, "KACHO@city.example.lg.jp", subject="課の共有")
    other = _mail(world, "someone@city.example.lg.jp", subject="ほかの人宛")
    rin, ren = world.signed_in("rin"), world.signed_in("ren")
    listing = rin.get("/").content.decode()
    assert "りんさん宛" in listing
    assert "課の共有" in listing
    assert "ほかの人宛" not in listing
    assert rin.get(f"/mail/{own}").status_code == 200
    assert rin.get(f"/mail/{shared}").status_code == 200
    assert ren.get(f"/mail/{shared}").status_code == 200
    assert ren.get(f"/mail/{own}").status_code == 404
    assert rin.get(f"/mail/{other}").status_code == 404
    # A search cannot widen the view.
    assert (
        "ほかの人宛" not in rin.get("/", {"recipient": "someone", "state": "all"}).content.decode()
    )


def test_an_operator_sees_every_message(world: ConsoleWorld) -> None:
    ref = _mail(world, "someone@city.example.lg.jp", subject="だれか宛")
    operator = world.signed_in("oto")
    assert "だれか宛" in operator.get("/").content.decode()
    assert operator.get(f"/mail/{ref}").status_code == 200


@pytest.mark.parametrize("name", ["rin", "kai", "ada"])
def test_only_operators_and_approvers_release(world: ConsoleWorld, name: str) -> None:
    """Nobody else releases, nor asks for others' mail (a recipient asks for their own only:
    test_selfservice.py)."""
    ref = _mail(world, "ren@city.example.lg.jp")
    client = world.signed_in(name)
    assert client.post(f"/mail/{ref}/release").status_code in (403, 404)
    assert client.post(f"/mail/{ref}/request", {"reason": "x"}).status_code in (403, 404)
    assert world.runtime.quarantine.get(ref).state == MessageState.HELD
    assert history(world.store, ref) == []


def test_an_operator_releases_through_the_workflow(world: ConsoleWorld) -> None:
    ref = _mail(world, "rin@city.example.lg.jp")
    response = world.signed_in("oto").post(f"/mail/{ref}/release")
    assert response.status_code == 302
    assert world.runtime.quarantine.get(ref).state == MessageState.APPROVED
    assert [line["actor"] for line in world.audit_lines() if line["event"] == "release"] == ["oto"]


def test_request_and_approval_by_two_people_never_ones_own(world: ConsoleWorld) -> None:
    ref = _mail(world, "rin@city.example.lg.jp")
    aki, ayu = world.signed_in("aki"), world.signed_in("ayu")
    assert aki.post(f"/mail/{ref}/request", {"reason": "取引先に確認済み"}).status_code == 302
    assert world.runtime.quarantine.get(ref).state == MessageState.RELEASE_REQUESTED
    own = aki.post(f"/mail/{ref}/approve")
    assert own.status_code == 403
    assert world.runtime.quarantine.get(ref).state == MessageState.RELEASE_REQUESTED
    assert world.signed_in("oto").post(f"/mail/{ref}/approve").status_code == 403
    assert ayu.post(f"/mail/{ref}/approve").status_code == 302
    assert world.runtime.quarantine.get(ref).state == MessageState.APPROVED
    events = [(line["event"], line.get("actor")) for line in world.audit_lines()]
    assert ("request", "aki") in events
    assert ("approval", "ayu") in events


def test_a_denial_needs_a_reason_and_an_approver(world: ConsoleWorld) -> None:
    ref = _mail(world, "rin@city.example.lg.jp")
    world.signed_in("oto").post(f"/mail/{ref}/request", {"reason": "確認済み"})
    aki = world.signed_in("aki")
    assert aki.post(f"/mail/{ref}/deny", {"reason": " "}).status_code == 409
    assert aki.post(f"/mail/{ref}/deny", {"reason": "原本は別経路で"}).status_code == 302
    assert world.runtime.quarantine.get(ref).state == MessageState.DENIED


def test_only_operators_download_an_original_and_it_is_recorded(world: ConsoleWorld) -> None:
    raw = sample_mail("原本")
    ref = world.held(raw, rcpt_to=("rin@city.example.lg.jp",))
    for name in ("rin", "aki", "kai", "ada"):
        assert world.signed_in(name).post(f"/mail/{ref}/download").status_code in (403, 404)
    response = world.signed_in("oto").post(f"/mail/{ref}/download")
    assert response.status_code == 200
    assert response.content == raw
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    downloads = [line for line in world.audit_lines() if line["event"] == "download"]
    assert [(d["actor"], d["quarantine_id"]) for d in downloads] == [("oto", ref)]


def test_a_look_at_an_original_is_recorded(world: ConsoleWorld) -> None:
    ref = _mail(world, "rin@city.example.lg.jp")
    world.signed_in("rin").get(f"/mail/{ref}")
    views = [line for line in world.audit_lines() if line["event"] == "view"]
    assert [(v["actor"], v["quarantine_id"]) for v in views] == [("rin", ref)]


def test_anonymous_visitors_are_sent_to_the_sign_in_page(world: ConsoleWorld) -> None:
    ref = _mail(world, "rin@city.example.lg.jp")
    for path in ("/", f"/mail/{ref}"):
        response = world.client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login?next=")
    assert world.client().post(f"/mail/{ref}/release").status_code == 302
    assert world.runtime.quarantine.get(ref).state == MessageState.HELD
