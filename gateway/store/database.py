"""One database for every process of a node (SQLite) or of many nodes (PostgreSQL): open it,
keep its schema right, back it up.

Intent
------
The quarantine index, the held-mail workflow and the users live in one database reached by one
URL (``[store] url``), with one schema and one migration history (Alembic, in
:mod:`gateway.store.migrations`). A program refuses a schema newer than the one it knows (it
would misread data it has never seen); an older one is brought up to date by
:meth:`Store.migrate` (``mukaika store migrate``, or ``serve`` at start when
``store.migrate_on_start`` is on).

Durability on SQLite: WAL with ``synchronous=FULL`` and a busy timeout; each write runs in a
``BEGIN IMMEDIATE`` transaction, so concurrent writers (serve, the command line, later the
console) queue instead of failing half-way, and a row that is there survives a crash. The file
is created mode 0600 (its ``-wal`` and ``-shm`` files inherit that): it holds addresses and
subjects.

On PostgreSQL (psycopg 3) each process keeps a bounded pool (``store.pool_size``, no overflow;
a request waits ``store.pool_timeout_seconds`` for a free connection, a new connection
``store.connect_timeout_seconds``); every connection is tested before it is handed out, so after
the database restarts or fails over the pool refills itself without an operator. Transactions
are READ COMMITTED: every state change in this package is a conditional ``UPDATE`` that
re-checks the state it starts from, so concurrent writers on any node still end with one
winner. Migrations hold an advisory lock: two nodes starting at once migrate one after the
other.

Threat model: the URL comes from the operator's configuration; nothing from mail reaches SQL
except as bound parameters (SQLAlchemy Core everywhere). This layer never imports a web
framework: the console depends on the store, never the other way round.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from gateway.configuration.settings import StoreSettings

MIGRATIONS: Final = Path(__file__).parent / "migrations"
SQLITE_PREFIX: Final = "sqlite:///"
BUSY_TIMEOUT_MS: Final = 30_000
# Readings of the database's clock per measure (the one with the shortest round trip counts).
CLOCK_SAMPLES: Final = 5
# PostgreSQL's SQLSTATE for a full disk (class 53, insufficient resources).
PG_DISK_FULL: Final = "53100"
# The advisory lock a migration holds on PostgreSQL ("mukaika" in ASCII, as a bigint key).
MIGRATION_LOCK: Final = 0x6D756B61696B61


class StoreError(Exception):
    """The store cannot be opened, read or written. ``errno`` is ENOSPC for a full disk."""

    def __init__(self, message: str, code: int = errno.EIO) -> None:
        super().__init__(message)
        self.errno = code


class ClockOffsetError(Exception):
    """This node's clock and the database server's differ by more than the configured bound."""


class StoreMissingError(StoreError):
    """There is no store at that URL (and this program may not create one)."""


class SchemaState(StrEnum):
    """How a database's schema compares with the one this program knows."""

    EMPTY = "empty"  # no schema yet
    OLDER = "older"  # migrations of this program have not run on it yet
    CURRENT = "current"  # exactly this program's schema
    NEWER = "newer"  # written by a newer program: refused


class StoreSchemaError(StoreError):
    """The schema is not the one this program can work with (newer, or not yet migrated)."""

    def __init__(self, message: str, status: SchemaStatus) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """The database's revision, this program's head revision, and how they compare."""

    current: str | None
    head: str
    state: SchemaState


