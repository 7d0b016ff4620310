"""`mukaika user password NAME`: an imported user (who has no password) can sign in once it
ran; the new password is read from stdin and judged like `user add`'s; the user's sessions end;
an unknown user is refused before anything is read; an approver without a TOTP secret is told
to make one."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from tests.gateway.console.consolekit import PASSWORD, ConsoleWorld

NEW = "a new and rather longer passphrase"


def _mukaika(
    world: ConsoleWorld, monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--data-dir", str(world.runtime.data_dir)])
    return code, out.getvalue(), err.getvalue()


def _login(world: ConsoleWorld, name: str, password: str) -> int:
    client = world.client()
    return client.post("/login", {"name": name, "password": password}).status_code


def test_an_imported_user_signs_in_once_a_password_is_set(
    world: ConsoleWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    staff = tmp_path / "staff.csv"
    staff.write_text(
        "name,role,addresses,group\n"
        "kudo,recipient,kudo@city.example.lg.jp,税務課\n"
        "kubo,approver,kubo@city.example.lg.jp,税務課\n",
        encoding="utf-8",
    )
    code, _, err = _mukaika(world, monkeypatch, "user", "import", "--csv", str(staff))
    assert code == ExitCode.OK, err
    assert _login(world, "kudo", NEW) == 401  # imported: no password yet
    code, out, err = _mukaika(world, monkeypatch, "user", "password", "kudo", stdin=NEW + "\n")
    assert code == ExitCode.OK, err
    assert "password of kudo set" in out
    assert "totp" not in out
    assert _login(world, "kudo", NEW) == 302
    # An approver without a TOTP secret is told how to make one.
    code, out, err = _mukaika(world, monkeypatch, "user", "password", "kubo", stdin=NEW + "\n")
    assert code == ExitCode.OK, err
    assert "run mukaika user totp kubo" in out
    code, out, _ = _mukaika(world, monkeypatch, "user", "password", "aki", stdin=NEW + "\n")
    assert code == ExitCode.OK
    assert "totp" not in out  # aki has a secret
    set_for = [
        line["user"]
        for line in world.audit_lines()
        if line["event"] == "user" and line["outcome"] == "password_set" and line["actor"]
    ]
    assert set_for == ["kudo", "kubo", "aki"]
    assert all(NEW not in str(line) for line in world.audit_lines())


def test_a_new_password_ends_the_sessions_and_the_old_one_no_longer_signs_in(
    world: ConsoleWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = world.signed_in("oto")
    other = world.signed_in("rin")
    assert client.get("/").status_code == 200
    code, _, err = _mukaika(world, monkeypatch, "user", "password", "oto", stdin=NEW + "\n")
    assert code == ExitCode.OK, err
    assert client.get("/").status_code == 302  # signed out
    assert other.get("/").status_code == 200  # another user's session is untouched
    assert _login(world, "oto", PASSWORD) == 401
    assert _login(world, "oto", NEW) == 302


def test_an_unknown_user_or_a_weak_password_is_refused_and_nothing_changes(
    world: ConsoleWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = world.signed_in("oto")
    code, out, err = _mukaika(world, monkeypatch, "user", "password", "nobody", stdin=NEW + "\n")
    assert code == ExitCode.NOT_FOUND
    assert "no user 'nobody'" in err
    assert out == ""
    code, _, err = _mukaika(world, monkeypatch, "user", "password", "oto", stdin="12345678\n")
    assert code == ExitCode.USAGE
    assert "password refused" in err
    assert client.get("/").status_code == 200  # still signed in
    assert _login(world, "oto", PASSWORD) == 302
    assert not [line for line in world.audit_lines() if line.get("outcome") == "password_set"]
