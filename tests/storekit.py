"""A store and a quarantine in a test's data directory, opened the way serve opens them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert

from gateway.configuration.settings import QuarantineSettings, StoreSettings
from gateway.evidence.quarantine import Quarantine
from gateway.store import Store, migrate_store
from gateway.store.schema import original_chunks


def migrated_store(
    data_dir: Path,
    quarantine_dir: Path | None = None,
    settings: StoreSettings | None = None,
) -> Store:
    """The store of ``settings`` (default: ``data_dir/store.sqlite3``), migrated; an old
    quarantine index in ``quarantine_dir`` (default ``data_dir/quarantine``) is moved in."""
    quarantine = QuarantineSettings(directory=str(quarantine_dir or data_dir / "quarantine"))
    store, _, _ = migrate_store(settings or StoreSettings(), quarantine, data_dir)
    return store


@contextlib.contextmanager
def quarantine_in(
    directory: Path,
    retention_days: float = 90.0,
    *,
    settings: StoreSettings | None = None,
    **kwargs: Any,
) -> Iterator[Quarantine]:
    """A quarantine in ``directory`` indexed in the migrated store of ``settings`` (default:
    the SQLite file of its parent directory)."""
    with (
        migrated_store(directory.parent, directory, settings) as store,
        Quarantine(directory, retention_days, store=store, **kwargs) as quarantine,
    ):
        yield quarantine


def replace_original(data_dir: Path, qid: str, pieces: list[bytes]) -> None:
    """Put ``pieces`` in place of the original of ``qid`` kept in the SQLite store of
    ``data_dir`` (none: the original is gone), as an intruder or a corrupt disk would."""
    store = Store(f"sqlite:///{data_dir / 'store.sqlite3'}", create=False)
    with store, store.writing() as db:
        db.execute(delete(original_chunks).where(original_chunks.c.id == qid))
        for seq, piece in enumerate(pieces):
            db.execute(insert(original_chunks).values(id=qid, seq=seq, data=piece))
