"""Today's quarantine index (``quarantine/index.sqlite3``, before the store) moved into the store.

Intent: an upgrade loses no entry. Every row of the old index is copied into the store's
``messages`` table in one transaction (rows whose id is already there are skipped, so a run
cut short by a crash is simply run again); only after the commit is the old file renamed
``index.sqlite3.migrated``, kept for the operator to delete. The old index is held alone for
the whole move: while the previous version still has it open, the move is refused. An index
this code does not recognise (another schema version) stops the migration with a message;
nothing is guessed.

Threat model: the old index was written by this program's earlier versions; its text is
untrusted mail text, already cleaned when it was stored, and is copied as it is.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Final

from sqlalchemy import insert, select

from gateway.store.database import Store, StoreError, fsync_directory
from gateway.store.schema import messages, parse_utc

LEGACY_INDEX_NAME: Final = "index.sqlite3"
MIGRATED_SUFFIX: Final = ".migrated"
LEGACY_SCHEMA_VERSION: Final = 1
BATCH: Final = 500
# How long the move waits for the old index to be free (a running old version keeps it busy).
LEGACY_LOCK_SECONDS: Final = 5.0
_TIMES: Final = ("received_at", "stored_at", "updated_at")


def import_legacy_index(store: Store, quarantine_dir: Path) -> int:
    """Copy the rows of ``quarantine_dir/index.sqlite3`` into ``store``; return how many were
    new. Does nothing (0) when there is no old index; refuses while another process (the
    previous version, still running) has it open, since rows it wrote later would be lost."""
    path = quarantine_dir / LEGACY_INDEX_NAME
    if not path.is_file():
        return 0
    try:
        legacy = _open_alone(path)
    except sqlite3.Error as exc:
        raise StoreError(
            f"cannot take the old quarantine index {path} for the move ({exc}): is the previous "
            "version still running? Stop it first."
        ) from exc
    try:
        rows = _read(legacy, path)
        with store.writing() as connection:
            known = set(connection.scalars(select(messages.c.id)))
            fresh = [row for row in rows if row["id"] not in known]
            for start in range(0, len(fresh), BATCH):
                connection.execute(insert(messages), fresh[start : start + BATCH])
        # Renamed while still locked: nobody can have written a row since it was read.
        path.rename(path.with_name(LEGACY_INDEX_NAME + MIGRATED_SUFFIX))
        fsync_directory(path.parent)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the old quarantine index {path}: {exc}") from exc
    finally:
        legacy.close()
    return len(fresh)


def _open_alone(path: Path) -> sqlite3.Connection:
    """The old index, with every other process kept out until it is closed.

    Leaving WAL mode needs the only connection (SQLite answers "database is locked"
    otherwise) and folds the WAL into the file, so the renamed file is whole; the exclusive
    transaction then keeps readers and writers out."""
    connection = sqlite3.connect(path, timeout=LEGACY_LOCK_SECONDS, isolation_level=None)
    try:
        mode = connection.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        if mode != "delete":
            raise sqlite3.OperationalError(f"its journal stays in {mode} mode")
        connection.execute("BEGIN EXCLUSIVE")
    except BaseException:
        connection.close()
        raise
    return connection


def _read(connection: sqlite3.Connection, path: Path) -> list[dict[str, Any]]:
    """Every row of the old index, checked and in the store's types."""
    connection.row_factory = sqlite3.Row
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version != LEGACY_SCHEMA_VERSION:
        raise StoreError(
            f"the old quarantine index {path} has schema version {version}; this program "
            f"moves version {LEGACY_SCHEMA_VERSION} only"
        )
    rows = [dict(row) for row in connection.execute("SELECT * FROM messages ORDER BY id")]
    for row in rows:
        for name in _TIMES:
            row[name] = parse_utc(row[name])
        json.loads(row["rcpt_to"])  # a malformed row stops the migration, never half-copied
        json.loads(row["reasons"])
    return rows
