"""Singleton jobs: on one PostgreSQL a job's lock is held by exactly one node, stays there, and
moves to another node when the holder goes away or loses its connection; on SQLite (one node)
every job is held."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.configuration.settings import StoreSettings
from gateway.evidence.quarantine import Quarantine
from gateway.store import Store
from gateway.store.singleton import PURGE_JOB, SingletonLocks, lock_key
from tests.postgres import Cluster
from tests.storekit import migrated_store

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


@contextlib.contextmanager
def _nodes(tmp_path: Path, url: str, *names: str) -> Iterator[list[tuple[Store, SingletonLocks]]]:
    """A store and the singleton locks of each named node, all on one database."""
    migrated_store(tmp_path, settings=StoreSettings(url=url)).close()
    opened: list[tuple[Store, SingletonLocks]] = []
    try:
        for name in names:
            store = Store.from_settings(StoreSettings(url=url), tmp_path, create=False)
            opened.append((store, SingletonLocks(store, name)))
        yield opened
    finally:
        for store, locks in opened:
            locks.close()
            store.close()


def test_on_sqlite_every_job_is_held(tmp_path: Path) -> None:
    with _nodes(tmp_path, f"sqlite:///{tmp_path / 'store.sqlite3'}", "a", "b") as nodes:
        assert [locks.hold(PURGE_JOB) for _, locks in nodes] == [True, True]


def test_a_job_is_held_by_exactly_one_node_and_stays_there(
    tmp_path: Path, postgres_url: str
) -> None:
    with _nodes(tmp_path, postgres_url, "a", "b", "c") as nodes:
        (_, a), (_, b), (_, c) = nodes
        assert [a.hold(PURGE_JOB), b.hold(PURGE_JOB), c.hold(PURGE_JOB)] == [True, False, False]
        for _ in range(3):  # round after round, the same node
            assert [b.hold(PURGE_JOB), a.hold(PURGE_JOB), c.hold(PURGE_JOB)] == [False, True, False]
        # Another job is another lock: it goes to whoever asks first.
        assert [b.hold("other"), a.hold("other")] == [True, False]
        a.close()  # the holder stops: the next node that asks takes the job
        assert [c.hold(PURGE_JOB), b.hold(PURGE_JOB)] == [True, False]


def test_a_holder_that_loses_its_connection_loses_the_job(
    tmp_path: Path, postgres_url: str, postgres_cluster: Cluster
) -> None:
    with _nodes(tmp_path, postgres_url, "a", "b") as nodes:
        (_, a), (_, b) = nodes
        assert a.hold(PURGE_JOB)
        assert a._connection is not None
        pid = a._connection.scalar(text("SELECT pg_backend_pid()"))
        with postgres_cluster.connect("postgres") as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 60000)", (pid,))  # waits for its end
        assert b.hold(PURGE_JOB)  # PostgreSQL dropped the lock with the session
        assert not a.hold(PURGE_JOB)  # a notices, and asks again: b has it
        b.close()
        assert a.hold(PURGE_JOB)  # a new connection, the job back


def test_a_database_that_does_not_answer_holds_no_job(tmp_path: Path) -> None:
    store = Store(
        "postgresql+psycopg://mukaika@127.0.0.1:1/none",
        limits=StoreSettings(connect_timeout_seconds=1),
    )
    with store:
        assert not SingletonLocks(store, "a").hold(PURGE_JOB)


def test_lock_keys_are_two_signed_32_bit_integers() -> None:
    for name in (PURGE_JOB, "outbound-expiry", "x" * 200):
        classid, objid = lock_key(name)
        assert -(2**31) <= classid < 2**31
        assert -(2**31) <= objid < 2**31
    assert lock_key("a") != lock_key("b")


async def test_two_gateways_purge_loops_purge_on_exactly_one(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two nodes' purge loops on one database: the purge of the cluster runs on one node, the
    other only tidies its own directory."""
    ran: list[tuple[str, str]] = []
    enough = asyncio.Event()

    def record(node: str, what: str) -> None:
        ran.append((node, what))
        if len(ran) >= 20:
            enough.set()

    with _nodes(tmp_path, postgres_url, "a", "b") as nodes:
        loops = []
        for (store, locks), name in zip(nodes, "ab", strict=True):
            quarantine = Quarantine(tmp_path / name, store=store, node=name)
            monkeypatch.setattr(quarantine, "purge", lambda now, n=name: record(n, "purge"))
            monkeypatch.setattr(quarantine, "tidy_directory", lambda now, n=name: record(n, "tidy"))
            loops.append(
                asyncio.create_task(
                    quarantine.purge_forever(
                        0.01, now=lambda: T0 + timedelta(days=1), singleton=locks.job(PURGE_JOB)
                    )
                )
            )
        async with asyncio.timeout(60):
            await enough.wait()
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
    purging = {node for node, what in ran if what == "purge"}
    tidying = {node for node, what in ran if what == "tidy"}
    assert len(purging) == 1
    assert tidying == {"a", "b"} - purging
