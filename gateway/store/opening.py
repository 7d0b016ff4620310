"""Opening the store the way every program of the gateway does: migrated, or refused.

``serve`` (with ``store.migrate_on_start``) and ``mukaika store migrate`` bring the schema up
to date and move today's quarantine index into it; every other command opens the store as it is
and refuses a schema that is not exactly this program's, naming the command that fixes it.
"""

from __future__ import annotations

from pathlib import Path

from gateway.configuration.settings import QuarantineSettings, StoreSettings
from gateway.store.database import SchemaState, SchemaStatus, Store, StoreSchemaError
from gateway.store.legacy_index import LEGACY_INDEX_NAME, import_legacy_index


def migrate_store(
    store: StoreSettings, quarantine: QuarantineSettings, data_dir: Path
) -> tuple[Store, SchemaStatus, int]:
    """The store, migrated to this program's schema (created if missing), with the old
    quarantine index moved in: ``(store, status before, entries moved)``."""
    opened = Store.from_settings(store, data_dir, create=True)
    try:
        before = opened.migrate()
        moved = import_legacy_index(opened, quarantine.resolve_directory(data_dir))
    except BaseException:
        opened.close()
        raise
    return opened, before, moved


def open_store(store: StoreSettings, quarantine: QuarantineSettings, data_dir: Path) -> Store:
    """The existing store, refused (:class:`StoreSchemaError`) unless its schema is this
    program's and the old quarantine index has been moved in."""
    opened = Store.from_settings(store, data_dir, create=False)
    try:
        status = opened.require_current()
        legacy = quarantine.resolve_directory(data_dir) / LEGACY_INDEX_NAME
        if legacy.is_file():
            raise StoreSchemaError(
                f"the quarantine index {legacy} has not been moved into the store yet: run "
                "mukaika store migrate",
                SchemaStatus(status.current, status.head, SchemaState.OLDER),
            )
    except BaseException:
        opened.close()
        raise
    return opened
