"""`mukaika user import --csv FILE`: one transaction on SQLite and PostgreSQL, a dry run that
changes nothing, every bad row named and nothing imported, each change an audit line."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.configuration.settings import QuarantineSettings, StoreSettings
from gateway.store import open_store
from gateway.store.directory import list_groups
from gateway.store.users import find_user, list_users

GOOD = (
    "\ufeffname,role,addresses,group\r\n"
    "tanaka,approver,tanaka@city.example.lg.jp,税務課\r\n"
    "suzuki,recipient,suzuki@city.example.lg.jp,税務課\r\n"
    "sato,approver,sato@city.example.lg.jp,総務課\r\n"
)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "staff.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_import_dry_run_then_import_then_a_shorter_file(
    tmp_path: Path, store_settings: StoreSettings, store_args: list[str]
) -> None:
    data = tmp_path / "data"
    where = ["--data-dir", str(data), *store_args]
    code, out, err = run("user", "import", "--csv", str(_csv(tmp_path, GOOD)), "--dry-run", *where)
    assert code == ExitCode.OK, err
    assert "3 would be added" in out
    code, out, err = run("user", "import", "--csv", str(_csv(tmp_path, GOOD)), *where)
    assert code == ExitCode.OK, err
    assert "3 were added" in out
    assert "2 groups" in out
    code, out, _ = run("user", "groups", *where)
    assert "税務課\n  approvers: tanaka\n  members:   suzuki tanaka\n" in out
    shorter = GOOD.split("sato,")[0]
    code, out, err = run("user", "import", "--csv", str(_csv(tmp_path, shorter)), *where)
    assert code == ExitCode.OK, err
    assert "disabled  sato" in out
    with open_store(store_settings, QuarantineSettings(), data) as store:
        sato = find_user(store, "sato")
        assert sato is not None
        assert sato.disabled
        assert [group.name for group in list_groups(store)] == ["税務課"]
    audit = [
        json.loads(line)
        for line in (data / "audit" / "audit.jsonl").read_text("utf-8").splitlines()
    ]
    outcomes = [(line["user"], line["outcome"]) for line in audit if line["event"] == "user"]
    assert ("sato", "import_disabled") in outcomes
    assert ("tanaka", "imported_added") in outcomes


def test_a_file_with_one_bad_row_imports_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = GOOD + "ito,recipient,ito@,総務課\r\n"
    code, out, err = run(
        "user", "import", "--csv", str(_csv(tmp_path, bad)), "--data-dir", str(data)
    )
    assert code == ExitCode.IMPORT_REFUSED
    assert "mukaika user: line 5: invalid mail address 'ito@'" in err
    assert "nothing imported" in err
    assert out == ""
    assert not (data / "store.sqlite3").exists()  # refused before the store was opened
    code, _, err = run(
        "user", "import", "--csv", str(_csv(tmp_path, GOOD)), "--data-dir", str(data)
    )
    assert code == ExitCode.OK, err
    code, _, err = run("user", "import", "--csv", str(_csv(tmp_path, bad)), "--data-dir", str(data))
    assert code == ExitCode.IMPORT_REFUSED
    with open_store(StoreSettings(), QuarantineSettings(), data) as store:
        assert [user.name for user in list_users(store)] == ["sato", "suzuki", "tanaka"]


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    code, _, err = run(
        "user", "import", "--csv", str(tmp_path / "nope.csv"), "--data-dir", str(tmp_path)
    )
    assert code == ExitCode.INPUT
    assert "No such file" in err


def test_one_source_is_required(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as usage:
        run("user", "import", "--data-dir", str(tmp_path))
    assert usage.value.code == ExitCode.USAGE
    with pytest.raises(SystemExit) as both:
        run("user", "import", "--csv", "x.csv", "--ldap", "--data-dir", str(tmp_path))
    assert both.value.code == ExitCode.USAGE


TENANTS = """\
[[tenants]]
name = "kita"
domains = ["city.kita.example.lg.jp"]
relay_host = "127.0.0.11"

[[tenants]]
name = "minami"
domains = ["town.minami.example.lg.jp"]
relay_host = "127.0.0.12"
"""


def test_an_import_for_a_tenant_keeps_to_its_tenant(
    tmp_path: Path, store_settings: StoreSettings, store_args: list[str]
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "mukaika.toml"
    config.write_text(f'[service]\ndata_dir = "{data}"\n{TENANTS}', encoding="utf-8")
    where = ["--config", str(config), *store_args]
    kita = _csv(tmp_path, GOOD)
    code, _, err = run("user", "import", "--csv", str(kita), "--tenant", "kita", *where)
    assert code == ExitCode.OK, err
    minami = tmp_path / "minami.csv"
    minami.write_text(
        "name,role,addresses,group\nito,recipient,ito@x.example.lg.jp,総務課\n", encoding="utf-8"
    )
    code, out, err = run("user", "import", "--csv", str(minami), "--tenant", "minami", *where)
    assert code == ExitCode.OK, err
    assert "0 disabled" in out  # kita's users are not minami's to disable
    code, out, _ = run("user", "groups", *where)
    assert "総務課 (tenant kita)\n  approvers: sato\n" in out
    assert "総務課 (tenant minami)\n  approvers: -\n  members:   ito\n" in out
    # Minami listing kita's tanaka is refused; nothing changes.
    taking = "name,role,addresses,group\ntanaka,recipient,t@x.example.lg.jp,\n"
    minami.write_text(taking, encoding="utf-8")
    code, _, err = run("user", "import", "--csv", str(minami), "--tenant", "minami", *where)
    assert code == ExitCode.WRONG_STATE
    assert "users of another tenant than tenant 'minami': tanaka; nothing imported" in err
    code, _, err = run("user", "import", "--csv", str(kita), "--tenant", "higashi", *where)
    assert code == ExitCode.CONFIG
    assert "unknown tenant 'higashi': the configuration's tenants are kita, minami" in err
    with open_store(store_settings, QuarantineSettings(), data) as store:
        users = {user.name: user for user in list_users(store)}
        assert {name: user.tenant for name, user in users.items()} == {
            "ito": "minami",
            "sato": "kita",
            "suzuki": "kita",
            "tanaka": "kita",
        }
        assert not any(user.disabled for user in users.values())
        assert users["tanaka"].role == "approver"
    audit = (data / "audit" / "audit.jsonl").read_text("utf-8").splitlines()
    added = [json.loads(line) for line in audit if "imported_added" in line]
    assert [(line["user"], line["tenant"]) for line in added][-1] == ("ito", "minami")
