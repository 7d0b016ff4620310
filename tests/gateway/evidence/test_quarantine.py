"""The quarantine: durable, verified storage of originals with an index and retention."""

from __future__ import annotations

import asyncio
import errno
import gzip
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from gateway.configuration.settings import QuarantineSettings, StoreSettings
from gateway.evidence.quarantine import (
    Quarantine,
    QuarantineIntegrityError,
    QuarantineNotFoundError,
    QuarantineStoreError,
    is_valid_id,
)
from sanitizers.report import PartReport, Report
from sanitizers.vocabulary import Action, Reason, Verdict
from tests.storekit import migrated_store, quarantine_in

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
RAW = (
    "From: 山田 太郎 <taro@example.jp>\r\n"
    "Subject: =?ISO-2022-JP?B?GyRCN29MPhsoQg==?=\r\n"
    "\r\n"
    "本文です。①㈱～\r\n"
).encode()


def _store(q: Quarantine, queue_id: str = "Q1", raw: bytes = RAW, when: datetime = T0) -> str:
    return q.store(
        queue_id,
        raw,
        client="192.0.2.1",
        helo="mx.example.net",
        mail_from="taro@example.jp",
        rcpt_to=["hanako@city.example.lg.jp", "ken@city.example.lg.jp"],
        received_at=when,
    )


@pytest.fixture
def q(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Quarantine]:
    """A quarantine on each backend of the store (SQLite, PostgreSQL), its originals kept as
    files (those in the database: test_stored_originals.py)."""
    with quarantine_in(
        tmp_path / "quarantine", retention_days=90, settings=store_settings, originals="directory"
    ) as quarantine:
        yield quarantine


class _FailingEngine:
    """Stands in for the store's engine: reads work, every write transaction fails with
    ``error`` as SQLite's driver raises it (wrapped by SQLAlchemy), as on a full disk."""

    def __init__(self, real: Engine, error: sqlite3.Error) -> None:
        self.connect = real.connect
        self.error = error

    def execution_options(self, **options: object) -> _FailingEngine:
        return self

    def begin(self) -> None:
        raise OperationalError("BEGIN IMMEDIATE", {}, self.error)


def _break_writes(q: Quarantine, monkeypatch: pytest.MonkeyPatch, error: sqlite3.Error) -> None:
    monkeypatch.setattr(q.index.store, "engine", _FailingEngine(q.index.store.engine, error))


def _disk_full() -> sqlite3.Error:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode = sqlite3.SQLITE_FULL
    return exc


def _report() -> Report:
    return Report(
        verdict=Verdict.HOLD,
        reasons=[Reason.ENCRYPTED_ARCHIVE],
        parts=[
            PartReport(
                path="1", declared_type="text/plain", action=Action.KEPT, reason=Reason.TEXT_BODY
            ),
            PartReport(
                path="2",
                declared_type="application/zip",
                action=Action.HELD,
                reason=Reason.ENCRYPTED_ARCHIVE,
                filename="見積書.zip",
                findings=[Reason.ENCRYPTED],
            ),
        ],
        message_id="<abc@example.jp>",
        from_="山田 太郎 <taro@example.jp>",
        subject="見積書の送付について①",
    )


def test_store_and_read_round_trip(q: Quarantine) -> None:
    qid = _store(q)
    assert is_valid_id(qid)
    assert qid.startswith("20261101T093000Z-")
    assert q.read_original(qid) == RAW
    entry = q.get(qid)
    assert entry.queue_id == "Q1"
    assert entry.received_at == T0
    assert entry.size == len(RAW)
    assert entry.sha256 == hashlib.sha256(RAW).hexdigest()
    assert entry.rcpt_to == ("hanako@city.example.lg.jp", "ken@city.example.lg.jp")
    assert entry.state == "queued"
    assert entry.verdict is None


def test_file_is_gzip_and_private(q: Quarantine) -> None:
    qid = _store(q)
    path = q.path_of(qid)
    assert gzip.decompress(path.read_bytes()) == RAW
    assert path.stat().st_mode & 0o777 == 0o600
    assert (q.directory / "messages").stat().st_mode & 0o077 == 0
    store = q.index.store.path
    if store is not None:  # SQLite: the index is private too
        assert store.stat().st_mode & 0o777 == 0o600
        assert (store.parent / "store.sqlite3-wal").stat().st_mode & 0o777 == 0o600


