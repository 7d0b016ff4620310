"""The quarantine: every original message, kept on the Internet side as evidence.

Intent
------
Before a message is sanitized, the worker hands the untouched original to :class:`Quarantine`.
It is stored compressed (gzip, see below) next to its SHA-256, and indexed in SQLite with the
envelope, the decoded From/Subject, the verdict, the reason codes and the delivery state, so an
operator can find, inspect, export and (after review) release it. Originals are purged after a
configurable retention.

Durability (DESIGN.md rule 3)
-----------------------------
A stored file is written to ``tmp/``, flushed and fsynced, renamed into ``messages/DAY/`` and
the directory is fsynced; only then is the index row inserted (SQLite, WAL,
``synchronous=FULL``). A crash therefore leaves at worst a temp file (ignored, and deleted once
it is older than an hour, so a second process never removes a write in progress) or a file
without a row (removed by :meth:`Quarantine.purge` once past retention). Storing the same
queue id with the same content twice returns the first id: a worker that restarts after a
crash does not create a duplicate.

Compression choice (measured on this host with stdlib codecs, one core)
----------------------------------------------------------------------
Set A, 114 ``.eml`` files from the corpus (13 MB, a few large attachments), ratio and
compress / decompress speed: gzip -1 0.288, 69 / 208 MB/s; gzip -6 0.275, 44 / 257 MB/s;
gzip -9 0.274, 30 MB/s; lzma -0 0.280, 18 / 50 MB/s; lzma -6 0.265, 4 / 36 MB/s.
Set B, 245 mails of 3 KB-2 MB (17 MB): gzip -1 0.443, 56 / 192 MB/s; gzip -6 0.407,
39 / 236 MB/s; gzip -9 0.406, 27 MB/s; lzma -0 0.411, 13 MB/s; lzma -6 0.387, 4 MB/s.
Mail is mostly base64, which none of them shrinks far below 3/4. At the target rate
(about 1,000 mails of 29 KB a second, ~29 MB/s on two cores) gzip -1 costs half a core,
gzip -6 three quarters, lzma several cores; the extra 3-8 % of disk is cheaper. So the default
is gzip level 1 (``compression_level`` raises it). Gzip also carries its own CRC-32, and every
operator can read a file with ``zcat``.

Retention and held mail
-----------------------
Every entry is purged once its ``received_at`` is older than the retention, whatever its state,
so the disk stays bounded. Held mail may be given a longer retention
(``held_retention_days``); to keep one message for longer, export it. Purging never touches the
spool: the quarantine is evidence, not the delivery queue.

Threat model
------------
The stored bytes are hostile (they are the unsanitized original): they are never parsed here,
only hashed, compressed and written with mode 0600 in a 0700 directory. Quarantine ids are
generated here and validated against a strict pattern before they are used in a path, so no id
from a command line or a notice can escape the directory. A file changed on disk is detected by
the SHA-256 check on every read (:class:`QuarantineIntegrityError`); decompression is bounded by
the recorded size, so a replaced file cannot be a decompression bomb. Strings from the envelope
and headers are stored bounded in length and with control characters removed; they are still
untrusted text and displayed as text only.

Concurrency: one SQLite connection guarded by a lock, so the methods are safe from several
threads (the service calls them through ``asyncio.to_thread``: they block on fsync). Another
process (the CLI) may open the same directory at the same time; SQLite's WAL and busy timeout
serialise the writers.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import gzip
import hashlib
import json
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, get_args

from pydantic import Field

from gateway.configuration.settings import Section
from sanitizers.report import Report

log = logging.getLogger("mukaika.quarantine")

DeliveryState = Literal["queued", "delivered", "deferred", "held", "dead"]
DELIVERY_STATES: Final[frozenset[str]] = frozenset(get_args(DeliveryState))

# Bounds on what one index row may hold (envelope strings, header values, recipients).
MAX_FIELD_CHARS: Final = 1000
MAX_RECIPIENTS: Final = 10_000
MAX_LIST_LIMIT: Final = 100_000
# A temp file older than this is an abandoned write; younger ones may belong to a live process.
STALE_TEMP_SECONDS: Final = 3600.0
# Rows purged per transaction, so a large purge never holds the write lock for long.
PURGE_BATCH: Final = 500

_ID_PATTERN: Final = re.compile(r"^(?P<day>[0-9]{8})T[0-9]{6}Z-[0-9a-f]{12}$")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SCHEMA_VERSION: Final = 1
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
    state       TEXT NOT NULL DEFAULT 'queued'
);
CREATE INDEX IF NOT EXISTS messages_queue_id ON messages (queue_id);
CREATE INDEX IF NOT EXISTS messages_received_at ON messages (received_at);
CREATE INDEX IF NOT EXISTS messages_state ON messages (state, received_at);
CREATE INDEX IF NOT EXISTS messages_verdict ON messages (verdict, received_at);
"""


