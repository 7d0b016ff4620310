"""The control socket of serve: private, bounded, and the secret reaches the handler only."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

from gateway.service import control


async def _serve(tmp_path: Path) -> tuple[control.ControlServer, list[tuple[Any, ...]]]:
    calls: list[tuple[Any, ...]] = []

    async def handler(
        command: str, reference: str, passwords: tuple[str, ...], actor: str
    ) -> dict[str, Any]:
        calls.append((command, reference, passwords, actor))
        return {"result": "unlocked", "attempts": 1}

    server = control.ControlServer(tmp_path, handler)
    await server.start()
    return server, calls


async def test_a_request_carries_its_password_lines_to_the_handler(tmp_path: Path) -> None:
    server, calls = await _serve(tmp_path)
    try:
        path = control.socket_path(tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        answer = await asyncio.to_thread(
            control.request, tmp_path, "unlock", "REF-1", b"first\r\n\nsecond\n"
        )
    finally:
        await server.close()
    assert answer == {"result": "unlocked", "attempts": 1}
    assert calls == [("unlock", "REF-1", ("first", "second"), "root")]
    assert not control.socket_path(tmp_path).exists()


async def test_an_oversized_secret_is_refused_unread(tmp_path: Path) -> None:
    server, calls = await _serve(tmp_path)
    try:
        secret = b"x" * (control.MAX_SECRET_BYTES + 1)
        answer = await asyncio.to_thread(control.request, tmp_path, "unlock", "REF-1", secret)
    finally:
        await server.close()
    assert answer == {"result": "bad_request"}
    assert calls == []


def test_secret_lines_are_bounded_and_must_be_utf8() -> None:
    assert control.secret_lines(b"a\nb\nc\n", 2) == ("a", "b")
    assert control.secret_lines(b"\xff\xfe", 5) == ()


async def test_a_fault_in_the_handler_is_answered_failed_not_silence(
    tmp_path: Path, caplog: Any
) -> None:
    """The store down, an original purged meanwhile: the operator's command gets an answer."""

    async def broken(*_: object) -> dict[str, Any]:
        raise RuntimeError("the store is unreachable")

    server = control.ControlServer(tmp_path, broken)
    await server.start()
    try:
        answer = await asyncio.to_thread(control.request, tmp_path, "unlock", "REF-1", b"pw\n")
        again = await asyncio.to_thread(control.request, tmp_path, "unlock", "REF-1", b"pw\n")
    finally:
        await server.close()
    assert answer == again == {"result": "failed"}  # and the server still answers
    assert "control request failed" in caplog.text


async def test_a_local_program_names_the_person_it_acts_for(tmp_path: Path) -> None:
    # The console (same account as serve) names its user or link; the audit records that
    # name, cleaned and bounded, instead of the console's account.
    server, calls = await _serve(tmp_path)
    try:
        for on_behalf in ("link:keiri@example.lg.jp", "user:suzuki\n\u202eforged", "x" * 500):
            await asyncio.to_thread(
                control.request, tmp_path, "unlock", "REF-1", b"pw\n", on_behalf=on_behalf
            )
    finally:
        await server.close()
    actors = [call[3] for call in calls]
    assert actors[0] == "link:keiri@example.lg.jp"
    assert "\n" not in actors[1]
    assert "\u202e" not in actors[1]
    assert actors[1].startswith("user:suzuki")
    assert len(actors[2]) <= control.MAX_ACTOR_CHARS
