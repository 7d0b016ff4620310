"""The database layer: one schema, one migration history, shared by every process.

:mod:`.schema` (the tables), :mod:`.database` (:class:`Store`: connections, schema status,
migration, backup), :mod:`.opening` (how programs open it), :mod:`.legacy_index` (today's
quarantine index moved in), :mod:`.workflow` and :mod:`.users` (the held-mail workflow's
records). It never imports a web framework: the console depends on the store, never the other
way round.
"""

from gateway.store.database import (
    ClockOffsetError,
    SchemaState,
    SchemaStatus,
    Store,
    StoreError,
    StoreMissingError,
    StoreSchemaError,
)
from gateway.store.opening import migrate_store, open_store

__all__ = [
    "ClockOffsetError",
    "SchemaState",
    "SchemaStatus",
    "Store",
    "StoreError",
    "StoreMissingError",
    "StoreSchemaError",
    "migrate_store",
    "open_store",
]