class QuarantineSettings(Section):
    """The ``[quarantine]`` section. An empty string means "not set" (TOML has no null)."""

    # Originals (and their index rows) older than this are purged, whatever their state.
    retention_days: float = Field(default=90.0, gt=0)
    # Held mail may be kept longer (or shorter); 0 means the same as retention_days.
    held_retention_days: float = Field(default=0.0, ge=0)
    # gzip level 1..9; 1 is the measured best trade-off for mail (see the module docstring).
    compression_level: int = Field(default=1, ge=1, le=9)
    # How often the service runs the purge.
    purge_interval_seconds: float = Field(default=3600.0, gt=0)
    # Absolute, or relative to the data directory; empty: DATA_DIR/quarantine.
    directory: str = ""

    def resolve_directory(self, data_dir: Path) -> Path:
        """Where the quarantine lives for a given data directory."""
        if not self.directory:
            return data_dir / "quarantine"
        return data_dir / self.directory  # an absolute directory replaces data_dir


class QuarantineError(Exception):
    """Base of every quarantine error."""


class QuarantineNotFoundError(QuarantineError, LookupError):
    """No entry with that id (or the id is not well-formed)."""

    def __init__(self, qid: str) -> None:
        super().__init__(f"no quarantined message with id {clean_text(qid, 80)!r}")
        self.qid = qid

    def __str__(self) -> str:  # LookupError would quote the message again
        return str(self.args[0])


class QuarantineIntegrityError(QuarantineError):
    """The stored original is missing, unreadable, or does not match its SHA-256."""


class QuarantineStoreError(QuarantineError, OSError):
    """Storing failed (disk full, permissions, ...). Nothing partial is left behind.

    It is an :class:`OSError` with the original ``errno``, so callers that treat I/O errors as
    temporary (``451 4.3.0``, retry later) keep working.
    """


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One index row. Text fields are untrusted values, bounded and without control chars."""

    id: str
    queue_id: str
    received_at: datetime
    stored_at: datetime
    updated_at: datetime
    client: str
    helo: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    size: int
    stored_size: int
    sha256: str
    verdict: str | None
    reasons: tuple[str, ...]
    message_id: str | None
    from_: str | None
    subject: str | None
    state: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times in RFC 3339 UTC, ``from`` without the underscore)."""
        return {
            "id": self.id,
            "queue_id": self.queue_id,
            "received_at": format_time(self.received_at),
            "stored_at": format_time(self.stored_at),
            "updated_at": format_time(self.updated_at),
            "client": self.client,
            "helo": self.helo,
            "mail_from": self.mail_from,
            "rcpt_to": list(self.rcpt_to),
            "size": self.size,
            "stored_size": self.stored_size,
            "sha256": self.sha256,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "message_id": self.message_id,
            "from": self.from_,
            "subject": self.subject,
            "state": self.state,
        }


def clean_text(value: str, limit: int = MAX_FIELD_CHARS) -> str:
    """Remove control and bidi-override characters and bound the length (``…`` marks a cut)."""
    cleaned = _CONTROL.sub("", value)
    if len(cleaned) > limit:
        return cleaned[: limit - 1] + "…"
    return cleaned


def _clean_optional(value: str | None) -> str | None:
    return None if value is None else clean_text(value)