def store_errno(exc: BaseException) -> int:
    """ENOSPC for a full disk (SQLite's "database or disk is full", PostgreSQL's disk_full),
    else EIO."""
    original = getattr(exc, "orig", exc)
    full = (
        getattr(original, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        or getattr(original, "sqlstate", None) == PG_DISK_FULL
    )
    return errno.ENOSPC if full else errno.EIO


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for another database."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    return Path(url[len(SQLITE_PREFIX) :].partition("?")[0])


class Store:
    """An open store. Thread-safe (a connection pool); methods block: call them from a thread
    in asyncio code."""

    def __init__(
        self, url: str, *, create: bool = True, limits: StoreSettings | None = None
    ) -> None:
        """Open the store at ``url`` (an SQLite file is made when missing if ``create``);
        ``limits`` bound a PostgreSQL pool (the settings' defaults when None)."""
        self.url = url
        self.limits = limits or StoreSettings()
        self._lone_engine: Engine | None = None
        self.path = sqlite_path(url)
        if self.path is not None:
            _prepare_sqlite_file(self.path, create=create)
        try:
            if self.path is not None:
                self.engine: Engine = create_engine(url)
                _tune_sqlite(self.engine)
            else:
                self.engine = _pooled_engine(url, self.limits)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"store {self.where}: {exc}") from exc

    @classmethod
    def from_settings(cls, settings: StoreSettings, data_dir: Path, *, create: bool) -> Store:
        """The store that ``settings`` name for ``data_dir``."""
        return cls(settings.resolve_url(data_dir), create=create, limits=settings)

    @property
    def where(self) -> str:
        """The store for messages: its file, or its URL without a password."""
        if self.path is not None:
            return str(self.path)
        return without_password(self.url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    # -- connections -----------------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads (a consistent snapshot on SQLite's WAL)."""
        try:
            with self.engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.where}: {_short(exc)}", store_errno(exc)) from exc

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
        try:
            with self.engine.execution_options(immediate=True).begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.where}: {_short(exc)}", store_errno(exc)) from exc

    def lone_connection(self) -> Connection:
        """A connection of its own, outside the pool and in autocommit, for a session that
        lives long (the advisory locks of :mod:`gateway.store.singleton`); the caller closes
        it."""
        try:
            if self._lone_engine is None:
                self._lone_engine = create_engine(
                    self.engine.url,
                    poolclass=NullPool,
                    isolation_level="AUTOCOMMIT",
                    connect_args=_connect_args(self.limits),
                )
            return self._lone_engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.where}: {_short(exc)}", store_errno(exc)) from exc

    def close(self) -> None:
        self.engine.dispose()
        if self._lone_engine is not None:
            self._lone_engine.dispose()

    def ping(self) -> None:
        """One trivial query: StoreError when the store does not answer."""
        with self.reading() as connection:
            connection.execute(text("SELECT 1"))

    def clock_offset(self, samples: int = CLOCK_SAMPLES) -> float | None:
        """How far the database server's clock is ahead of this machine's, in seconds (the
        sample with the shortest round trip, its midpoint taken as the moment read); None on
        SQLite, whose clock is this machine's."""
        if self.dialect != "postgresql":
            return None
        best: tuple[float, float] | None = None
        with self.reading() as connection:
            for _ in range(samples):
                before = time.time()
                server = connection.scalar(text("SELECT extract(epoch FROM clock_timestamp())"))
                after = time.time()
                offset = float(server) - (before + after) / 2
                if best is None or after - before < best[0]:
                    best = (after - before, offset)
        assert best is not None
        return best[1]

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------------

    def status(self) -> SchemaStatus:
        """The schema's revision compared with this program's."""
        script = ScriptDirectory.from_config(_alembic_config())
        head = script.get_current_head()
        assert head is not None  # the package ships its migrations
        with self.reading() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        if current is None:
            return SchemaStatus(None, head, SchemaState.EMPTY)
        if current == head:
            return SchemaStatus(current, head, SchemaState.CURRENT)
        try:
            known = script.get_revision(current) is not None
        except CommandError:
            known = False
        state = SchemaState.OLDER if known else SchemaState.NEWER
        return SchemaStatus(current, head, state)

    def require_current(self) -> SchemaStatus:
        """The status if the schema is this program's; else :class:`StoreSchemaError`."""
        status = self.status()
        if status.state is not SchemaState.CURRENT:
            raise StoreSchemaError(describe(status, self.where), status)
        return status

    def migrate(self) -> SchemaStatus:
        """Bring an empty or older schema up to this program's, in one transaction; refuse a
        newer one (:class:`StoreSchemaError`). Returns the status before."""
        before = self.status()
        if before.state is SchemaState.NEWER:
            raise StoreSchemaError(describe(before, self.where), before)
        if before.state is SchemaState.CURRENT:
            return before
        try:
            with self.migrating() as config:
                command.upgrade(config, "head")
        except CommandError as exc:
            raise StoreError(f"store {self.where}: migration failed: {exc}") from exc
        return before

    @contextlib.contextmanager
    def migrating(self) -> Iterator[AlembicConfig]:
        """Alembic's configuration bound to one write transaction, committed when the block ends.

        On SQLite, foreign keys are off inside it: a batch migration copies a table and drops
        the old one, and with them on that drop would cascade into every decision record that
        refers to a message. The references are checked before the commit instead.
        """
        try:
            with self.engine.connect() as connection:
                sqlite = connection.dialect.name == "sqlite"
                raw = connection.connection.dbapi_connection
                assert raw is not None
                if sqlite:  # outside any transaction: SQLite ignores it inside one
                    raw.execute("PRAGMA foreign_keys=OFF")
                try:
                    with connection.execution_options(immediate=True).begin():
                        if connection.dialect.name == "postgresql":
                            connection.execute(
                                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                            )
                        config = _alembic_config()
                        config.attributes["connection"] = connection
                        yield config
                        if sqlite:
                            broken = connection.exec_driver_sql("PRAGMA foreign_key_check")
                            if broken.first() is not None:
                                raise StoreError(
                                    f"store {self.where}: migration left dangling references; "
                                    "rolled back"
                                )
                finally:
                    if sqlite:
                        raw.execute("PRAGMA foreign_keys=ON")
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.where}: {_short(exc)}", store_errno(exc)) from exc

    # -- backup ----------------------------------------------------------------------------

    def backup(self, target: Path) -> int:
        """A consistent copy of a live SQLite store in ``target`` (mode 0600, written whole or
        not at all); returns its size. Writers may go on meanwhile: SQLite's online backup
        copies one snapshot."""
        if self.path is None:
            raise StoreError(
                "mukaika store backup copies an SQLite store only; back up PostgreSQL with "
                "pg_dump (see the guide)"
            )
        if target.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(target))
        partial = target.with_name(f".{target.name}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        try:
            destination = sqlite3.connect(partial)
            try:
                with self.reading() as connection:
                    source = connection.connection.driver_connection
                    assert isinstance(source, sqlite3.Connection)
                    source.backup(destination)
                destination.execute("PRAGMA journal_mode=DELETE")
            finally:
                destination.close()
            with open(partial, "rb") as handle:
                os.fsync(handle.fileno())
            os.rename(partial, target)
            fsync_directory(target.parent)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return target.stat().st_size


def describe(status: SchemaStatus, where: str) -> str:
    """One sentence for an operator about a schema this program cannot use as it is."""
    if status.state is SchemaState.NEWER:
        return (
            f"store {where} has schema revision {status.current}, newer than this program knows "
            f"(its newest is {status.head}): it was used by a newer mukaika; run that version "
            "(or restore the backup taken before the upgrade)"
        )
    if status.state is SchemaState.EMPTY:
        return f"store {where} has no schema yet: run mukaika store migrate"
    return (
        f"store {where} has schema revision {status.current}, older than this program's "
        f"{status.head}: run mukaika store migrate"
    )


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _prepare_sqlite_file(path: Path, *, create: bool) -> None:
    """Create the database file private (0600) before SQLite opens it; its -wal and -shm files
    get the same mode."""
    if path.exists():
        with contextlib.suppress(PermissionError):  # another user's store: read only
            os.chmod(path, 0o600)
        return
    if not create:
        raise StoreMissingError(f"no store at {path}")
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _pooled_engine(url: str, limits: StoreSettings) -> Engine:
    """A PostgreSQL engine (psycopg 3) with a bounded pool that tests each connection before
    handing it out, so a restarted or failed-over database is reached again by itself."""
    return create_engine(
        url,
        pool_size=limits.pool_size,
        max_overflow=0,
        pool_timeout=limits.pool_timeout_seconds,
        pool_pre_ping=True,
        connect_args=_connect_args(limits),
    )


def _connect_args(limits: StoreSettings) -> dict[str, Any]:
    return {"connect_timeout": limits.connect_timeout_seconds, "application_name": "mukaika"}


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own implicit transactions off: ours are explicit (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def without_password(url: str) -> str:
    """``url`` as shown to people: the password (in the user part or as a ``password=``
    option) replaced by ``***``, the driver name left out."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    scheme = scheme.partition("+")[0]
    credentials, at, host = rest.rpartition("@")
    if at and ":" in credentials:
        rest = f"{credentials.partition(':')[0]}:***@{host}"
    return f"{scheme}://" + PASSWORD_OPTION.sub(r"\1***", rest)


PASSWORD_OPTION: Final = re.compile(r"((?:^|[?&])password=)[^&]*", re.IGNORECASE)


def _short(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    return str(original) if original is not None else type(exc).__name__
