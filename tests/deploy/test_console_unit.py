"""The console's systemd unit (deploy/mukaika-console.service): systemd accepts it, it runs
``mukaika console`` on the operator's configuration as the service's user and data directory,
and it does not restart a start that cannot work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import build_parser
from tests.deploy.test_hardening import INSTALLED_BINARY, one, systemd_analyze, unit_settings
from tests.paths import ROOT

UNIT = ROOT / "deploy" / "mukaika-console.service"
SERVICE = ROOT / "deploy" / "mukaika.service"


def test_systemd_accepts_the_console_unit(tmp_path: Path) -> None:
    mukaika = Path(sys.executable).with_name("mukaika")
    if not mukaika.exists():
        pytest.fail("the mukaika script is not installed next to this interpreter: make install")
    local = tmp_path / UNIT.name
    local.write_text(UNIT.read_text(encoding="utf-8").replace(INSTALLED_BINARY, str(mukaika)))
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if local.name in line] == []


def test_the_console_unit_runs_the_console_beside_the_service() -> None:
    console, service = unit_settings(UNIT), unit_settings(SERVICE)
    command = one(console, "ExecStart").split()
    assert command[0] == INSTALLED_BINARY
    args = build_parser().parse_args(command[1:])
    assert (args.command, args.config) == ("console", Path("/etc/mukaika/mukaika.toml"))
    for key in ("User", "Group", "StateDirectory", "WorkingDirectory"):
        assert one(console, key) == one(service, key), key
    assert set(one(console, "RestartPreventExitStatus").split()) == {"78", "79", "2"}
