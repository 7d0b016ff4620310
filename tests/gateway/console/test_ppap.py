"""The PPAP page without a browser: a link admits only its recipient of its message until it
expires; GET changes nothing; a password goes to serve's control socket (a recording stand-in
here) as one line with the actor named; wrong ones are counted per link, user and address and
a locked holder's password is not even sent."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.console.unlock import MAX_PASSWORD_CHARS
from gateway.processing.unlock_links import UnlockLinks
from gateway.service.control import ControlServer
from sanitizers.vocabulary import MessageState, UserRole
from tests.gateway.console.consolekit import (
    TEST_SECRET_KEY,
    ConsoleWorld,
    console_world,
    sample_mail,
)

RIN = "rin@city.example.lg.jp"


class FakeServe:
    """serve's control socket in a thread: records each request, answers ``answer``."""

    def __init__(self, world: ConsoleWorld) -> None:
        self.calls: list[tuple[str, str, tuple[str, ...], str]] = []
        self.answer: dict[str, Any] = {"result": "wrong_password", "attempts": 1, "remaining": 4}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = ControlServer(world.runtime.data_dir, self._handle)
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)

    async def _handle(
        self, command: str, reference: str, passwords: tuple[str, ...], actor: str
    ) -> dict[str, Any]:
        self.calls.append((command, reference, passwords, actor))
        return self.answer

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@pytest.fixture
def serve(world: ConsoleWorld) -> Iterator[FakeServe]:
    fake = FakeServe(world)
    yield fake
    fake.close()


def _awaiting(world: ConsoleWorld, *rcpt: str) -> str:
    ref = world.held(sample_mail("暗号化ZIP"), rcpt_to=rcpt or (RIN,), subject="暗号化ZIP")
    world.runtime.quarantine.transition(ref, MessageState.HELD, MessageState.AWAITING_PASSWORD)
    return ref


def _link(ref: str, recipient: str = RIN, *, age: float = 0.0) -> str:
    links = UnlockLinks(TEST_SECRET_KEY, "", 3600, clock=lambda: time.time() - age)
    return "/" + links.sign(ref, recipient)[0].lstrip("/")


def test_a_link_opens_the_form_and_a_get_changes_nothing(
    world: ConsoleWorld, serve: FakeServe
) -> None:
    ref = _awaiting(world)
    client = world.client()
    for _ in range(3):
        page = client.get(_link(ref))
        assert page.status_code == 200
        assert 'name="password"' in page.content.decode()
    assert serve.calls == []
    assert world.audit_lines() == []


@pytest.mark.parametrize("case", ["expired", "altered", "not_a_recipient", "other_message"])
def test_a_link_that_is_not_good_gets_no_form(
    world: ConsoleWorld, serve: FakeServe, case: str
) -> None:
    ref = _awaiting(world)
    other = _awaiting(world, "ren@city.example.lg.jp")
    url = {
        "expired": _link(ref, age=7200),
        "altered": _link(ref)[:-3] + ("xyz" if not _link(ref).endswith("xyz") else "abc"),
        "not_a_recipient": _link(ref, "ren@city.example.lg.jp"),
        "other_message": _link(other, RIN),
    }[case]
    client = world.client()
    for response in (client.get(url), client.post(url, {"password": "pw"})):
        assert response.status_code in (403, 404)
        assert 'name="password"' not in response.content.decode()
    assert serve.calls == []


def test_a_password_goes_to_serve_as_one_line_with_the_actor(
    world: ConsoleWorld, serve: FakeServe
) -> None:
    ref = _awaiting(world)
    response = world.client().post(_link(ref), {"password": "  秘密 pass  "})
    assert response.status_code == 403  # wrong_password
    assert "パスワードが違います" in response.content.decode()
    assert serve.calls == [("unlock", ref, ("  秘密 pass  ",), f"link:{RIN}")]
    assert "秘密" not in response.content.decode()  # never echoed


@pytest.mark.parametrize("password", ["", "a\nb", "a\rb", "x" * (MAX_PASSWORD_CHARS + 1)])
def test_a_password_that_is_not_one_bounded_line_is_not_sent(
    world: ConsoleWorld, serve: FakeServe, password: str
) -> None:
    # Several lines would be several candidates in one attempt.
    ref = _awaiting(world)
    response = world.client().post(_link(ref), {"password": password})
    assert response.status_code == 400
    assert serve.calls == []


