"""``mukaika store copy``: an installation moved from SQLite to PostgreSQL and back loses and
changes no row (originals kept in the database included), refuses a target that holds rows
unless told, and commits nothing when the counts disagree."""

from __future__ import annotations

import contextlib
import io
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Table, select

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.configuration.config import Config
from gateway.configuration.settings import StoreSettings
from gateway.evidence.quarantine import Quarantine
from gateway.evidence.quarantine.stored import CHUNK_BYTES
from gateway.service.held_mail import HeldMail
from gateway.store import Store, copying
from gateway.store.schema import metadata
from gateway.store.users import add_user, list_users
from sanitizers.report import Report
from sanitizers.vocabulary import MessageState, Reason, UserRole, Verdict
from tests.gateway.relaykit import FakeAudit
from tests.storekit import quarantine_in

LARGE = b"Subject: large\r\n\r\n" + random.Random(18).randbytes(2 * CHUNK_BYTES + 1)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _fill(data: Path) -> None:
    """A store with entries (Japanese text), users and decisions in several states."""
    with quarantine_in(data / "quarantine") as quarantine:
        store = quarantine.index.store
        add_user(store, "alice", UserRole.OPERATOR, "root")
        add_user(store, "bob", UserRole.APPROVER, "root")
        held_mail = HeldMail(store, Config(), FakeAudit())
        for n in range(7):
            qid = quarantine.store(
                f"Q{n}",
                f"Subject: {n}\r\n\r\n本文①㈱～ {n}\r\n".encode(),
                client="192.0.2.1",
                helo="mx.example.net",
                mail_from="山田@example.jp",
                rcpt_to=["hanako@city.example.lg.jp", f"ken{n}@city.example.lg.jp"],
                received_at=datetime(2026, 12, 1, 9, n, tzinfo=UTC),
            )
            quarantine.record_result(
                qid,
                Report(verdict=Verdict.HOLD, reasons=[Reason.ENCRYPTED_ARCHIVE], subject="見積①"),
            )
            quarantine.record_delivery(qid, MessageState.HELD)
            if n % 2:
                held_mail.request(qid, actor="alice", reason=f"業務上必要 {n}")
        # An original larger than a piece: the copy moves its pieces a few at a time.
        quarantine.store(
            "Q-large",
            LARGE,
            client="192.0.2.1",
            helo="mx.example.net",
            mail_from="taro@example.jp",
            rcpt_to=["hanako@city.example.lg.jp"],
            received_at=datetime(2026, 12, 1, 10, tzinfo=UTC),
        )


def _rows(url: str, data: Path) -> dict[str, list[dict[str, Any]]]:
    with (
        Store.from_settings(StoreSettings(url=url), data, create=False) as store,
        store.reading() as db,
    ):
        return {table.name: _table(db, table) for table in metadata.sorted_tables}


def _table(db: Connection, table: Table) -> list[dict[str, Any]]:
    query = select(table).order_by(*table.primary_key.columns)
    return [dict(row) for row in db.execute(query).mappings()]


