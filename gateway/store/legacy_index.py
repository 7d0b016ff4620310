"""Today's quarantine index (``quarantine/index.sqlite3``, before the store) moved into the store.

Intent: an upgrade loses no entry. Every row of the old index is copied into the store's
``messages`` table in one transaction (rows whose id is already there are skipped, so a run
cut short by a crash is simply run again); only after the commit is the old file renamed
``index.sqlite3.migrated``, kept for the operator to delete. An index this code does not
recognise (another schema version) stops the migration with a message; nothing is guessed.

Threat model: the old index was written by this program's earlier versions; its text is
untrusted mail text, already cleaned when it was stored, and is copied as it is.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any, Final

from sqlalchemy import insert, select

from gateway.store.database import Store, StoreError
from gateway.store.schema import messages, parse_utc

LEGACY_INDEX_NAME: Final = "index.sqlite3"
MIGRATED_SUFFIX: Final = ".migrated"
LEGACY_SCHEMA_VERSION: Final = 1
BATCH: Final = 500
_TIMES: Final = ("received_at", "stored_at", "updated_at")


def import_legacy_index(store: Store, quarantine_dir: Path) -> int:
    """Copy the rows of ``quarantine_dir/index.sqlite3`` into ``store``; return how many were
    new. Does nothing (0) when there is no old index."""
    path = quarantine_dir / LEGACY_INDEX_NAME
    if not path.is_file():
        return 0
    try:
        rows = _read(path)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the old quarantine index {path}: {exc}") from exc
    added = 0
    with store.writing() as connection:
        known = set(connection.scalars(select(messages.c.id)))
        fresh = [row for row in rows if row["id"] not in known]
        for start in range(0, len(fresh), BATCH):
            connection.execute(insert(messages), fresh[start : start + BATCH])
        added = len(fresh)
    path.rename(path.with_name(LEGACY_INDEX_NAME + MIGRATED_SUFFIX))
    for leftover in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(LEGACY_INDEX_NAME + leftover).unlink()
    return added


def _read(path: Path) -> list[dict[str, Any]]:
    """Every row of the old index, checked and in the store's types."""
    connection = sqlite3.connect(path)
    try:
        connection.row_factory = sqlite3.Row
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version != LEGACY_SCHEMA_VERSION:
            raise StoreError(
                f"the old quarantine index {path} has schema version {version}; this program "
                f"moves version {LEGACY_SCHEMA_VERSION} only"
            )
        rows = [dict(row) for row in connection.execute("SELECT * FROM messages ORDER BY id")]
        # Fold the WAL into the file before it is renamed.
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    for row in rows:
        for name in _TIMES:
            row[name] = parse_utc(row[name])
        json.loads(row["rcpt_to"])  # a malformed row stops the migration, never half-copied
        json.loads(row["reasons"])
    return rows