def _require_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got a naive datetime)")
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``; fixed width, so text order is time order."""
    return _require_utc(moment, "time").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def is_valid_id(qid: str) -> bool:
    """Whether ``qid`` has the shape of a quarantine id (``20261122T010834Z-3f9a2b7c1d4e``)."""
    return _ID_PATTERN.fullmatch(qid) is not None


def _sqlite_errno(exc: sqlite3.Error) -> int:
    """ENOSPC for SQLITE_FULL (so callers see a full disk as such), else EIO."""
    return (
        errno.ENOSPC if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL else errno.EIO
    )


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Quarantine:
    """The store of originals and its SQLite index. See the module docstring."""

    def __init__(
        self,
        directory: Path,
        retention_days: float = 90.0,
        *,
        held_retention_days: float | None = None,
        compression_level: int = 1,
    ) -> None:
        if retention_days <= 0:
            raise ValueError("retention_days must be positive")
        if held_retention_days is not None and held_retention_days <= 0:
            raise ValueError("held_retention_days must be positive")
        if not 1 <= compression_level <= 9:
            raise ValueError("compression_level must be between 1 and 9")
        self.directory = Path(directory)
        self.retention = timedelta(days=retention_days)
        self.held_retention = (
            self.retention if held_retention_days is None else timedelta(days=held_retention_days)
        )
        self.compression_level = compression_level
        self._messages = self.directory / "messages"
        self._tmp = self.directory / "tmp"
        for path in (self.directory, self._messages, self._tmp):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.directory / "index.sqlite3",
                timeout=30.0,
                isolation_level=None,  # explicit BEGIN/COMMIT below
                check_same_thread=False,  # guarded by self._lock
            )
        except sqlite3.Error as exc:
            raise QuarantineError(f"{self.directory}: cannot open the index: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        try:
            # The index holds addresses and subjects: private, like the originals. SQLite
            # gives its -wal and -shm files the permissions of the database file.
            with contextlib.suppress(PermissionError):  # another user's index: read only
                os.chmod(self.directory / "index.sqlite3", 0o600)
            self._prepare_index()
        except BaseException:
            self._db.close()
            raise
        self.clean_temp_files()

    def _prepare_index(self) -> None:
        try:
            with self._lock:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute("PRAGMA busy_timeout=30000")
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, _SCHEMA_VERSION):
                    raise QuarantineError(
                        f"{self.directory}: index schema version {version} is newer than "
                        f"this program ({_SCHEMA_VERSION})"
                    )
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise QuarantineError(f"{self.directory}: cannot open the index: {exc}") from exc

    @classmethod
    def from_settings(cls, settings: QuarantineSettings, data_dir: Path) -> Quarantine:
        """Open the quarantine that ``settings`` describe under ``data_dir``."""
        return cls(
            settings.resolve_directory(data_dir),
            settings.retention_days,
            held_retention_days=settings.held_retention_days or None,
            compression_level=settings.compression_level,
        )

    # -- life cycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the index. The object must not be used afterwards."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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

    # -- paths -----------------------------------------------------------------------------

    def _path(self, qid: str) -> Path:
        match = _ID_PATTERN.fullmatch(qid)
        if match is None:
            raise QuarantineNotFoundError(qid)
        return self._messages / match["day"] / f"{qid}.eml.gz"

    def path_of(self, qid: str) -> Path:
        """The compressed file of an entry (for operators; read it with :meth:`read_original`)."""
        self.get(qid)
        return self._path(qid)

    @staticmethod
    def _new_id(received_at: datetime) -> str:
        stamp = received_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{stamp}-{secrets.token_hex(6)}"

    # -- writing ---------------------------------------------------------------------------

    def store(
        self,
        queue_id: str,
        untrusted_raw: bytes,
        *,
        client: str,
        helo: str,
        mail_from: str,
        rcpt_to: Sequence[str],
        received_at: datetime,
    ) -> str:
        """Keep the original durably and index it; return its quarantine id.

        Blocking (compression and two fsyncs): call it from a thread in asyncio code. Raises
        :class:`QuarantineStoreError` (an ``OSError``) when the disk refuses; then no file and
        no row are left. Storing the same ``queue_id`` with the same bytes again returns the
        existing id.
        """
        received_at = _require_utc(received_at, "received_at")
        digest = hashlib.sha256(untrusted_raw).hexdigest()
        queue_id = clean_text(queue_id)
        existing = self._find_stored(queue_id, digest)
        if existing is not None:
            return existing
        qid = self._new_id(received_at)
        while self._path(qid).exists():  # 48 random bits per second: practically never
            qid = self._new_id(received_at)
        final = self._path(qid)
        temp = self._tmp / f"{qid}.{secrets.token_hex(4)}.tmp"
        try:
            stored_size = self._write_compressed(temp, untrusted_raw)
            for attempt in range(3):
                if not final.parent.is_dir():
                    final.parent.mkdir(mode=0o700, exist_ok=True)
                    _fsync_directory(self._messages)  # the new day directory itself
                try:
                    os.rename(temp, final)
                    break
                except FileNotFoundError:  # a purge removed the empty day directory
                    if attempt == 2 or not temp.exists():
                        raise
            _fsync_directory(final.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                final.unlink(missing_ok=True)
            code = exc.errno if exc.errno is not None else errno.EIO
            reason = exc.strerror or os.strerror(code)
            raise QuarantineStoreError(
                code, f"cannot store queue id {queue_id} in the quarantine: {reason}"
            ) from exc
        now = format_time(datetime.now(UTC))
        recipients = [clean_text(r) for r in list(rcpt_to)[:MAX_RECIPIENTS]]
        try:
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
                        clean_text(client),
                        clean_text(helo),
                        clean_text(mail_from),
                        json.dumps(recipients, ensure_ascii=False),
                        len(untrusted_raw),
                        stored_size,
                        digest,
                    ),
                )
        except sqlite3.Error as exc:
            with contextlib.suppress(OSError):
                final.unlink(missing_ok=True)
            raise QuarantineStoreError(
                _sqlite_errno(exc), f"cannot index queue id {queue_id} in the quarantine: {exc}"
            ) from exc
        return qid

    def _find_stored(self, queue_id: str, digest: str) -> str | None:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM messages WHERE queue_id = ? AND sha256 = ?", (queue_id, digest)
            ).fetchall()
        for row in rows:
            if self._path(row["id"]).exists():
                return str(row["id"])
        return None

    def _write_compressed(self, temp: Path, data: bytes) -> int:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=self.compression_level, mtime=0
            ) as packed:
                packed.write(data)
            raw.flush()
            os.fsync(raw.fileno())
            return raw.tell()

    def record_result(self, qid: str, report: Report) -> None:
        """Record the verdict, every reason code and the decoded From/Subject/Message-ID."""
        reasons = sorted(str(code) for code in report.reason_codes())
        self._update(
            qid,
            "verdict = ?, reasons = ?, from_ = ?, subject = ?, message_id = ?",
            (
                str(report.verdict),
                json.dumps(reasons),
                _clean_optional(report.from_),
                _clean_optional(report.subject),
                _clean_optional(report.message_id),
            ),
        )

    def record_delivery(self, qid: str, state: str) -> None:
        """Record the delivery state: one of queued, delivered, deferred, held, dead."""
        if state not in DELIVERY_STATES:
            raise ValueError(
                f"unknown delivery state {state!r}; expected one of {sorted(DELIVERY_STATES)}"
            )
        self._update(qid, "state = ?", (state,))

    def _update(self, qid: str, assignments: str, values: tuple[Any, ...]) -> None:
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
                _sqlite_errno(exc), f"cannot update quarantine entry {qid}: {exc}"
            ) from exc

    # -- reading ---------------------------------------------------------------------------

    def get(self, qid: str) -> QuarantineEntry:
        """The index row of ``qid``; :class:`QuarantineNotFoundError` when there is none."""
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

    def verify(self, *, limit: int = MAX_LIST_LIMIT) -> Iterator[tuple[str, str | None]]:
        """Check stored originals, oldest first: yield ``(id, None)`` or ``(id, problem)``."""
        offset = 0
        checked = 0
        while checked < limit:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id FROM messages ORDER BY received_at, id LIMIT ? OFFSET ?",
                    (min(PURGE_BATCH, limit - checked), offset),
                ).fetchall()
            if not rows:
                return
            offset += len(rows)
            for row in rows:
                checked += 1
                qid = str(row["id"])
                try:
                    self.read_original(qid)
                except QuarantineNotFoundError:
                    continue  # purged meanwhile
                except QuarantineIntegrityError as exc:
                    yield qid, str(exc)
                else:
                    yield qid, None

    def read_original(self, qid: str) -> bytes:
        """The original bytes, verified against the recorded size and SHA-256.

        Raises :class:`QuarantineNotFoundError` for an unknown id and
        :class:`QuarantineIntegrityError` when the file is missing, corrupt or altered.
        """
        entry = self.get(qid)
        path = self._path(qid)
        try:
            with path.open("rb") as handle, gzip.GzipFile(fileobj=handle, mode="rb") as packed:
                data = packed.read(entry.size + 1)  # bounded: a swapped file is no bomb
        except FileNotFoundError as exc:
            raise QuarantineIntegrityError(f"{qid}: the stored original is missing") from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise QuarantineIntegrityError(
                f"{qid}: the stored original is unreadable: {exc}"
            ) from exc
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise QuarantineIntegrityError(
                f"{qid}: the stored original does not match its SHA-256 (altered or corrupt)"
            )
        return data

    def export(self, qid: str, out_path: Path, *, overwrite: bool = False) -> int:
        """Write the verified original to ``out_path`` (mode 0600, atomically); return its size.

        An existing file is refused unless ``overwrite`` is set.
        """
        data = self.read_original(qid)
        out_path = Path(out_path)
        if out_path.exists() and not overwrite:
            raise FileExistsError(errno.EEXIST, "refusing to overwrite", str(out_path))
        temp = out_path.with_name(f".{out_path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, out_path)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            raise
        return len(data)

    # -- retention -------------------------------------------------------------------------

    def purge(self, now: datetime, *, dry_run: bool = False) -> int:
        """Remove entries (file and row) past retention at ``now``; return how many.

        Also removes stale temp files and files whose row is gone, for days past retention.
        With ``dry_run`` nothing is removed and the count is what would be.
        """
        now = _require_utc(now, "now")
        cutoff = format_time(now - self.retention)
        held_cutoff = format_time(now - self.held_retention)
        condition = "(state != 'held' AND received_at < ?) OR (state = 'held' AND received_at < ?)"
        if dry_run:
            with self._lock:
                row = self._db.execute(
                    f"SELECT COUNT(*) FROM messages WHERE {condition}",  # noqa: S608
                    (cutoff, held_cutoff),
                ).fetchone()
            return int(row[0])
        removed = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT id FROM messages WHERE {condition} LIMIT ?",  # noqa: S608
                    (cutoff, held_cutoff, PURGE_BATCH),
                ).fetchall()
            if not rows:
                break
            ids = [str(row["id"]) for row in rows]
            # File first, then row: a crash in between leaves a row whose file is gone, which
            # the next purge removes; never a file nobody knows about.
            for qid in ids:
                self._path(qid).unlink(missing_ok=True)
            with self._transaction() as db:
                db.executemany("DELETE FROM messages WHERE id = ?", [(qid,) for qid in ids])
            removed += len(ids)
        self._remove_orphans(min(now - self.retention, now - self.held_retention))
        self.clean_temp_files()
        return removed

    def _remove_orphans(self, oldest_kept: datetime) -> None:
        """Delete files without a row received before ``oldest_kept``; drop empty day dirs.

        Such files come from a crash between the rename and the index insert. The time in
        the id is the receive time, so an orphan is only removed once it is past retention.
        """
        cutoff_stamp = oldest_kept.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        for day_dir in sorted(self._messages.iterdir()):
            if not (day_dir.is_dir() and day_dir.name <= cutoff_stamp[:8]):
                continue
            for path in day_dir.iterdir():
                qid = path.name.removesuffix(".eml.gz")
                if not is_valid_id(qid) or qid[:16] >= cutoff_stamp:
                    continue  # not ours, or not yet past retention
                with self._lock:
                    known = self._db.execute(
                        "SELECT 1 FROM messages WHERE id = ?", (qid,)
                    ).fetchone()
                if known is None:
                    path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                day_dir.rmdir()  # only succeeds when empty

    async def purge_forever(
        self,
        interval_seconds: float,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Run :meth:`purge` now and then every ``interval_seconds`` until cancelled.

        For the service: ``asyncio.create_task(quarantine.purge_forever(settings.
        purge_interval_seconds))``. A failed purge is logged and retried next time; it never
        ends the loop.
        """
        while True:
            try:
                removed = await asyncio.to_thread(self.purge, now())
            except (OSError, sqlite3.Error, QuarantineError) as exc:
                log.error("quarantine purge failed: %s: %s", type(exc).__name__, exc)
            else:
                if removed:
                    log.info("quarantine purge removed %d message(s) past retention", removed)
            await asyncio.sleep(interval_seconds)

    def clean_temp_files(self, *, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Delete abandoned temp files (older than ``older_than`` seconds); return how many."""
        removed = 0
        limit = time.time() - older_than
        for path in self._tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
        return removed


def _entry(row: sqlite3.Row) -> QuarantineEntry:
    return QuarantineEntry(
        id=row["id"],
        queue_id=row["queue_id"],
        received_at=_parse_time(row["received_at"]),
        stored_at=_parse_time(row["stored_at"]),
        updated_at=_parse_time(row["updated_at"]),
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
    )
