"""Group commit of the spool's acceptances: concurrent messages share one directory flush,
and each is still acknowledged only after a flush that began after its own rename."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import gateway.queue.spool as spool_module
from gateway.queue.spool import Envelope, Spool, new_queue_id

ACCEPTS = 16


class FlushRecorder:
    """Stands in for the directory fsync of ``incoming/``: records which files each flush
    saw when it began, holds the first flush until every caller is waiting, and can fail."""

    def __init__(self, incoming: Path, spool: Spool) -> None:
        self.incoming = incoming
        self.spool = spool
        self.real = spool_module._fsync_dir
        self.lock = threading.Lock()
        self.events: list[tuple[str, frozenset[str]]] = []  # ("flush"|"returned", names)
        self.fail_next = False

    def __call__(self, path: Path) -> None:
        if path != self.incoming:
            self.real(path)
            return
        seen = frozenset(os.listdir(path))
        flusher = self.spool.incoming_flusher
        if flusher.flushes == 0:  # the first flush waits for all the others to queue up
            while True:
                with flusher._lock:
                    if flusher._requested >= ACCEPTS:
                        break
                threading.Event().wait(0.001)
        with self.lock:
            failing, self.fail_next = self.fail_next, False
        if failing:
            raise OSError(5, "injected flush failure")
        self.real(path)
        with self.lock:
            self.events.append(("flush", seen))

    def returned(self, name: str) -> None:
        with self.lock:
            self.events.append(("returned", frozenset({name})))


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Spool, FlushRecorder]:
    spool = Spool(tmp_path)
    recorder = FlushRecorder(tmp_path / "incoming", spool)
    monkeypatch.setattr(spool_module, "_fsync_dir", recorder)
    return spool, recorder


def _accept_many(spool: Spool, recorder: FlushRecorder) -> list[str | BaseException]:
    def one(_: int) -> str | BaseException:
        env = Envelope(queue_id=new_queue_id(), mail_from="a@example.com", rcpt_tos=("u@x.jp",))
        try:
            path = spool.accept(env, b"Subject: x\r\n\r\nbody\r\n")
        except OSError as exc:
            return exc
        recorder.returned(path.name)
        return path.name

    with ThreadPoolExecutor(ACCEPTS) as pool:
        return list(pool.map(one, range(ACCEPTS)))


def test_concurrent_acceptances_share_directory_flushes(
    recorded: tuple[Spool, FlushRecorder],
) -> None:
    spool, recorder = recorded
    names = _accept_many(spool, recorder)
    assert all(isinstance(name, str) for name in names)
    # The first flush covers the first rename; every later one waited and shares the second.
    assert spool.incoming_flusher.flushes == 2
    assert sorted(spool.ids("incoming")) == sorted(str(n)[: -len(".msg")] for n in names)


def test_each_acceptance_returns_after_a_flush_that_saw_its_file(
    recorded: tuple[Spool, FlushRecorder],
) -> None:
    spool, recorder = recorded
    _accept_many(spool, recorder)
    flushed: set[str] = set()
    for kind, names in recorder.events:
        if kind == "flush":
            flushed |= names
        else:
            (name,) = names
            assert name in flushed, f"{name} acknowledged before a flush covered it"


def test_a_failed_flush_fails_every_acceptance_it_covered(
    recorded: tuple[Spool, FlushRecorder],
) -> None:
    spool, recorder = recorded
    recorder.fail_next = True  # the first flush (one caller) fails
    results = _accept_many(spool, recorder)
    failures = [r for r in results if isinstance(r, OSError)]
    assert len(failures) == 1
    assert "injected" in str(failures[0])
    assert spool.incoming_flusher._failed == {}  # told and forgotten: nothing kept
    # The next acceptances are covered by a flush that worked.
    recorder.fail_next = True
    env = Envelope(queue_id=new_queue_id(), mail_from="", rcpt_tos=("u@x.jp",))
    with pytest.raises(OSError, match="injected"):
        spool.accept(env, b"x\r\n")
    spool.accept(env.with_(queue_id=new_queue_id()), b"x\r\n")
