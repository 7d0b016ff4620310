"""``mukaika quarantine unlock`` without a running service, or without a usable password."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode

REF = "20261122T020021Z-03f6c5abc091"


def test_the_password_file_is_required(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["quarantine", "unlock", REF, "--data-dir", str(tmp_path)]) == ExitCode.USAGE
    assert "--password-file FILE is required" in capsys.readouterr().err


def test_an_unreadable_password_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["quarantine", "unlock", REF, "--password-file", str(tmp_path / "none")]
    assert main([*argv, "--data-dir", str(tmp_path)]) == ExitCode.INPUT


def test_an_empty_password_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "pw"
    empty.write_bytes(b"\n\n")
    argv = ["quarantine", "unlock", REF, "--password-file", str(empty)]
    assert main([*argv, "--data-dir", str(tmp_path)]) == ExitCode.USAGE
    assert "holds no password" in capsys.readouterr().err


def test_without_a_running_service(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("Ppap-2026!\n", encoding="utf-8")
    argv = ["quarantine", "unlock", REF, "--password-file", str(secret)]
    assert main([*argv, "--data-dir", str(tmp_path)]) == ExitCode.UNAVAILABLE
    err = capsys.readouterr().err
    assert "cannot reach the running mukaika serve" in err
    assert "Ppap-2026!" not in err