def test_storing_same_queue_id_twice_returns_first_id(q: Quarantine) -> None:
    first = _store(q)
    assert _store(q) == first
    assert q.count() == 1
    # Other content under the same queue id is a different original.
    assert _store(q, raw=RAW + b"x") != first
    assert q.count() == 2


def test_naive_datetime_is_refused(q: Quarantine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _store(q, when=datetime(2026, 11, 1, 9, 30))


def test_record_result_and_delivery(q: Quarantine) -> None:
    qid = _store(q)
    q.record_result(qid, _report())
    q.record_delivery(qid, "held")
    entry = q.get(qid)
    assert entry.verdict == "hold"
    assert entry.reasons == ("encrypted", "encrypted_archive", "text_body")
    assert entry.subject == "見積書の送付について①"
    assert entry.from_ == "山田 太郎 <taro@example.jp>"
    assert entry.message_id == "<abc@example.jp>"
    assert entry.state == "held"
    assert entry.updated_at >= entry.stored_at


def test_unknown_delivery_state_is_refused(q: Quarantine) -> None:
    qid = _store(q)
    with pytest.raises(ValueError, match="unknown delivery state"):
        q.record_delivery(qid, "lost")


@pytest.mark.parametrize("qid", ["20261101T093000Z-000000000000", "../../etc/passwd", ""])
def test_unknown_or_malformed_id(q: Quarantine, qid: str) -> None:
    with pytest.raises(QuarantineNotFoundError, match="no quarantined message"):
        q.get(qid)
    with pytest.raises(QuarantineNotFoundError):
        q.read_original(qid)
    with pytest.raises(QuarantineNotFoundError):
        q.record_delivery(qid, "delivered")
    with pytest.raises(QuarantineNotFoundError):
        q.record_result(qid, _report())


def test_header_strings_are_cleaned_and_bounded(q: Quarantine) -> None:
    qid = q.store(
        "Q\x1b[31m1",
        RAW,
        client="192.0.2.1",
        helo="evil\r\nX-Injected: 1",
        mail_from="a" * 5000,
        rcpt_to=["x\x00y@example.jp"],
        received_at=T0,
    )
    report = _report()
    report.subject = "件名\x1b]0;title\x07\u202eabc"
    q.record_result(qid, report)
    entry = q.get(qid)
    assert entry.queue_id == "Q[31m1"
    assert entry.helo == "evilX-Injected: 1"
    assert len(entry.mail_from) == 1000
    assert entry.rcpt_to == ("xy@example.jp",)
    assert entry.subject == "件名]0;titleabc"


def test_tampered_file_is_detected(q: Quarantine) -> None:
    qid = _store(q)
    path = q.path_of(qid)
    path.write_bytes(gzip.compress(RAW.replace("本文".encode(), "偽物".encode())))
    with pytest.raises(QuarantineIntegrityError, match="SHA-256"):
        q.read_original(qid)


def test_corrupt_and_missing_files_are_detected(q: Quarantine) -> None:
    qid = _store(q)
    path = q.path_of(qid)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(QuarantineIntegrityError, match="unreadable"):
        q.read_original(qid)
    path.unlink()
    with pytest.raises(QuarantineIntegrityError, match="missing"):
        q.read_original(qid)


def test_swapped_in_bomb_is_read_bounded(q: Quarantine) -> None:
    qid = _store(q)
    q.path_of(qid).write_bytes(gzip.compress(b"\0" * (20 * 1024 * 1024)))
    with pytest.raises(QuarantineIntegrityError, match="SHA-256"):
        q.read_original(qid)


def test_export_writes_verified_copy(q: Quarantine, tmp_path: Path) -> None:
    qid = _store(q)
    out = tmp_path / "out.eml"
    assert q.export(qid, out) == len(RAW)
    assert out.read_bytes() == RAW
    assert out.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        q.export(qid, out)
    q.export(qid, out, overwrite=True)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_export_of_tampered_original_writes_nothing(q: Quarantine, tmp_path: Path) -> None:
    qid = _store(q)
    q.path_of(qid).write_bytes(gzip.compress(b"changed"))
    out = tmp_path / "out.eml"
    with pytest.raises(QuarantineIntegrityError):
        q.export(qid, out)
    assert not out.exists()


def test_list_filters(q: Quarantine) -> None:
    ids = [_store(q, f"Q{i}", RAW + bytes([i]), T0 + timedelta(hours=i)) for i in range(6)]
    report = _report()
    q.record_result(ids[1], report)
    q.record_delivery(ids[1], "held")
    report.verdict = Verdict.DELIVER
    for qid in ids[2:4]:
        q.record_result(qid, report)
        q.record_delivery(qid, "delivered")

    assert [e.id for e in q.list()] == ids[::-1]
    assert [e.id for e in q.list(state="held")] == [ids[1]]
    assert [e.id for e in q.list(verdict="deliver")] == [ids[3], ids[2]]
    assert [e.id for e in q.list(since=T0 + timedelta(hours=4))] == [ids[5], ids[4]]
    assert [e.id for e in q.list(until=T0 + timedelta(hours=1))] == [ids[0]]
    assert [e.id for e in q.list(limit=2)] == [ids[5], ids[4]]
    assert [e.id for e in q.list(queue_id="Q3")] == [ids[3]]
    assert q.list(state="dead") == []
    with pytest.raises(ValueError, match="limit"):
        q.list(limit=0)


def test_retention_purge_with_injected_now(q: Quarantine) -> None:
    old = _store(q, "Q-old", RAW + b"1", T0)
    held = _store(q, "Q-held", RAW + b"2", T0)
    q.record_delivery(held, "held")
    new = _store(q, "Q-new", RAW + b"3", T0 + timedelta(days=30))
    old_path = q.path_of(old)

    assert q.purge(T0 + timedelta(days=89)) == 0
    assert q.purge(T0 + timedelta(days=91), dry_run=True) == 2
    assert q.count() == 3
    assert q.purge(T0 + timedelta(days=91)) == 2
    assert not old_path.exists()
    assert [e.id for e in q.list()] == [new]
    with pytest.raises(QuarantineNotFoundError):
        q.get(old)
    assert q.purge(T0 + timedelta(days=121)) == 1
    assert q.count() == 0
    # Empty day directories are removed once past retention.
    assert list((q.directory / "messages").iterdir()) == []


def test_held_mail_may_have_its_own_retention(tmp_path: Path) -> None:
    settings = QuarantineSettings(retention_days=30, held_retention_days=365)
    with (
        migrated_store(tmp_path) as store,
        Quarantine.from_settings(settings, tmp_path, store) as q,
    ):
        assert q.directory == tmp_path / "quarantine"
        plain = _store(q, "Q1", RAW + b"1")
        held = _store(q, "Q2", RAW + b"2")
        q.record_delivery(held, "held")
        assert q.purge(T0 + timedelta(days=31)) == 1
        assert [e.id for e in q.list()] == [held]
        with pytest.raises(QuarantineNotFoundError):
            q.get(plain)
        assert q.purge(T0 + timedelta(days=366)) == 1


def test_purge_removes_rows_whose_file_is_gone_and_orphan_files(q: Quarantine) -> None:
    gone = _store(q, "Q1", RAW + b"1")
    q.path_of(gone).unlink()
    # A file renamed into place whose row never got written (crash between the two).
    orphan_dir = q.directory / "messages" / "20261101"
    orphan = orphan_dir / "20261101T000000Z-0123456789ab.eml.gz"
    orphan.write_bytes(gzip.compress(b"orphan"))
    assert q.purge(T0 + timedelta(days=100)) == 1
    assert not orphan.exists()
    assert q.count() == 0


def test_leftover_temp_file_is_ignored_and_cleaned(tmp_path: Path) -> None:
    directory = tmp_path / "quarantine"
    with quarantine_in(directory, 90) as q:
        _store(q)
    stale = directory / "tmp" / "20261101T093000Z-aaaaaaaaaaaa.deadbeef.tmp"
    fresh = directory / "tmp" / "20261101T093000Z-bbbbbbbbbbbb.deadbeef.tmp"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"in progress elsewhere")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    with quarantine_in(directory, 90) as q:  # reopening after a "crash"
        assert not stale.exists()
        assert fresh.exists()  # may belong to another live process
        assert q.count() == 1
        assert all(e.queue_id == "Q1" for e in q.list())


