"""The durable spool: atomic writes, state changes and crash recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.queue.spool import Envelope, Spool, SpoolError, is_queue_id, new_queue_id


def envelope(**changes: object) -> Envelope:
    base = Envelope(queue_id=new_queue_id(), mail_from="a@example.com", rcpt_tos=("u@x.jp",))
    return base.with_(**changes)


def test_accept_and_load_round_trip(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    env = envelope(client="192.0.2.1", helo="h", received_at=1.5, size=3)
    spool.accept(env, b"a\r\nb\n\x00")
    assert spool.ids("incoming") == [env.queue_id]
    loaded, body = spool.load("incoming", env.queue_id)
    assert loaded == env
    assert body == b"a\r\nb\n\x00"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_state_changes(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    env = envelope()
    spool.accept(env, b"orig")
    sanitized = env.with_(verdict="deliver", report={"verdict": "deliver"})
    spool.advance("incoming", sanitized, b"clean", "outgoing")
    assert spool.find(env.queue_id) == "outgoing"
    assert spool.ids("incoming") == []
    deferred = sanitized.with_(attempts=1, deliveries=({"code": 451},))
    spool.put("outgoing", deferred, b"clean")
    assert spool.envelope("outgoing", env.queue_id).attempts == 1
    assert spool.load("outgoing", env.queue_id)[0].deliveries == ({"code": 451},)
    spool.move(env.queue_id, "outgoing", "dead")
    assert spool.find(env.queue_id) == "dead"
    assert [s for s, _ in spool.entries()] == ["dead"]


def test_recover_removes_partial_files_and_duplicates(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    done = envelope()
    spool.accept(done, b"x")
    spool.put("outgoing", done, b"y")  # a crash between write and unlink
    waiting = envelope()
    spool.accept(waiting, b"z")
    (tmp_path / "tmp" / "partial.msg").write_bytes(b"half a mess")
    incoming, outgoing = Spool(tmp_path).recover()
    assert incoming == [waiting.queue_id]
    assert outgoing == [done.queue_id]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_bad_references_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(SpoolError):
        spool.path("incoming", "../../etc/passwd")
    with pytest.raises(SpoolError):
        spool.path("nowhere", new_queue_id())
    with pytest.raises(SpoolError):
        spool.load("incoming", new_queue_id())
    assert is_queue_id(new_queue_id())
    assert not is_queue_id("x")


def test_purge_delivered(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    env = envelope()
    spool.put("delivered", env, b"x")
    assert spool.purge_delivered(3600) == 0
    assert spool.purge_delivered(0, now=10**12) == 1
    assert spool.ids("delivered") == []


def test_a_failed_rename_leaves_no_file_in_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tmp/ is cleared only at start: a receiver that keeps failing must not fill it."""
    spool = Spool(tmp_path)

    def refuse(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("gateway.queue.spool.os.rename", refuse)
    with pytest.raises(OSError, match="No space left"):
        spool.accept(envelope(), b"message")
    assert list((tmp_path / "tmp").iterdir()) == []
    assert spool.ids("incoming") == []