def test_wrong_passwords_lock_the_link_then_nothing_is_sent(
    world: ConsoleWorld, serve: FakeServe
) -> None:
    ref = _awaiting(world)
    limit = world.runtime.config.console.unlock_attempts_per_link
    client = world.client()
    for _ in range(limit):
        client.post(_link(ref), {"password": "wrong"})
    assert len(serve.calls) == limit
    response = client.post(_link(ref), {"password": "right"})
    assert response.status_code == 429
    assert len(serve.calls) == limit  # the locked link's password was not sent
    (locked,) = [line for line in world.audit_lines() if line.get("outcome") == "locked_out"]
    assert locked["actor"] == f"link:{RIN}"
    # Another recipient's link to the same message is a count of its own.
    ref2 = _awaiting(world, RIN, "kacho@city.example.lg.jp")
    assert (
        client.post(_link(ref2, "kacho@city.example.lg.jp"), {"password": "x"}).status_code == 403
    )


def test_a_signed_in_user_reaches_only_mail_they_may_see(
    world: ConsoleWorld, serve: FakeServe
) -> None:
    mine = _awaiting(world)
    other = _awaiting(world, "someone@city.example.lg.jp")
    rin = world.signed_in("rin")
    assert rin.get(f"/ppap/mail/{mine}").status_code == 200
    assert rin.get(f"/ppap/mail/{other}").status_code == 404
    assert rin.post(f"/ppap/mail/{other}", {"password": "x"}).status_code == 404
    serve.answer = {"result": "unlocked", "attempts": 1, "remaining": 4, "queue_id": "Q1"}
    page = rin.post(f"/ppap/mail/{mine}", {"password": "right"})
    assert page.status_code == 200
    assert serve.calls == [("unlock", mine, ("right",), "rin")]
    assert world.signed_in("kai").get(f"/ppap/mail/{mine}").status_code == 403  # auditor


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[ConsoleWorld]:
    """A console whose PPAP limits per user and per address are 3 (the per-link one high)."""
    config = tmp_path / "mukaika.toml"
    config.write_text(
        "[console]\nunlock_attempts_per_user = 3\nunlock_attempts_per_address = 3\n"
        "unlock_attempts_per_link = 1000\n",
        encoding="utf-8",
    )
    with console_world(tmp_path / "data", config) as world:
        world.add("rin", UserRole.RECIPIENT, RIN, "kacho@city.example.lg.jp")
        world.add("ren", UserRole.RECIPIENT, "ren@city.example.lg.jp", "kacho@city.example.lg.jp")
        yield world


def test_wrong_passwords_lock_the_user_across_messages_but_not_a_colleague(
    limited: ConsoleWorld,
) -> None:
    """One person's mistakes over several messages lock that person, not the town hall (the
    colleague signs in from another address of the same screen-transfer pool)."""
    world = limited
    serve = FakeServe(world)
    refs = [_awaiting(world, "kacho@city.example.lg.jp") for _ in range(3)]
    rin = world.signed_in("rin")
    for ref in refs:
        assert rin.post(f"/ppap/mail/{ref}", {"password": "wrong"}).status_code == 403
    assert rin.post(f"/ppap/mail/{refs[0]}", {"password": "right"}).status_code == 429
    assert len(serve.calls) == 3  # the locked user's password was not sent
    ren = world.signed_in("ren", address="192.0.2.9")  # the same shared mailbox
    try:
        assert ren.post(f"/ppap/mail/{refs[0]}", {"password": "x"}).status_code == 403
        assert serve.calls[-1] == ("unlock", refs[0], ("x",), "ren")
    finally:
        serve.close()


def test_wrong_passwords_lock_an_address_across_links_but_not_another_address(
    limited: ConsoleWorld,
) -> None:
    world = limited
    serve = FakeServe(world)
    links = [_link(_awaiting(world)) for _ in range(4)]
    guesser = world.client(address="192.0.2.7")
    for url in links[:3]:
        assert guesser.post(url, {"password": "wrong"}).status_code == 403
    assert guesser.post(links[3], {"password": "wrong"}).status_code == 429
    assert len(serve.calls) == 3
    elsewhere = world.client(address="192.0.2.8")
    try:
        assert elsewhere.post(links[3], {"password": "x"}).status_code == 403
        assert len(serve.calls) == 4
    finally:
        serve.close()
