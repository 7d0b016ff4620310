"""The quarantine's index: one SQLite row per stored original.

Durability: WAL with ``synchronous=FULL``, every write in an ``IMMEDIATE`` transaction, so a
row that is there survives a crash. One connection guarded by a lock, so the methods are safe
from several threads; another process (the CLI) may open the same index at the same time, and
SQLite's WAL and busy timeout serialise the writers. The index holds addresses and subjects:
it is private (mode 0600), like the originals.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from gateway.evidence.quarantine.entries import (
    MAX_LIST_LIMIT,
    QuarantineEntry,
    QuarantineError,
    QuarantineNotFoundError,
    QuarantineStoreError,
    format_time,
    is_valid_id,
    parse_time,
)

_SCHEMA_VERSION: Final = 2
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS messages (
    id          TEXT PRIMARY KEY,
    queue_id    TEXT NOT NULL,
    received_at TEXT NOT NULL,
    stored_at   TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    client      TEXT NOT NULL,
    helo        TEXT NOT NULL,
    mail_from   TEXT NOT NULL,
    rcpt_to     TEXT NOT NULL,
    size        INTEGER NOT NULL,
    stored_size INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    verdict     TEXT,
    reasons     TEXT NOT NULL DEFAULT '[]',
    message_id  TEXT,
    from_       TEXT,
    subject     TEXT,
    state       TEXT NOT NULL DEFAULT 'queued',
    unlock_attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_queue_id ON messages (queue_id);
CREATE INDEX IF NOT EXISTS messages_received_at ON messages (received_at);
CREATE INDEX IF NOT EXISTS messages_state ON messages (state, received_at);
CREATE INDEX IF NOT EXISTS messages_verdict ON messages (verdict, received_at);
"""


def sqlite_errno(exc: sqlite3.Error) -> int:
    """ENOSPC for SQLITE_FULL (so callers see a full disk as such), else EIO."""
    return (
        errno.ENOSPC if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL else errno.EIO
    )


