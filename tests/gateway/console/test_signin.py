"""Signing in: passwords, one-time codes for approvers and admins, the limits per user and per
client address, sessions that end on logout, on disabling and after their time."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from gateway.console.middleware import SIGNED_IN_AT_KEY
from gateway.store.sessions import load_session
from gateway.store.users import change_user
from tests.gateway.console.consolekit import PASSWORD, ConsoleWorld


def _login(
    world: ConsoleWorld, name: str, password: str, *, code: str = "", address: str = "127.0.0.1"
) -> int:
    client = world.client(address=address)
    return client.post("/login", {"name": name, "password": password, "code": code}).status_code


def test_a_right_password_signs_in_and_a_wrong_one_does_not(world: ConsoleWorld) -> None:
    assert _login(world, "oto", "wrong password here") == 401
    assert _login(world, "nobody", PASSWORD) == 401
    assert _login(world, "oto", PASSWORD) == 302
    outcomes = [
        (line["user"], line["outcome"]) for line in world.audit_lines() if line["event"] == "login"
    ]
    assert outcomes == [("oto", "failed"), ("nobody", "failed"), ("oto", "ok")]
    assert all(PASSWORD not in str(line) for line in world.audit_lines())


def test_the_failure_answer_does_not_say_what_was_wrong(world: ConsoleWorld) -> None:
    answers = set()
    for name, password in (("oto", "wrong password here"), ("nobody", PASSWORD), ("aki", PASSWORD)):
        page = world.client().post("/login", {"name": name, "password": password})
        assert page.status_code == 401
        answers.add(re.search(rb'<p class="error"[^>]*>(.*?)</p>', page.content, re.S).group(1))
    assert len(answers) == 1


def test_approvers_and_admins_need_a_one_time_code(world: ConsoleWorld) -> None:
    for name in ("aki", "ada"):
        assert _login(world, name, PASSWORD) == 401
        assert (
            _login(
                world, name, PASSWORD, code="000000" if world.code(name) != "000000" else "111111"
            )
            == 401
        )
        assert _login(world, name, PASSWORD, code=world.code(name)) == 302


def test_a_one_time_code_is_accepted_once(world: ConsoleWorld) -> None:
    code = world.code("aki")
    assert _login(world, "aki", PASSWORD, code=code) == 302
    assert _login(world, "aki", PASSWORD, code=code) == 401
    # An older step than the one used is not accepted either.
    assert _login(world, "aki", PASSWORD, code=world.code("aki", -1)) == 401


def test_a_user_is_locked_out_after_the_limit_and_others_behind_the_same_address_are_not(
    world: ConsoleWorld,
) -> None:
    limit = world.runtime.config.console.max_failures_per_user
    for _ in range(limit):
        assert _login(world, "rin", "wrong password here") == 401
    # Locked: even the right password is refused, without being checked.
    assert _login(world, "rin", PASSWORD) == 401
    assert world.audit_lines()[-1]["outcome"] == "locked"
    # A colleague behind the same proxy address still signs in.
    assert _login(world, "ren", PASSWORD) == 302


def test_an_address_is_locked_out_after_its_own_limit_across_users(world: ConsoleWorld) -> None:
    limit = world.runtime.config.console.max_failures_per_address
    for number in range(limit):
        _login(world, f"guess{number}", "wrong password here", address="198.51.100.7")
    assert _login(world, "oto", PASSWORD, address="198.51.100.7") == 401
    assert _login(world, "oto", PASSWORD, address="198.51.100.8") == 302


def test_a_disabled_user_cannot_sign_in_and_is_signed_out(world: ConsoleWorld) -> None:
    client = world.signed_in("oto")
    assert client.get("/").status_code == 200
    change_user(world.store, "oto", disabled=True)
    assert client.get("/").status_code == 302
    assert _login(world, "oto", PASSWORD) == 401


def test_logout_revokes_the_session_on_the_server(world: ConsoleWorld) -> None:
    client = world.signed_in("oto")
    key = client.cookies["mukaika_session"].value
    assert client.post("/logout").status_code == 302
    assert load_session(world.store, key, datetime.now(UTC)) is None
    stolen = world.client()
    stolen.cookies["mukaika_session"] = key
    assert stolen.get("/").status_code == 302
    assert any(line["event"] == "logout" for line in world.audit_lines())


def test_the_session_key_changes_at_sign_in(world: ConsoleWorld) -> None:
    client = world.client()
    client.get("/login")
    client.post("/login", {"name": "oto", "password": "wrong password here"})
    before = client.cookies.get("mukaika_session")
    client.post("/login", {"name": "oto", "password": PASSWORD})
    after = client.cookies["mukaika_session"].value
    assert before is None or before.value != after


def test_a_session_ends_after_its_longest_time(world: ConsoleWorld) -> None:
    client = world.signed_in("oto")
    session = client.session
    session[SIGNED_IN_AT_KEY] = time.time() - world.runtime.config.console.session_max_seconds - 1
    session.save()
    assert client.get("/").status_code == 302


def test_a_session_ends_after_its_idle_time(world: ConsoleWorld) -> None:
    client = world.signed_in("oto")
    key = client.cookies["mukaika_session"].value
    with world.store.writing() as db:
        from gateway.store.schema import console_sessions

        db.execute(
            console_sessions.update()
            .where(console_sessions.c.key == key)
            .values(expires_at=datetime.now(UTC))
        )
    assert client.get("/").status_code == 302
