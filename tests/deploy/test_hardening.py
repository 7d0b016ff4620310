"""The systemd unit (deploy/mukaika.service) against systemd's own checker and the service.

* ``systemd-analyze verify`` accepts the unit without a single warning (an unknown or
  misspelt hardening key is only a warning to systemd, so a warning fails here), and
  ``systemd-analyze security`` rates its exposure low. Skipped where systemd-analyze is absent.
* Its stop and reload settings match what ``mukaika serve`` really does with signals.
* ``MemoryDenyWriteExecute=yes`` is safe: the real ``mukaika serve`` runs under the kernel's
  W^X switch and sanitizes a macro document, a PDF with JavaScript, an image and a ZIP of
  them (the lxml, pikepdf/qpdf, Pillow and libmagic paths) without any crash or error.
"""

from __future__ import annotations

import email
import email.policy
import io
import json
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gateway.cli import build_parser
from gateway.configuration.config import Config
from tests.deploy.mails import free_port, japanese_html_mail, smtp_banner, wait_for
from tests.deploy.mdwe_launch import NOT_ENFORCED, UNSUPPORTED
from tests.sanitizers.cdr.office_fixtures import docm_with_vba
from tests.sanitizers.test_pipeline_cdr import pdf_with_javascript, png, zipped
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "mukaika.service"
PURGE_UNITS = ("mukaika-quarantine-purge.service", "mukaika-quarantine-purge.timer")
DROP_IN = ROOT / "deploy" / "systemd" / "port25.conf"
INSTALLED_BINARY = "/opt/mukaika/bin/mukaika"


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Key -> values (in order) of a unit file; comments and section headers skipped."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def one(settings: dict[str, list[str]], key: str) -> str:
    values = settings[key]
    assert len(values) == 1, f"{key} set {len(values)} times"
    return values[0]


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min|m)?", value)
    assert match, f"cannot read a time span from {value!r}"
    return float(match[1]) * (60 if match[2] in ("min", "m") else 1)


@pytest.fixture
def local_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's mukaika (verify checks it exists)."""
    mukaika = Path(sys.executable).with_name("mukaika")
    if not mukaika.exists():
        pytest.fail("the mukaika script is not installed next to this interpreter: make install")
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED_BINARY in text
    path = tmp_path / "mukaika.service"
    path.write_text(text.replace(INSTALLED_BINARY, str(mukaika)), encoding="utf-8")
    for name in PURGE_UNITS:
        text = (ROOT / "deploy" / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace(INSTALLED_BINARY, str(mukaika)), "utf-8")
    return path


def systemd_analyze() -> str:
    return require_tool("systemd-analyze", debian_package="systemd")


