"""Moving an installation: every row of one store copied into another (``mukaika store copy``).

Intent: SQLite to PostgreSQL when one node becomes several, and back, without losing or
changing a row. The source is read in one snapshot (its schema must be exactly this program's);
the target is migrated to the same schema and written in one transaction that is committed only
when each table holds as many rows as the source's snapshot did, so a failed copy leaves the
target as it was. A target that already holds rows is refused unless ``replace`` is given (then
its rows are deleted in the same transaction). Ids are kept, so decisions still point at their
messages; PostgreSQL's id sequences are moved past the copied ids.

The originals kept in the database (``quarantine.originals = "database"``) are rows
(``original_chunks``) and are copied with the rest, a few pieces at a time; originals kept as
files stay in their quarantine directory (copy that directory with the data directory). The
source is read through a server-side cursor on PostgreSQL, so no table is ever loaded whole.

Threat model: both URLs come from the operator; rows are copied as values through bound
parameters, never as SQL text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

from sqlalchemy import Connection, Integer, Table, delete, func, insert, select, text

from gateway.store.database import Store, StoreError
from gateway.store.schema import metadata, original_chunks

BATCH: Final = 500
# Rows per insert where a row may be large: pieces of originals (at most 1 MiB each).
LARGE_ROWS_BATCH: Final = {original_chunks.name: 8}


class TargetNotEmptyError(StoreError):
    """The target store holds rows already (and replacing them was not asked for)."""


def copy_store(source: Store, target: Store, *, replace: bool = False) -> dict[str, int]:
    """Copy every row of ``source`` into ``target``; return the rows copied per table.

    Raises :class:`~gateway.store.database.StoreSchemaError` when the source's schema is not
    this program's (or the target's is newer), :class:`TargetNotEmptyError` when the target
    holds rows and ``replace`` is false, and :class:`StoreError` when the counts disagree
    (nothing is then committed)."""
    if source.url == target.url:
        raise StoreError(f"store copy: source and target are the same store ({source.where})")
    source.require_current()
    target.migrate()
    tables = metadata.sorted_tables  # parents before children
    copied: dict[str, int] = {}
    with _snapshot(source) as read, target.writing() as write:
        held = {table.name: _count(write, table) for table in tables}
        if any(held.values()) and not replace:
            rows = ", ".join(f"{name} {n}" for name, n in held.items() if n)
            raise TargetNotEmptyError(
                f"store {target.where} is not empty ({rows}): give --replace to delete its rows"
            )
        for table in reversed(tables):
            write.execute(delete(table))
        for table in tables:
            copied[table.name] = _copy_table(read, write, table)
            if write.dialect.name == "postgresql":
                _move_sequence(write, table)
        for table in tables:
            expected, found = _count(read, table), _count(write, table)
            if found != expected or copied[table.name] != expected:
                raise StoreError(
                    f"store copy: table {table.name} has {found} rows in {target.where}, "
                    f"{expected} in {source.where}; nothing was committed"
                )
    return copied


@contextlib.contextmanager
def _snapshot(store: Store) -> Iterator[Connection]:
    """A read connection inside one transaction: every table seen at the same moment."""
    with store.reading() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


def _count(connection: Connection, table: Table) -> int:
    return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def _copy_table(read: Connection, write: Connection, table: Table) -> int:
    order = list(table.primary_key.columns)
    size = LARGE_ROWS_BATCH.get(table.name, BATCH)
    query = select(table).order_by(*order)
    rows = read.execution_options(stream_results=True, yield_per=size).execute(query).mappings()
    copied = 0
    while batch := [dict(row) for row in rows.fetchmany(size)]:
        write.execute(insert(table), batch)
        copied += len(batch)
    return copied


def _move_sequence(write: Connection, table: Table) -> None:
    """After ids were inserted explicitly, the next generated id follows the largest one."""
    keys = list(table.primary_key.columns)
    if len(keys) != 1 or not isinstance(keys[0].type, Integer):
        return
    column = keys[0].name
    write.execute(
        text(
            f"SELECT setval(pg_get_serial_sequence(:table, :column), "  # noqa: S608 (names are the schema's own)
            f'COALESCE((SELECT MAX("{column}") FROM "{table.name}"), 0) + 1, false)'
        ),
        {"table": table.name, "column": column},
    )
