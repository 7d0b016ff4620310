"""Originals kept in the database (the default): stored in pieces, read back verified on any
node, bounded against altered pieces, purged with their rows, and side by side with the
originals an installation kept as files before."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from gateway.configuration.settings import StoreSettings
from gateway.evidence.quarantine import (
    Quarantine,
    QuarantineElsewhereError,
    QuarantineIntegrityError,
    QuarantineStoreError,
)
from gateway.evidence.quarantine.stored import CHUNK_BYTES, StoredOriginals, gzip_pieces
from gateway.store import Store, StoreError
from gateway.store.schema import original_chunks
from tests.storekit import migrated_store

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
RAW = "From: 山田 <taro@example.jp>\r\nSubject: 見積\r\n\r\n本文です。①㈱～\r\n".encode()


@pytest.fixture
def store(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Store]:
    with migrated_store(tmp_path, settings=store_settings) as opened:
        yield opened


def _quarantine(tmp_path: Path, store: Store, **kwargs: object) -> Quarantine:
    return Quarantine(tmp_path / "quarantine", 90, store=store, **kwargs)  # type: ignore[arg-type]


def _keep(q: Quarantine, raw: bytes = RAW, queue_id: str = "Q1", when: datetime = T0) -> str:
    return q.store(
        queue_id,
        raw,
        client="192.0.2.1",
        helo="mx.example.net",
        mail_from="taro@example.jp",
        rcpt_to=["hanako@city.example.lg.jp"],
        received_at=when,
    )


def _pieces(store: Store, qid: str) -> list[bytes]:
    query = (
        select(original_chunks.c.data)
        .where(original_chunks.c.id == qid)
        .order_by(original_chunks.c.seq)
    )
    with store.reading() as db:
        return [bytes(data) for data in db.scalars(query)]


def test_an_original_is_kept_in_the_database_by_default(tmp_path: Path, store: Store) -> None:
    q = _quarantine(tmp_path, store)
    qid = _keep(q)
    entry = q.get(qid)
    assert entry.kept_in == "database"
    assert q.read_original(qid) == RAW
    pieces = _pieces(store, qid)
    # The pieces together are the same gzip stream a file would hold (zcat reads it).
    assert gzip.decompress(b"".join(pieces)) == RAW
    assert entry.stored_size == sum(map(len, pieces))
    assert not list((tmp_path / "quarantine" / "messages").rglob("*"))
    assert q.where_kept(qid).startswith("database (")
    # The same queue id with the same bytes again (a worker restarted): the same entry.
    assert _keep(q) == qid
    assert q.count() == 1


def test_a_large_original_is_written_and_read_in_bounded_pieces(
    tmp_path: Path, store: Store
) -> None:
    q = _quarantine(tmp_path, store)
    raw = b"Subject: x\r\n\r\n" + os.urandom(3 * CHUNK_BYTES + 12345)  # does not compress
    qid = _keep(q, raw)
    pieces = _pieces(store, qid)
    assert len(pieces) == 4
    assert all(len(piece) <= CHUNK_BYTES for piece in pieces)
    assert q.read_original(qid) == raw
    assert [entry for entry, problem in q.verify() if problem is None] == [qid]


def test_pieces_are_one_gzip_stream_whatever_the_size() -> None:
    for size in (0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, 2 * CHUNK_BYTES + 1):
        data = os.urandom(size)
        pieces = list(gzip_pieces(data, 1))
        assert all(0 < len(piece) <= CHUNK_BYTES for piece in pieces)
        assert gzip.decompress(b"".join(pieces)) == data


def test_altered_missing_and_bomb_pieces_are_integrity_failures(
    tmp_path: Path, store: Store
) -> None:
    q = _quarantine(tmp_path, store)
    altered, missing, bomb, garbage = (_keep(q, RAW, f"Q{n}") for n in range(4))

    def put(qid: str, data: bytes) -> None:
        with store.writing() as db:
            db.execute(update(original_chunks).where(original_chunks.c.id == qid).values(data=data))

    put(altered, gzip.compress(RAW.replace("見積".encode(), "請求".encode())))
    put(bomb, gzip.compress(b"\0" * (20 * 1024 * 1024)))  # read stops one byte past the size
    put(garbage, b"not gzip at all")
    with store.writing() as db:
        db.execute(original_chunks.delete().where(original_chunks.c.id == missing))
    with pytest.raises(QuarantineIntegrityError, match="does not match"):
        q.read_original(altered)
    with pytest.raises(QuarantineIntegrityError, match="does not match"):
        q.read_original(bomb)
    with pytest.raises(QuarantineIntegrityError, match="unreadable"):
        q.read_original(garbage)
    with pytest.raises(QuarantineIntegrityError, match="missing"):
        q.read_original(missing)
    assert sorted(qid for qid, problem in q.verify() if problem) == sorted(
        [altered, missing, bomb, garbage]
    )


def test_a_truncated_stream_is_an_integrity_failure(tmp_path: Path, store: Store) -> None:
    q = _quarantine(tmp_path, store)
    raw = RAW + os.urandom(CHUNK_BYTES)
    qid = _keep(q, raw)
    with store.writing() as db:
        db.execute(
            original_chunks.delete().where(original_chunks.c.id == qid, original_chunks.c.seq > 0)
        )
    with pytest.raises(QuarantineIntegrityError, match="does not match"):
        q.read_original(qid)


def test_any_node_reads_an_original_in_the_database_but_not_anothers_file(
    tmp_path: Path, store: Store
) -> None:
    first = _quarantine(tmp_path / "a", store, node="a")
    in_database = _keep(first, RAW, "Q1")
    as_file = _keep(_quarantine(tmp_path / "a", store, node="a", originals="directory"), RAW, "Q2")
    second = _quarantine(tmp_path / "b", store, node="b")
    assert second.read_original(in_database) == RAW
    with pytest.raises(QuarantineElsewhereError, match="node a's disk"):
        second.read_original(as_file)
    # verify on node b checks what it can read: the original in the database.
    assert [qid for qid, _ in second.verify()] == [in_database]


def test_an_installation_with_originals_on_disk_keeps_reading_and_purging_them(
    tmp_path: Path, store: Store
) -> None:
    before = _quarantine(tmp_path, store, originals="directory")
    old = _keep(before, RAW, "Q-old", T0 - timedelta(days=100))
    kept_file = _keep(before, RAW, "Q-file")
    upgraded = _quarantine(tmp_path, store)  # quarantine.originals left at its default
    new_old = _keep(upgraded, RAW, "Q-new-old", T0 - timedelta(days=100))
    new = _keep(upgraded, RAW, "Q-new")
    assert [upgraded.get(q).kept_in for q in (old, kept_file, new_old, new)] == [
        "directory",
        "directory",
        "database",
        "database",
    ]
    assert upgraded.read_original(kept_file) == RAW
    assert upgraded.read_original(new) == RAW
    old_file = upgraded.path_of(old)
    assert old_file.is_file()
    assert upgraded.purge(T0) == 2
    assert not old_file.exists()
    assert _pieces(store, new_old) == []
    assert {entry.id for entry in upgraded.list()} == {kept_file, new}
    assert upgraded.read_original(kept_file) == RAW


def test_pieces_without_a_row_are_purged_once_past_retention(tmp_path: Path, store: Store) -> None:
    q = _quarantine(tmp_path, store)
    originals = StoredOriginals(store)
    # A crash between writing the pieces and inserting the row: pieces without a row.
    old = originals.new_id(T0 - timedelta(days=100))
    recent = originals.new_id(T0 - timedelta(days=1))
    for qid in (old, recent):
        originals.write(qid, RAW, "Q-crashed")
    q.purge(T0)
    assert _pieces(store, old) == []
    assert _pieces(store, recent) != []


def test_a_failed_index_insert_leaves_no_pieces(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = _quarantine(tmp_path, store)

    def refuse(*args: object, **kwargs: object) -> None:
        raise StoreError("the database refused the row")

    monkeypatch.setattr(q.index, "insert", refuse)
    with pytest.raises(QuarantineStoreError, match="cannot index queue id Q1"):
        _keep(q)
    with store.reading() as db:
        assert db.scalar(select(func.count()).select_from(original_chunks)) == 0


def test_an_original_that_cannot_be_written_leaves_nothing(tmp_path: Path, store: Store) -> None:
    q = _quarantine(tmp_path, store)
    broken = Store(
        "postgresql+psycopg://nobody@127.0.0.1:1/none"
        if store.dialect == "postgresql"
        else f"sqlite:///{tmp_path / 'missing' / 'store.sqlite3'}",
        limits=StoreSettings(connect_timeout_seconds=1),
    )
    q.originals = StoredOriginals(broken)
    with pytest.raises(QuarantineStoreError, match="cannot store queue id Q1"):
        _keep(q)
    broken.close()
    assert q.count() == 0