def test_disk_full_leaves_nothing_and_raises_clear_error(
    q: Quarantine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(QuarantineStoreError, match=r"(?i)no space left") as info:
        _store(q)
    assert isinstance(info.value, OSError)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert list((q.directory / "tmp").iterdir()) == []
    assert list((q.directory / "messages").rglob("*.gz")) == []
    assert q.count() == 0
    # The quarantine still works once there is space again.
    assert q.read_original(_store(q)) == RAW


def test_disk_full_while_writing(q: Quarantine, monkeypatch: pytest.MonkeyPatch) -> None:
    class FullGzip(gzip.GzipFile):
        def write(self, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gzip, "GzipFile", FullGzip)
    with pytest.raises(QuarantineStoreError, match="cannot store queue id Q1"):
        _store(q)
    assert list((q.directory / "tmp").iterdir()) == []
    assert q.count() == 0


def test_failed_index_insert_removes_the_file(
    q: Quarantine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_writes(q, monkeypatch, sqlite3.OperationalError("disk I/O error"))
    with pytest.raises(QuarantineStoreError, match="cannot index") as info:
        _store(q)
    assert info.value.errno == errno.EIO
    assert list((q.directory / "messages").rglob("*.gz")) == []


def test_full_index_is_reported_as_enospc(q: Quarantine, monkeypatch: pytest.MonkeyPatch) -> None:
    _break_writes(q, monkeypatch, _disk_full())
    with pytest.raises(QuarantineStoreError) as info:
        _store(q)
    assert info.value.errno == errno.ENOSPC
    assert list((q.directory / "messages").rglob("*.gz")) == []


def test_concurrent_writers(q: Quarantine) -> None:
    errors: list[BaseException] = []
    ids: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for i in range(10):
                raw = RAW + f"{n}-{i}".encode()
                qid = _store(q, f"Q{n}-{i}", raw)
                q.record_delivery(qid, "delivered")
                assert q.read_original(qid) == raw
                with lock:
                    ids.append(qid)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 80
    assert q.count() == 80
    assert len(q.list(state="delivered", limit=1000)) == 80


def test_two_processes_share_the_index(tmp_path: Path) -> None:
    directory = tmp_path / "quarantine"
    with quarantine_in(directory, 90) as service, quarantine_in(directory, 90) as cli:
        qid = _store(service)
        assert cli.get(qid).queue_id == "Q1"
        cli.record_delivery(qid, "dead")
        assert service.get(qid).state == "dead"


def test_settings_refuse_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        QuarantineSettings.model_validate({"retension_days": 3})
    with pytest.raises(ValueError, match="greater than 0"):
        QuarantineSettings(retention_days=0)
    assert QuarantineSettings(directory="/srv/q").resolve_directory(Path("var")) == Path("/srv/q")


def test_store_fsyncs_file_and_directory(q: Quarantine, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    qid = _store(q)
    final = q.path_of(qid)
    assert any(p.endswith(".tmp") for p in synced)  # the file, before the rename
    assert str(final.parent) in synced  # the directory, after it
    assert str(q.directory / "messages") in synced  # the new day directory's entry


async def test_purge_forever_runs_until_cancelled(q: Quarantine) -> None:
    _store(q, "Q1", RAW, T0)
    task = asyncio.create_task(q.purge_forever(0.01, now=lambda: T0 + timedelta(days=100)))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if q.count() == 0:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert q.count() == 0


async def test_purge_forever_survives_errors(
    q: Quarantine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[datetime] = []

    def failing(now: datetime, *, dry_run: bool = False) -> int:
        calls.append(now)
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(q, "purge", failing)
    task = asyncio.create_task(q.purge_forever(0.01))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len(calls) >= 2:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) >= 2
    assert "quarantine purge failed" in caplog.text


def test_index_failure_on_update_is_an_os_error(
    q: Quarantine, monkeypatch: pytest.MonkeyPatch
) -> None:
    qid = _store(q)

    _break_writes(q, monkeypatch, sqlite3.OperationalError("disk I/O error"))
    with pytest.raises(QuarantineStoreError, match="cannot update") as info:
        q.record_delivery(qid, "delivered")
    assert isinstance(info.value, OSError)


def test_directory_fsync_failure_removes_the_renamed_file(
    q: Quarantine, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = _store(q, "Q0", RAW + b"0")  # the day directory exists from now on
    real_fsync = os.fsync

    def fail_on_directories(fd: int) -> None:
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fail_on_directories)
    with pytest.raises(QuarantineStoreError, match="Input/output error"):
        _store(q)
    monkeypatch.undo()
    assert list((q.directory / "messages").rglob("*.gz")) == [q.path_of(kept)]
    assert list((q.directory / "tmp").iterdir()) == []
    assert q.count() == 1


def test_verify_reports_each_original(q: Quarantine) -> None:
    good = _store(q, "Q1", RAW + b"1", T0)
    bad = _store(q, "Q2", RAW + b"2", T0 + timedelta(hours=1))
    q.path_of(bad).write_bytes(gzip.compress(b"x"))
    results = dict(q.verify())
    assert results[good] is None
    assert "SHA-256" in str(results[bad])
    assert len(list(q.verify(limit=1))) == 1
