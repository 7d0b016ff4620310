"""``mukaika console`` refuses a start that cannot be safe, before it listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode


def test_plain_http_on_a_non_loopback_address_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["console", "--data-dir", str(tmp_path), "--listen", "0.0.0.0:8025"])
    assert code == ExitCode.CONFIG
    assert "plain HTTP on a non-loopback address" in capsys.readouterr().err


def test_the_same_in_the_configuration_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "mukaika.toml"
    config.write_text('[console]\nlisten = "192.0.2.10:443"\n', encoding="utf-8")
    assert (
        main(["console", "--config", str(config), "--data-dir", str(tmp_path)]) == ExitCode.CONFIG
    )
    err = capsys.readouterr().err
    assert "mukaika.toml: console" in err
    assert "plain HTTP" in err


def test_a_missing_certificate_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "mukaika.toml"
    config.write_text(
        '[console]\nlisten = "0.0.0.0:8443"\n'
        f'tls_cert_file = "{tmp_path}/none.pem"\ntls_key_file = "{tmp_path}/none.key"\n',
        encoding="utf-8",
    )
    assert (
        main(["console", "--config", str(config), "--data-dir", str(tmp_path)]) == ExitCode.CONFIG
    )
    assert "console.tls_cert_file" in capsys.readouterr().err


def test_a_store_not_migrated_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["console", "--data-dir", str(tmp_path)]) == ExitCode.STORE_SCHEMA
