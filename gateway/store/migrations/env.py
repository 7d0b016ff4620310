"""Alembic's entry point for the store's migrations.

:meth:`gateway.store.database.Store.migrate` runs it with an open connection (in
``config.attributes["connection"]``) inside its write transaction; there is no alembic.ini.
A new migration is a new file in ``versions/`` whose ``down_revision`` is the newest one's;
``tests/gateway/store`` checks that the migrated schema equals :mod:`gateway.store.schema`.
"""

from __future__ import annotations

from alembic import context

from gateway.store.schema import metadata

connection = context.config.attributes["connection"]
# batch mode: SQLite cannot ALTER most things in place; Alembic copies the table instead.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
