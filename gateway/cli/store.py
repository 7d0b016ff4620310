"""``mukaika store migrate|status|backup|copy``: the database every process of the gateway
shares.

- ``migrate`` brings the schema up to this version's (creating the store if there is none) and
  moves today's quarantine index (``quarantine/index.sqlite3``) into it without losing an entry;
  it refuses a store written by a newer version. ``serve`` does the same at start unless
  ``store.migrate_on_start`` is off.
- ``status`` prints the store, its schema revision and this program's.
- ``backup FILE`` writes a consistent copy of a live SQLite store (single node): SQLite's online
  backup copies one snapshot while serve goes on writing. PostgreSQL is backed up with
  ``pg_dump`` (the guides).
- ``copy --from URL --to URL`` moves an installation (SQLite to PostgreSQL and back): every row,
  ids kept, in one transaction committed only when the counts agree; a target holding rows is
  refused unless ``--replace`` is given. Stop every serve and console first: rows written to
  the source during the copy are not in the target.

Run it as the service's user: SQLite creates its ``-wal``/``-shm`` files as whoever opens the
store, and files owned by root would lock the service out.

Exit codes (:class:`gateway.cli.exit_codes.ExitCode`): 0 done; 2 usage error (copy: the target
holds rows); 4 no store (status, backup, copy's source); 74 the store cannot be read or written
(copy: the counts disagree; nothing committed); 78 invalid configuration; 79 the schema is newer
than this program's (status, copy: or not migrated).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_group, data_dir, load, with_store_url
from gateway.evidence.audit import AuditLog
from gateway.store import (
    SchemaState,
    Store,
    StoreError,
    StoreMissingError,
    StoreSchemaError,
    migrate_store,
)
from gateway.store.copying import TargetNotEmptyError, copy_store
from gateway.store.database import describe
from sanitizers.vocabulary import AuditEvent


def register(subparsers: Any) -> None:
    """Add ``store`` and its actions to the ``mukaika`` parser."""
    add_action = add_group(
        subparsers,
        "store",
        help="migrate, inspect and back up the store (the shared database)",
        description="The store: one schema, one migration history, shared by every process.",
    )
    migrate = add_action(
        "migrate", help="bring the schema up to date; move the old quarantine index in"
    )
    migrate.set_defaults(func=_migrate)
    status = add_action("status", help="the store's schema revision and this program's")
    status.set_defaults(func=_status)
    backup = add_action("backup", help="a consistent copy of a live SQLite store")
    backup.add_argument("output", type=Path, help="the copy to write (must not exist)")
    backup.set_defaults(func=_backup)
    copy = add_action(
        "copy", help="copy every row of one store into another (moving an installation)"
    )
    copy.add_argument("--from", dest="source", required=True, metavar="URL", help="store to read")
    copy.add_argument("--to", dest="target", required=True, metavar="URL", help="store to fill")
    copy.add_argument(
        "--replace", action="store_true", help="delete the rows the target holds first"
    )
    copy.set_defaults(func=_copy)


def _migrate(args: argparse.Namespace) -> int:
    config, _ = load(args)
    root = data_dir(args, config)
    try:
        store, before, moved = migrate_store(config.store, config.quarantine, root)
    except StoreSchemaError as exc:
        raise CliError(str(exc), ExitCode.STORE_SCHEMA) from exc
    except (StoreError, OSError) as exc:
        raise CliError(f"migration failed, nothing changed: {exc}", ExitCode.IO_ERROR) from exc
    with store:
        if before.state is SchemaState.CURRENT and not moved:
            print(f"store {store.where} is up to date (schema {before.head})")
            return ExitCode.OK
        print(
            f"store {store.where} migrated from schema {before.current or '(none)'} "
            f"to {before.head}"
        )
        if moved:
            print(f"{moved} quarantine entries moved in from the old index")
        with AuditLog.from_settings(config.audit, root, config.node.resolved_name()) as audit:
            audit.write(
                {
                    "event": AuditEvent.STORE,
                    "outcome": "migrated",
                    "schema": before.head,
                    "count": moved,
                }
            )
    return ExitCode.OK


def _opened(args: argparse.Namespace) -> Store:
    config, _ = load(args)
    try:
        return Store.from_settings(config.store, data_dir(args, config), create=False)
    except StoreMissingError as exc:
        raise CliError(f"{exc} (check --data-dir or --config)", ExitCode.NOT_FOUND) from exc
    except StoreError as exc:
        raise CliError(str(exc), ExitCode.IO_ERROR) from exc


def _status(args: argparse.Namespace) -> int:
    with _opened(args) as store:
        try:
            status = store.status()
        except StoreError as exc:
            raise CliError(str(exc), ExitCode.IO_ERROR) from exc
        print(f"store     {store.where}")
        print(f"schema    {status.current or '(none)'}")
        print(f"program   {status.head}")
        print(f"state     {status.state}")
        if status.state is not SchemaState.CURRENT:
            print(describe(status, store.where), file=sys.stderr)
            return ExitCode.STORE_SCHEMA
    return ExitCode.OK


def _backup(args: argparse.Namespace) -> int:
    with _opened(args) as store:
        try:
            size = store.backup(args.output)
        except FileExistsError as exc:
            raise CliError(f"{args.output} exists: give a new file name", ExitCode.USAGE) from exc
        except (StoreError, OSError) as exc:
            raise CliError(f"backup failed: {exc}", ExitCode.IO_ERROR) from exc
    print(f"store {store.where} copied to {args.output} ({size} bytes)")
    return ExitCode.OK


def _copy(args: argparse.Namespace) -> int:
    config, _ = load(args)
    root = data_dir(args, config)
    try:
        source_settings = with_store_url(config, args.source).store
        target_settings = with_store_url(config, args.target).store
    except ValueError as exc:
        raise CliError(f"--from/--to: {exc}", ExitCode.CONFIG) from exc
    try:
        source = Store.from_settings(source_settings, root, create=False)
    except StoreMissingError as exc:
        raise CliError(str(exc), ExitCode.NOT_FOUND) from exc
    except StoreError as exc:
        raise CliError(str(exc), ExitCode.IO_ERROR) from exc
    with source:
        try:
            target = Store.from_settings(target_settings, root, create=True)
        except StoreError as exc:
            raise CliError(str(exc), ExitCode.IO_ERROR) from exc
        with target:
            try:
                copied = copy_store(source, target, replace=args.replace)
            except StoreSchemaError as exc:
                raise CliError(str(exc), ExitCode.STORE_SCHEMA) from exc
            except TargetNotEmptyError as exc:
                raise CliError(str(exc), ExitCode.USAGE) from exc
            except StoreError as exc:
                raise CliError(f"copy failed: {exc}", ExitCode.IO_ERROR) from exc
            counts = ", ".join(f"{table} {n}" for table, n in copied.items())
            print(f"store {source.where} copied to {target.where}: {counts} (counts verified)")
            with AuditLog.from_settings(config.audit, root, config.node.resolved_name()) as audit:
                audit.write(
                    {
                        "event": AuditEvent.STORE,
                        "outcome": "copied",
                        "count": sum(copied.values()),
                    }
                )
    return ExitCode.OK
