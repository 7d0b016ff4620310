"""The store: one schema built by its migrations, refused when newer, backed up live, and
today's quarantine index moved in without losing an entry. Every test that takes
``store_settings`` runs on SQLite and on PostgreSQL (a private cluster, tests/postgres.py).

``legacy/`` holds a quarantine written by the code before the store existed (commit 97ddb6f:
``Quarantine.store``, ``record_result``, ``record_delivery`` on three mails, one of them with
Japanese header text): its ``index.sqlite3``, the originals, and ``expected.json``, the entries
as that code listed them (``entry.to_dict()``, newest first).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import text

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.configuration.settings import QuarantineSettings, StoreSettings
from gateway.evidence.quarantine import Quarantine
from gateway.store import SchemaState, Store, StoreSchemaError, migrate_store, open_store
from gateway.store.database import without_password
from gateway.store.schema import metadata
from tests.storekit import migrated_store, quarantine_in

LEGACY = Path(__file__).parent / "legacy"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _legacy_data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(LEGACY / "quarantine", data / "quarantine")
    return data


def _expected() -> list[dict[str, object]]:
    loaded: list[dict[str, object]] = json.loads((LEGACY / "expected.json").read_text("utf-8"))
    return loaded


def _make_newer(store: Store) -> None:
    with store.writing() as db:
        db.execute(text("UPDATE alembic_version SET version_num = 'f00dfeedbeef'"))


def test_the_migrations_build_exactly_the_schema_the_code_uses(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    with migrated_store(tmp_path, settings=store_settings) as store, store.reading() as db:
        differences = compare_metadata(MigrationContext.configure(db), metadata)
    assert differences == []


def test_a_new_store_is_created_current(tmp_path: Path, store_settings: StoreSettings) -> None:
    with migrated_store(tmp_path, settings=store_settings) as store:
        assert store.status().state is SchemaState.CURRENT


def test_a_new_sqlite_store_is_created_private(tmp_path: Path) -> None:
    migrated_store(tmp_path).close()
    assert (tmp_path / "store.sqlite3").stat().st_mode & 0o777 == 0o600


def test_a_newer_schema_is_refused_by_every_way_in(
    tmp_path: Path, store_settings: StoreSettings, store_args: list[str]
) -> None:
    with migrated_store(tmp_path, settings=store_settings) as store:
        _make_newer(store)
        status = store.status()
        assert status.state is SchemaState.NEWER
        with pytest.raises(StoreSchemaError, match="newer than this program"):
            store.migrate()
        with pytest.raises(StoreSchemaError, match="newer than this program"):
            store.require_current()
    # Nothing was changed by the refusals.
    with Store.from_settings(store_settings, tmp_path, create=False) as store:
        assert store.status().current == "f00dfeedbeef"
    code, _, err = run("store", "migrate", "--data-dir", str(tmp_path), *store_args)
    assert code == ExitCode.STORE_SCHEMA
    assert "newer than this program" in err
    code, _, err = run("quarantine", "list", "--data-dir", str(tmp_path), *store_args)
    assert code == ExitCode.STORE_SCHEMA
    code, out, _ = run("store", "status", "--data-dir", str(tmp_path), *store_args)
    assert code == ExitCode.STORE_SCHEMA
    assert "newer" in out


def test_serve_refuses_a_newer_schema_with_its_exit_code(
    tmp_path: Path, store_settings: StoreSettings, store_args: list[str]
) -> None:
    with migrated_store(tmp_path, settings=store_settings) as store:
        _make_newer(store)
    code, _, err = run("serve", "--data-dir", str(tmp_path), "--listen", "127.0.0.1:0", *store_args)
    assert code == ExitCode.STORE_SCHEMA
    assert "newer than this program" in err
    assert "not started" in err


def test_commands_refuse_a_store_not_yet_migrated(
    tmp_path: Path, store_settings: StoreSettings, store_args: list[str]
) -> None:
    data = _legacy_data_dir(tmp_path)
    # A store exists (e.g. made by another command) but the old index is still beside it.
    with Store.from_settings(store_settings, data, create=True) as store:
        store.migrate()
    code, _, err = run("quarantine", "list", "--data-dir", str(data), *store_args)
    assert code == ExitCode.STORE_SCHEMA
    assert "mukaika store migrate" in err


def test_an_empty_store_is_refused_until_migrated(
    tmp_path: Path, store_settings: StoreSettings, store_args: list[str]
) -> None:
    Store.from_settings(store_settings, tmp_path, create=True).close()
    code, _, err = run("quarantine", "list", "--data-dir", str(tmp_path), *store_args)
    assert code == ExitCode.STORE_SCHEMA
    assert "no schema yet: run mukaika store migrate" in err


def test_todays_quarantine_index_moves_in_without_losing_an_entry(
    tmp_path: Path, store_settings: StoreSettings, store_args: list[str]
) -> None:
    data = _legacy_data_dir(tmp_path)
    code, out, err = run("store", "migrate", "--data-dir", str(data), *store_args)
    assert code == ExitCode.OK, err
    assert "3 quarantine entries moved in" in out
    assert not (data / "quarantine" / "index.sqlite3").exists()
    assert (data / "quarantine" / "index.sqlite3.migrated").is_file()
    code, out, _ = run("quarantine", "list", "--json", "--data-dir", str(data), *store_args)
    assert code == ExitCode.OK
    listed = [json.loads(line) for line in out.splitlines()]
    # Today's fields unchanged; the unlock attempts (PPAP, migration 0002) start at 0 and the
    # node (0003) is "" (written before nodes: the only node there was, never guessed), and
    # so is the tenant (0005: a single installation), the original stays a file in the
    # quarantine directory (0007), and no sender authentication outcome (0009) was kept then.
    later = ("unlock_attempts", "node", "tenant", "kept_in", "auth")
    assert {e["kept_in"] for e in listed} == {"directory"}
    assert [{k: v for k, v in e.items() if k not in later} for e in listed] == _expected()
    assert [(e["unlock_attempts"], e["node"], e["auth"]) for e in listed] == [(0, "", None)] * 3
    # The originals are still found and verified through the moved rows.
    code, out, _ = run("quarantine", "verify", "--data-dir", str(data), *store_args)
    assert (code, out.strip()) == (ExitCode.OK, "verified 3 original(s): 3 intact, 0 failed")
    audit = (data / "audit" / "audit.jsonl").read_text("utf-8").splitlines()
    assert json.loads(audit[-1])["event"] == "store"
    # Running it again changes nothing.
    code, out, _ = run("store", "migrate", "--data-dir", str(data), *store_args)
    assert (code, "up to date" in out) == (ExitCode.OK, True)


def test_an_interrupted_move_is_completed_without_duplicates(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    """A crash after the rows were committed but before the old file was renamed: the next
    run skips the rows already there."""
    data = _legacy_data_dir(tmp_path)
    backup = tmp_path / "index-copy.sqlite3"
    shutil.copy(data / "quarantine" / "index.sqlite3", backup)
    store, _, moved = migrate_store(store_settings, QuarantineSettings(), data)
    store.close()
    assert moved == 3
    shutil.copy(backup, data / "quarantine" / "index.sqlite3")  # as if never renamed
    store, _, moved = migrate_store(store_settings, QuarantineSettings(), data)
    with store, Quarantine.from_settings(QuarantineSettings(), data, store) as quarantine:
        assert moved == 0
        assert quarantine.count() == 3


def test_serve_moves_the_old_index_in_at_start(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    data = _legacy_data_dir(tmp_path)
    from gateway.configuration.config import Config
    from gateway.service.assembly import Gateway, Parts
    from tests.gateway.relaykit import FakeSanitizer

    config = Config.model_validate(
        {"service": {"data_dir": str(data)}, "store": {"url": store_settings.url}}
    )
    gateway = Gateway(config, Parts(sanitizer=FakeSanitizer()))
    try:
        assert gateway.store is not None
        with open_store(config.store, config.quarantine, data) as store, store.reading() as db:
            assert db.execute(text("SELECT count(*) FROM messages")).scalar() == 3
    finally:
        for close in gateway._owned:
            close()


def test_an_unknown_old_index_stops_the_move(tmp_path: Path, store_args: list[str]) -> None:
    data = _legacy_data_dir(tmp_path)
    with sqlite3.connect(data / "quarantine" / "index.sqlite3") as db:
        db.execute("PRAGMA user_version=7")
    db.close()
    code, _, err = run("store", "migrate", "--data-dir", str(data), *store_args)
    assert code == ExitCode.IO_ERROR
    assert "schema version 7" in err
    assert (data / "quarantine" / "index.sqlite3").is_file()


def test_backup_of_a_live_store_is_consistent(tmp_path: Path) -> None:
    stop = threading.Event()
    written: list[int] = []
    with quarantine_in(tmp_path / "quarantine") as quarantine:

        def keep_writing() -> None:
            while not stop.is_set():
                quarantine.store(
                    f"Q{len(written)}",
                    f"Subject: {len(written)}\r\n\r\nx\r\n".encode(),
                    client="192.0.2.1",
                    helo="h",
                    mail_from="a@example.jp",
                    rcpt_to=["b@city.example.lg.jp"],
                    received_at=datetime.now(UTC),
                )
                written.append(1)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            while len(written) < 5:
                stop.wait(0.01)
            code, _, err = run(
                "store", "backup", str(tmp_path / "copy.sqlite3"), "--data-dir", str(tmp_path)
            )
        finally:
            stop.set()
            writer.join()
    assert code == ExitCode.OK, err
    copy = tmp_path / "copy.sqlite3"
    assert copy.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    db.close()
    assert 5 <= rows <= len(written)
    with Store(f"sqlite:///{copy}", create=False) as restored:
        assert restored.status().state is SchemaState.CURRENT
    # An existing file is never overwritten.
    code, _, err = run("store", "backup", str(copy), "--data-dir", str(tmp_path))
    assert code == ExitCode.USAGE
    assert "exists" in err


def test_commands_do_not_create_a_store(tmp_path: Path) -> None:
    for argv in (
        ("store", "status"),
        ("store", "backup", str(tmp_path / "c")),
        ("quarantine", "list"),
    ):
        assert run(*argv, "--data-dir", str(tmp_path / "nowhere"))[0] == ExitCode.NOT_FOUND
    assert not (tmp_path / "nowhere").exists()


def test_only_sqlite_and_postgresql_urls_are_accepted() -> None:
    for url in ("mysql://x/y", "sqlite://relative", "postgres://u@h/d", "oracle://u:secret@h/d"):
        with pytest.raises(ValidationError, match="sqlite:///PATH or postgresql://") as refused:
            StoreSettings(url=url)
        assert "secret" not in refused.value.errors()[0]["msg"]
    assert StoreSettings().resolve_url(Path("/srv/m")) == "sqlite:////srv/m/store.sqlite3"
    assert (
        StoreSettings(url="sqlite:////abs/s.db").resolve_url(Path("/srv")) == "sqlite:////abs/s.db"
    )
    # psycopg 3 is the driver, whatever SQLAlchemy's default for postgresql:// would be.
    assert (
        StoreSettings(url="postgresql://m:pw@db.example/mukaika").resolve_url(Path("/srv"))
        == "postgresql+psycopg://m:pw@db.example/mukaika"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://m:s3cret@db/x", "postgresql://m:***@db/x"),
        ("postgresql://m@db/x?password=s3cret&sslmode=verify-full", "postgresql://m@db/x?password=***&sslmode=verify-full"),
        ("postgresql://m:s3cret@a,b/x?target_session_attrs=read-write", "postgresql://m:***@a,b/x?target_session_attrs=read-write"),
    ],
)  # fmt: skip
def test_a_store_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert without_password(url) == shown


def test_the_store_url_option_reaches_every_command(tmp_path: Path, postgres_url: str) -> None:
    """--store-url on store, quarantine, user and serve opens the PostgreSQL store, never the
    SQLite file of the data directory."""
    data = tmp_path / "data"
    code, out, err = run("store", "migrate", "--data-dir", str(data), "--store-url", postgres_url)
    assert code == ExitCode.OK, err
    assert "postgresql://mukaika:***@127.0.0.1" in out
    assert postgres_url.split(":")[2].split("@")[0] not in out  # the password
    code, _, err = run(
        "user", "add", "alice", "--role", "operator", "--no-password", "--store-url", postgres_url
    )
    assert code == ExitCode.OK, err
    code, out, _ = run("user", "list", "--store-url", postgres_url, "--data-dir", str(data))
    assert "alice" in out
    code, out, _ = run("quarantine", "list", "--data-dir", str(data), "--store-url", postgres_url)
    assert code == ExitCode.OK
    assert not (data / "store.sqlite3").exists()
    # A URL the settings refuse is a configuration error, on every command.
    code, _, err = run("quarantine", "list", "--store-url", "mysql://u:secret@h/d")
    assert code == ExitCode.CONFIG
    assert "secret" not in err
    code, _, err = run("serve", "--store-url", "mysql://u:secret@h/d", "--listen", "127.0.0.1:0")
    assert code == ExitCode.CONFIG


def test_postgresql_is_backed_up_with_pg_dump_not_store_backup(
    tmp_path: Path, postgres_url: str
) -> None:
    migrated_store(tmp_path, settings=StoreSettings(url=postgres_url)).close()
    code, _, err = run(
        "store", "backup", str(tmp_path / "copy"), "--data-dir", str(tmp_path),
        "--store-url", postgres_url,
    )  # fmt: skip
    assert code == ExitCode.IO_ERROR
    assert "pg_dump" in err
    assert not (tmp_path / "copy").exists()


def test_a_migration_that_rebuilds_a_table_keeps_every_decision_record(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    """SQLite batch migrations copy a table and drop the old one; with foreign keys on, the drop
    would cascade into the decisions that refer to its rows. 0002's downgrade is such a copy
    (on PostgreSQL an ALTER TABLE in place)."""
    from alembic import command
    from sqlalchemy import func, insert, select

    from gateway.store.schema import messages, requests

    now = datetime(2026, 12, 3, tzinfo=UTC)
    with migrated_store(tmp_path, settings=store_settings) as store:
        with store.writing() as db:
            db.execute(
                insert(messages).values(
                    id="20261203T000000Z-0123456789ab", queue_id="q", received_at=now,
                    stored_at=now, updated_at=now, client="192.0.2.1", helo="h", mail_from="",
                    rcpt_to="[]", size=1, stored_size=1, sha256="0" * 64,
                )
            )  # fmt: skip
            db.execute(
                insert(requests).values(
                    message="20261203T000000Z-0123456789ab", kind="release", state="pending",
                    reason="r", requested_by="a", requested_at=now, previous_state="held",
                )
            )  # fmt: skip
        with store.migrating() as config:
            command.downgrade(config, "0001")
        with store.reading() as db:
            assert db.execute(select(func.count()).select_from(requests)).scalar() == 1
            if store.dialect == "sqlite":
                assert db.execute(text("PRAGMA foreign_keys")).scalar() == 1  # on again


def test_the_move_is_refused_while_the_previous_version_has_the_index_open(
    tmp_path: Path, store_args: list[str]
) -> None:
    """Rows the old service wrote after they were read would be lost: the move waits for it."""
    data = _legacy_data_dir(tmp_path)
    index = data / "quarantine" / "index.sqlite3"
    running = sqlite3.connect(index)  # the previous version, still running
    try:
        running.execute("PRAGMA journal_mode=WAL")
        running.execute("SELECT count(*) FROM messages").fetchone()
        code, _, err = run("store", "migrate", "--data-dir", str(data), *store_args)
        assert code != ExitCode.OK
        assert "still running" in err
        assert index.is_file()
        assert not index.with_name("index.sqlite3.migrated").exists()
    finally:
        running.close()
    code, out, err = run("store", "migrate", "--data-dir", str(data), *store_args)
    assert code == ExitCode.OK, err
    assert "3 quarantine entries moved in" in out


def test_failover_is_a_connection_string(tmp_path: Path, postgres_url: str) -> None:
    """Several hosts with target_session_attrs=read-write: the store connects to the first
    that accepts writes; a host that is down (here: a closed port) is passed over."""
    from tests.clamd import free_port

    credentials, _, rest = postgres_url.partition("@")
    address, _, database = rest.partition("/")
    url = (
        f"{credentials}@/{database}?host=127.0.0.1:{free_port()}&host={address}"
        "&target_session_attrs=read-write"
    )
    with migrated_store(tmp_path, settings=StoreSettings(url=url)) as store:
        assert store.status().state is SchemaState.CURRENT
        assert "***" in store.where


def test_nodes_starting_at_once_migrate_one_after_the_other(
    tmp_path: Path, postgres_url: str
) -> None:
    """Several nodes with migrate_on_start, started together on an empty database: the
    migration's advisory lock lets one build the schema; the others then find it current."""
    settings = StoreSettings(url=postgres_url)
    stores = [Store.from_settings(settings, tmp_path, create=True) for _ in range(4)]
    start = threading.Barrier(len(stores))
    failures: list[BaseException] = []

    def migrate(store: Store) -> None:
        start.wait()
        try:
            with store.migrating() as config:
                from alembic import command

                command.upgrade(config, "head")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=migrate, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        assert {store.status().state for store in stores} == {SchemaState.CURRENT}
    finally:
        for store in stores:
            store.close()