def test_systemd_accepts_the_unit_without_a_warning(local_unit: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(local_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = [line for line in result.stderr.splitlines() if local_unit.name in line]
    assert result.returncode == 0, result.stderr
    assert findings == []


def test_systemd_accepts_the_quarantine_purge_timer(local_unit: Path) -> None:
    units = [str(local_unit.parent / name) for name in PURGE_UNITS]
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "mukaika" in line] == []
    command = one(unit_settings(ROOT / "deploy" / PURGE_UNITS[0]), "ExecStart").split()
    assert command[0] == INSTALLED_BINARY
    args = build_parser().parse_args(command[1:])
    assert (args.command, args.config) == ("quarantine", Path("/etc/mukaika/mukaika.toml"))


def test_the_drop_in_for_port_25_is_accepted_too(local_unit: Path) -> None:
    drop_in_dir = local_unit.parent / "mukaika.service.d"
    drop_in_dir.mkdir()
    shutil.copy(DROP_IN, drop_in_dir / "port25.conf")
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(local_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "mukaika" in line] == []


def test_systemd_rates_the_exposure_low(local_unit: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--no-pager", str(local_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    if match is None:
        pytest.skip(f"this systemd-analyze has no offline security check: {result.stderr}")
    assert float(match[1]) <= 2.0, result.stdout


def test_unit_matches_how_the_service_stops_and_reloads() -> None:
    settings = unit_settings(UNIT)
    # SIGTERM to the main process alone: it stops its own sanitizer processes.
    assert one(settings, "KillMode") == "mixed"
    assert one(settings, "KillSignal") == "SIGTERM"
    # The service may use the grace period twice (sessions, then work in flight).
    grace = Config().service.shutdown_grace_seconds
    assert seconds(one(settings, "TimeoutStopSec")) >= 2 * grace + 15
    # ExecReload= only when `mukaika serve` handles SIGHUP (without a handler SIGHUP kills it).
    handles_hup = "SIGHUP" in (ROOT / "gateway" / "cli" / "serve.py").read_text(encoding="utf-8")
    assert ("ExecReload" in settings) == handles_hup, (
        "gateway/cli/serve.py and deploy/mukaika.service disagree about SIGHUP: add or remove "
        "ExecReload=/bin/kill -HUP $MAINPID in the unit (and the guides' reload sections)"
    )
    # No privilege at all in the unit itself; the drop-in adds exactly one capability.
    assert one(settings, "CapabilityBoundingSet") == ""
    assert one(settings, "AmbientCapabilities") == ""
    assert one(settings, "NoNewPrivileges") == "yes"
    drop_in = unit_settings(DROP_IN)
    assert one(drop_in, "AmbientCapabilities") == "CAP_NET_BIND_SERVICE"
    # The CDR sandbox calls setrlimit: @resources must not be filtered out.
    assert all("@resources" not in value for value in settings["SystemCallFilter"])
    assert one(settings, "MemoryDenyWriteExecute") == "yes"


def test_exec_start_is_a_command_line_the_cli_accepts() -> None:
    command = one(unit_settings(UNIT), "ExecStart").split()
    assert command[0] == INSTALLED_BINARY
    args = build_parser().parse_args(command[1:])
    assert args.command == "serve"
    assert args.config == Path("/etc/mukaika/mukaika.toml")


def run_mdwe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.deploy.mdwe_launch", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_w_x_restriction_is_inherited_across_exec() -> None:
    probe = run_mdwe("probe")
    if probe.returncode == UNSUPPORTED:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 or later)")
    assert probe.returncode == 0, f"W^X not inherited across exec: {probe.stderr}"


@pytest.mark.slow
def test_the_service_sanitizes_everything_without_writable_executable_memory(
    tmp_path: Path,
) -> None:
    if run_mdwe("probe").returncode == UNSUPPORTED:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 or later)")
    port = free_port()
    output = tmp_path / "serve.log"
    data_dir = tmp_path / "data"
    command = [
        sys.executable,
        "-m",
        "tests.deploy.mdwe_launch",
        "serve",
        "--demo",
        "--listen",
        f"127.0.0.1:{port}",
        "--data-dir",
        str(data_dir),
    ]
    files = {"report.docm": docm_with_vba(), "a.pdf": pdf_with_javascript(), "logo.png": png()}
    attachments = [
        ("report.docm", "application/vnd.ms-word.document.macroEnabled.12", files["report.docm"]),
        ("a.pdf", "application/pdf", files["a.pdf"]),
        ("logo.png", "image/png", files["logo.png"]),
        ("all.zip", "application/zip", zipped(files)),
    ]

    def log() -> str:
        return output.read_text(errors="replace")[-4000:] if output.exists() else ""

    with output.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
        )
    try:

        def up() -> bool | None:
            code = process.poll()
            if code == UNSUPPORTED:
                pytest.skip("this kernel has no PR_SET_MDWE")
            assert code != NOT_ENFORCED, "PR_SET_MDWE did not refuse a W+X mapping"
            assert code is None, f"mukaika serve exited with {code}\n{log()}"
            return smtp_banner(port)

        wait_for("mukaika to listen", up, 60, log)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail(
                "taro@example.com",
                ["staff@example.lg.jp"],
                japanese_html_mail("staff@example.lg.jp", attachments),
            )
        maildir_new = data_dir / "demo-maildir" / "new"
        delivered = wait_for(
            "the demo Maildir",
            lambda: sorted(maildir_new.glob("*")) or None if maildir_new.is_dir() else None,
            90,
            log,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            code = None
    assert code == 0, log()

    message = email.message_from_bytes(delivered[0].read_bytes(), policy=email.policy.default)
    names = {part.get_filename() for part in message.iter_attachments()}
    assert names == {"report.docx", "a.pdf", "logo.png", "all.zip"}
    for part in message.iter_attachments():
        if part.get_filename() == "report.docx":
            with zipfile.ZipFile(io.BytesIO(part.get_content())) as package:
                assert not any("vbaProject" in name for name in package.namelist())
    lines = (data_dir / "audit" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    # The message's line (the demo also records adding its console user).
    (record,) = [r for r in map(json.loads, lines) if r.get("event", "message") == "message"]
    assert record["verdict"] == "deliver"
    reasons = {part["reason"] for part in record["parts"]}
    assert not reasons & {"crash", "error", "timeout"}, record["parts"]
    assert {part["action"] for part in record["parts"] if part.get("filename")} == {"sanitized"}