def test_sqlite_to_postgresql_and_back_keeps_every_row(tmp_path: Path, postgres_url: str) -> None:
    data = tmp_path / "data"
    _fill(data)
    original = f"sqlite:///{data / 'store.sqlite3'}"
    back = f"sqlite:///{tmp_path / 'back.sqlite3'}"
    before = _rows(original, data)
    assert [len(before[name]) for name in ("messages", "users", "requests")] == [8, 2, 3]
    assert len(before["original_chunks"]) == 7 + 3

    code, out, err = run("store", "copy", "--from", original, "--to", postgres_url,
                         "--data-dir", str(data))  # fmt: skip
    assert code == ExitCode.OK, err
    assert "messages 8" in out
    assert "counts verified" in out
    assert "***" in out
    assert _rows(postgres_url, data) == before
    # The originals came along: any node on the new store reads them, verified.
    with (
        Store.from_settings(StoreSettings(url=postgres_url), data, create=False) as store,
        Quarantine(tmp_path / "elsewhere", store=store, node="another") as quarantine,
    ):
        problems = dict(quarantine.verify())
        assert len(problems) == 8
        assert set(problems.values()) == {None}
        (large,) = quarantine.list(queue_id="Q-large")
        assert quarantine.read_original(large.id) == LARGE

    code, _, err = run("store", "copy", "--from", postgres_url, "--to", back,
                       "--data-dir", str(data))  # fmt: skip
    assert code == ExitCode.OK, err
    assert _rows(back, data) == before
    audit = [json.loads(line) for line in (data / "audit" / "audit.jsonl").read_text().splitlines()]
    assert [r["outcome"] for r in audit if r["event"] == "store"][-2:] == ["copied", "copied"]
    assert all("dropped_keys" not in record for record in audit)
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in (data / "audit" / "audit.jsonl").read_text()

    # The copy is a working store: new ids follow the copied ones (PostgreSQL's sequences).
    with Store.from_settings(StoreSettings(url=postgres_url), data, create=False) as store:
        add_user(store, "carol", UserRole.APPROVER, "root")
        assert [user.name for user in list_users(store)] == ["alice", "bob", "carol"]
        with store.reading() as db:
            ids = [row["id"] for row in _table(db, metadata.tables["users"])]
        assert ids == [1, 2, 3]


def test_a_target_that_holds_rows_is_refused_unless_replaced(
    tmp_path: Path, postgres_url: str
) -> None:
    data = tmp_path / "data"
    _fill(data)
    original = f"sqlite:///{data / 'store.sqlite3'}"
    with Store.from_settings(StoreSettings(url=postgres_url), data, create=True) as pg:
        pg.migrate()
        add_user(pg, "mallory", UserRole.APPROVER, "root")
    code, _, err = run("store", "copy", "--from", original, "--to", postgres_url,
                       "--data-dir", str(data))  # fmt: skip
    assert code == ExitCode.USAGE
    assert "not empty (users 1)" in err
    assert "--replace" in err
    assert [row["name"] for row in _rows(postgres_url, data)["users"]] == ["mallory"]

    code, _, err = run("store", "copy", "--from", original, "--to", postgres_url, "--replace",
                       "--data-dir", str(data))  # fmt: skip
    assert code == ExitCode.OK, err
    assert _rows(postgres_url, data) == _rows(original, data)


def test_counts_that_disagree_commit_nothing(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy that loses a row (here: the last row of each table is dropped on the way) is
    found by the count check and rolled back whole."""
    data = tmp_path / "data"
    _fill(data)
    real = copying._copy_table

    def lossy(read: Connection, write: Connection, table: Table) -> int:
        copied = real(read, write, table)
        rows = _table(write, table)
        if rows:
            keys = table.primary_key.columns
            write.execute(table.delete().where(*[c == rows[-1][c.name] for c in keys]))
        return copied

    monkeypatch.setattr(copying, "_copy_table", lossy)
    code, _, err = run("store", "copy", "--from", f"sqlite:///{data / 'store.sqlite3'}",
                       "--to", postgres_url, "--data-dir", str(data))  # fmt: skip
    assert code == ExitCode.IO_ERROR
    assert "nothing was committed" in err
    assert all(rows == [] for rows in _rows(postgres_url, data).values())


def test_refusals_before_anything_is_written(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _fill(data)
    here = f"sqlite:///{data / 'store.sqlite3'}"
    code, _, err = run("store", "copy", "--from", here, "--to", here, "--data-dir", str(data))
    assert (code, "the same store" in err) == (ExitCode.IO_ERROR, True)
    code, _, err = run("store", "copy", "--from", f"sqlite:///{tmp_path / 'none.sqlite3'}",
                       "--to", f"sqlite:///{tmp_path / 't.sqlite3'}")  # fmt: skip
    assert code == ExitCode.NOT_FOUND
    assert not (tmp_path / "t.sqlite3").exists()
    code, _, err = run("store", "copy", "--from", here, "--to", "mysql://u:secret@h/d")
    assert code == ExitCode.CONFIG
    assert "secret" not in err
