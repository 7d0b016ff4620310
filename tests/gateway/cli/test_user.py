"""``mukaika user``: console passwords read from stdin (never argv) and stored as argon2
hashes, addresses shared by several users, TOTP secrets shown once, sessions ended when a
user is disabled. Run as separate processes: each command configures Django for itself."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyotp

from gateway.cli.exit_codes import ExitCode
from gateway.configuration.settings import QuarantineSettings, StoreSettings
from gateway.store import open_store
from gateway.store.users import addresses_of, login_of

PASSWORD = "correct horse battery staple"


def _mukaika(data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args, "--data-dir", str(data)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _store(data: Path):  # type: ignore[no-untyped-def]
    return open_store(StoreSettings(), QuarantineSettings(), data)


def test_add_reads_the_password_from_stdin_and_stores_an_argon2_hash(tmp_path: Path) -> None:
    added = _mukaika(
        tmp_path,
        *("user", "add", "rin", "--role", "recipient"),
        *("--address", "Kacho@City.example.lg.jp", "--address", "rin@city.example.lg.jp"),
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == ExitCode.OK, added.stderr
    shared = _mukaika(
        tmp_path,
        *("user", "add", "ren", "--role", "recipient", "--address", "kacho@city.example.lg.jp"),
        stdin=PASSWORD + "\n",
    )
    assert shared.returncode == ExitCode.OK, shared.stderr
    with _store(tmp_path) as store:
        login = login_of(store, "rin")
        assert login is not None
        assert login.password_hash is not None
        assert login.password_hash.startswith("argon2$argon2id$")
        assert PASSWORD not in login.password_hash
        assert addresses_of(store, "rin") == ["kacho@city.example.lg.jp", "rin@city.example.lg.jp"]
        assert addresses_of(store, "ren") == ["kacho@city.example.lg.jp"]
    listing = _mukaika(tmp_path, "user", "list")
    assert "kacho@city.example.lg.jp" in listing.stdout


def test_a_weak_password_or_a_bad_address_is_refused(tmp_path: Path) -> None:
    weak = _mukaika(tmp_path, "user", "add", "oto", "--role", "operator", stdin="12345678\n")
    assert weak.returncode == ExitCode.USAGE
    assert "password refused" in weak.stderr
    bad = _mukaika(
        tmp_path, "user", "add", "oto", "--role", "operator", "--address", "not an address"
    )
    assert bad.returncode == ExitCode.USAGE
    assert not (tmp_path / "store.sqlite3").exists()  # refused before the store was made


def test_there_is_no_password_option() -> None:
    from gateway.cli import build_parser

    parser = build_parser()
    actions = parser._subparsers._group_actions[0].choices["user"]  # type: ignore[union-attr]
    add = actions._subparsers._group_actions[0].choices["add"]  # type: ignore[union-attr]
    assert not [
        a
        for a in add._actions
        if "password" in " ".join(a.option_strings).replace("--no-password", "")
    ]


def test_totp_prints_the_secret_once_and_its_codes_are_accepted(tmp_path: Path) -> None:
    _mukaika(tmp_path, "user", "add", "aki", "--role", "approver", stdin=PASSWORD + "\n")
    made = _mukaika(tmp_path, "user", "totp", "aki")
    assert made.returncode == ExitCode.OK, made.stderr
    secret = made.stdout.split("secret:")[1].split()[0]
    assert "otpauth://totp/mukaika:aki?secret=" + secret in made.stdout
    from gateway.service.totp import accept_code

    with _store(tmp_path) as store:
        login = login_of(store, "aki")
        assert login is not None
        assert login.totp_secret == secret
        now = datetime.now(UTC)
        code = pyotp.TOTP(secret).at(now)
        assert accept_code(store, "aki", secret, code, now)
        assert not accept_code(store, "aki", secret, code, now)
    assert _mukaika(tmp_path, "user", "totp", "nobody").returncode == ExitCode.NOT_FOUND