class QuarantineIndex:
    """The SQLite index of one quarantine directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                path,
                timeout=30.0,
                isolation_level=None,  # explicit BEGIN/COMMIT below
                check_same_thread=False,  # guarded by self._lock
            )
        except sqlite3.Error as exc:
            raise QuarantineError(f"{path.parent}: cannot open the index: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        try:
            # SQLite gives its -wal and -shm files the permissions of the database file.
            with contextlib.suppress(PermissionError):  # another user's index: read only
                os.chmod(path, 0o600)
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        try:
            with self._lock:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute("PRAGMA busy_timeout=30000")
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                if version > _SCHEMA_VERSION:
                    raise QuarantineError(
                        f"{self.path.parent}: index schema version {version} is newer than "
                        f"this program ({_SCHEMA_VERSION})"
                    )
                self._db.executescript(_SCHEMA)
                if version == 1:  # version 2 counts unlock attempts
                    self._db.execute(
                        "ALTER TABLE messages ADD COLUMN unlock_attempts INTEGER NOT NULL DEFAULT 0"
                    )
                self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise QuarantineError(f"{self.path.parent}: cannot open the index: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- writing ---------------------------------------------------------------------------

    def insert(
        self,
        qid: str,
        queue_id: str,
        received_at: datetime,
        *,
        client: str,
        helo: str,
        mail_from: str,
        rcpt_to: Sequence[str],
        size: int,
        stored_size: int,
        sha256: str,
    ) -> None:
        """Add the row of a newly stored original (state ``queued``); values already clean."""
        now = format_time(datetime.now(UTC))
        with self._transaction() as db:
            db.execute(
                "INSERT INTO messages (id, queue_id, received_at, stored_at, updated_at,"
                " client, helo, mail_from, rcpt_to, size, stored_size, sha256, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued')",
                (
                    qid,
                    queue_id,
                    format_time(received_at),
                    now,
                    now,
                    client,
                    helo,
                    mail_from,
                    json.dumps(list(rcpt_to), ensure_ascii=False),
                    size,
                    stored_size,
                    sha256,
                ),
            )

    def update(self, qid: str, assignments: str, values: tuple[Any, ...]) -> None:
        """Set columns of one row (``assignments`` is this package's own SQL, never input)."""
        if not is_valid_id(qid):
            raise QuarantineNotFoundError(qid)
        try:
            with self._transaction() as db:
                cursor = db.execute(
                    f"UPDATE messages SET {assignments}, updated_at = ? WHERE id = ?",  # noqa: S608
                    (*values, format_time(datetime.now(UTC)), qid),
                )
                if cursor.rowcount == 0:
                    raise QuarantineNotFoundError(qid)
        except sqlite3.Error as exc:
            raise QuarantineStoreError(
                sqlite_errno(exc), f"cannot update quarantine entry {qid}: {exc}"
            ) from exc

    def count_attempt(self, qid: str, limit: int) -> int | None:
        """Count one more unlock attempt, unless ``limit`` are counted already; the new count,
        or ``None`` when none is left. One transaction: two processes cannot both take the
        last attempt."""
        if not is_valid_id(qid):
            raise QuarantineNotFoundError(qid)
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE messages SET unlock_attempts = unlock_attempts + 1, updated_at = ?"
                " WHERE id = ? AND unlock_attempts < ?",
                (format_time(datetime.now(UTC)), qid, limit),
            )
            if cursor.rowcount == 0:
                return None
            row = db.execute("SELECT unlock_attempts FROM messages WHERE id = ?", (qid,))
            return int(row.fetchone()[0])

    def delete(self, ids: Sequence[str]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM messages WHERE id = ?", [(qid,) for qid in ids])

    # -- reading ---------------------------------------------------------------------------

    def ids_of(self, queue_id: str, sha256: str) -> builtins.list[str]:
        """Rows that already hold this queue id with this content."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM messages WHERE queue_id = ? AND sha256 = ?", (queue_id, sha256)
            ).fetchall()
        return [str(row["id"]) for row in rows]

    def knows(self, qid: str) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM messages WHERE id = ?", (qid,)).fetchone()
                is not None
            )

    def get(self, qid: str) -> QuarantineEntry:
        """The row of ``qid``; :class:`QuarantineNotFoundError` when there is none."""
        if not is_valid_id(qid):
            raise QuarantineNotFoundError(qid)
        with self._lock:
            row = self._db.execute("SELECT * FROM messages WHERE id = ?", (qid,)).fetchone()
        if row is None:
            raise QuarantineNotFoundError(qid)
        return _entry(row)

    def list(
        self,
        *,
        state: str | None = None,
        verdict: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        queue_id: str | None = None,
        limit: int = 100,
    ) -> builtins.list[QuarantineEntry]:
        """Entries, newest first, filtered by state, verdict, received time and queue id."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        clauses: builtins.list[str] = []
        values: builtins.list[Any] = []
        if state is not None:
            clauses.append("state = ?")
            values.append(state)
        if verdict is not None:
            clauses.append("verdict = ?")
            values.append(verdict)
        if since is not None:
            clauses.append("received_at >= ?")
            values.append(format_time(since))
        if until is not None:
            clauses.append("received_at < ?")
            values.append(format_time(until))
        if queue_id is not None:
            clauses.append("queue_id = ?")
            values.append(queue_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT * FROM messages {where} ORDER BY received_at DESC, id DESC LIMIT ?"  # noqa: S608
        with self._lock:
            rows = self._db.execute(query, (*values, limit)).fetchall()
        return [_entry(row) for row in rows]

    def count(self) -> int:
        """How many entries the index holds."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    def oldest_first(self, offset: int, limit: int) -> builtins.list[str]:
        """Ids in received order, one page at a time."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM messages ORDER BY received_at, id LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [str(row["id"]) for row in rows]

    # -- retention -------------------------------------------------------------------------

    _EXPIRED: Final = (
        "(state NOT IN ('held', 'awaiting_password') AND received_at < ?)"
        " OR (state IN ('held', 'awaiting_password') AND received_at < ?)"
    )

    def count_expired(self, cutoff: datetime, held_cutoff: datetime) -> int:
        """Rows received before ``cutoff`` (``held_cutoff`` for held mail)."""
        with self._lock:
            row = self._db.execute(
                f"SELECT COUNT(*) FROM messages WHERE {self._EXPIRED}",  # noqa: S608
                (format_time(cutoff), format_time(held_cutoff)),
            ).fetchone()
        return int(row[0])

    def expired(self, cutoff: datetime, held_cutoff: datetime, limit: int) -> builtins.list[str]:
        """Up to ``limit`` ids of rows past retention."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM messages WHERE {self._EXPIRED} LIMIT ?",  # noqa: S608
                (format_time(cutoff), format_time(held_cutoff), limit),
            ).fetchall()
        return [str(row["id"]) for row in rows]


def _entry(row: sqlite3.Row) -> QuarantineEntry:
    return QuarantineEntry(
        id=row["id"],
        queue_id=row["queue_id"],
        received_at=parse_time(row["received_at"]),
        stored_at=parse_time(row["stored_at"]),
        updated_at=parse_time(row["updated_at"]),
        client=row["client"],
        helo=row["helo"],
        mail_from=row["mail_from"],
        rcpt_to=tuple(json.loads(row["rcpt_to"])),
        size=int(row["size"]),
        stored_size=int(row["stored_size"]),
        sha256=row["sha256"],
        verdict=row["verdict"],
        reasons=tuple(json.loads(row["reasons"])),
        message_id=row["message_id"],
        from_=row["from_"],
        subject=row["subject"],
        state=row["state"],
        unlock_attempts=int(row["unlock_attempts"]),
    )
