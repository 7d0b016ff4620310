"""The files of deploy/ and config/examples/ against the code they configure.

* Every example configuration (and the container's) loads with the real loader, so a renamed
  or removed key breaks this test instead of an operator's start.
* The examples, the systemd unit, the logrotate file, the Postfix snippets and the container
  build agree on paths, ports and limits.
* logrotate really rotates the audit log while an :class:`AuditLog` keeps writing: no line is
  lost, none lands in the wrong file, and no copytruncate or signal is needed.
* The container build: its COPY sources exist and build a wheel with the templates and the
  ``mukaika`` command; its HEALTHCHECK command passes against a running gateway.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli.exit_codes import ExitCode
from gateway.configuration.config import Config, load_config
from gateway.evidence.audit import AuditLog
from gateway.evidence.quarantine import QuarantineNotFoundError
from tests.deploy.mails import free_port, smtp_banner, wait_for
from tests.storekit import quarantine_in
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.toml"))
CONTAINERFILE = DEPLOY / "Containerfile"


def unit_value(key: str) -> str:
    for line in (DEPLOY / "mukaika.service").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{key}="):
            return line.partition("=")[2].strip()
    raise AssertionError(f"{key} not in the unit")


def postfix_settings(name: str) -> dict[str, str]:
    """``name = value`` lines of a main.cf snippet (comments skipped)."""
    settings: dict[str, str] = {}
    for line in (DEPLOY / "postfix" / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def master_services() -> dict[str, list[str]]:
    """master.cf snippet: service name -> its fields (continuation lines skipped)."""
    services: dict[str, list[str]] = {}
    for line in (DEPLOY / "postfix" / "master.cf.snippet").read_text("utf-8").splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            fields = line.split()
            services[fields[0]] = fields
    return services


def test_there_are_examples_for_both_layouts() -> None:
    assert {p.name for p in EXAMPLES} >= {"mx-relay.toml", "postfix-content-filter.toml"}


@pytest.mark.parametrize("path", [*EXAMPLES, DEPLOY / "container.toml"], ids=lambda p: p.name)
def test_every_example_loads_with_the_real_loader(path: Path) -> None:
    config = load_config(path)
    assert isinstance(config, Config)
    # Never an open relay, and the names of the data and state directories are absolute.
    assert Path(config.service.data_dir).is_absolute()
    if path.name != "container.toml":
        assert config.smtp.accept_domains


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_fit_the_systemd_unit_and_logrotate(path: Path) -> None:
    config = load_config(path)
    assert config.service.data_dir == "/var/lib/" + unit_value("StateDirectory")
    audit = config.audit.resolve_path(Path(config.service.data_dir))
    assert audit is not None
    assert audit.parent == Path("/var/log") / unit_value("LogsDirectory")
    assert f"{audit} {{" in (DEPLOY / "logrotate.d" / "mukaika").read_text(encoding="utf-8")
    stop = float(unit_value("TimeoutStopSec").rstrip("s"))
    assert stop >= 2 * config.service.shutdown_grace_seconds + 15
    # Unprivileged port: the unit grants no capability (port 25 arrives by redirect).
    assert config.smtp.listen_port >= 1024


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_guides_configuration_check_accepts_the_examples(path: Path, tmp_path: Path) -> None:
    """GUIDE section 4: `mukaika sanitize --config FILE -o /dev/null < /dev/null` validates
    the whole file without starting anything: 0 when valid, 78 with every error named."""
    check = [sys.executable, "-m", "gateway.cli", "sanitize", "--config"]
    good = subprocess.run(
        [*check, str(path), "-o", os.devnull],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
        cwd=ROOT,
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text(
        path.read_text(encoding="utf-8").replace("listen_port", "listen_prot"), encoding="utf-8"
    )
    bad = subprocess.run(
        [*check, str(broken), "-o", os.devnull],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
        cwd=ROOT,
    )  # fmt: skip
    assert bad.returncode == ExitCode.CONFIG
    assert "smtp.listen_prot: unknown key" in bad.stderr


def test_the_unit_does_not_restart_a_start_that_cannot_work() -> None:
    """serve exits ExitCode.CONFIG for a configuration that cannot work (tests/gateway/
    test_config_files.py) and ExitCode.STORE_SCHEMA for a store it cannot use (tests/gateway/
    store); restarting every 5 s would only fill the journal."""
    assert unit_value("Restart") == "on-failure"
    prevented = unit_value("RestartPreventExitStatus").split()
    assert str(int(ExitCode.CONFIG)) in prevented
    assert str(int(ExitCode.STORE_SCHEMA)) in prevented
    assert "1" not in prevented  # e.g. the port still in use: a restart can work


def test_quarantine_purge_of_the_timer_runs_with_an_example(tmp_path: Path) -> None:
    """The command of deploy/mukaika-quarantine-purge.service, on an example's settings."""
    text = (ROOT / "config" / "examples" / "mx-relay.toml").read_text(encoding="utf-8")
    config = tmp_path / "mukaika.toml"
    config.write_text(text.replace('"/var/lib/mukaika"', json.dumps(str(tmp_path))), "utf-8")
    settings = load_config(config)
    assert settings.service.data_dir == str(tmp_path)
    received = datetime(2026, 1, 5, tzinfo=UTC)
    with quarantine_in(settings.quarantine.resolve_directory(tmp_path)) as quarantine:
        stored = quarantine.store(
            "q1", b"Subject: x\r\n\r\nbody\r\n", client="192.0.2.1", helo="mx.example",
            mail_from="a@example.com", rcpt_to=["staff@city.example.lg.jp"], received_at=received,
        )  # fmt: skip
    purge = [sys.executable, "-m", "gateway.cli", "quarantine", "purge", "--config", str(config)]
    # The unit's command line, as the timer runs it (nothing is old enough yet) ...
    result = subprocess.run(
        [*purge, "--now", (received + timedelta(days=89)).isoformat()],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
        cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with quarantine_in(settings.quarantine.resolve_directory(tmp_path)) as quarantine:
        assert quarantine.get(stored).id == stored
    # ... and after the example's retention (90 days) the original is gone.
    result = subprocess.run(
        [*purge, "--now", (received + timedelta(days=91)).isoformat()],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
        cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with (
        quarantine_in(settings.quarantine.resolve_directory(tmp_path)) as quarantine,
        pytest.raises(QuarantineNotFoundError),
    ):
        quarantine.get(stored)


def test_content_filter_example_matches_the_postfix_snippets() -> None:
    config = load_config(ROOT / "config" / "examples" / "postfix-content-filter.toml")
    main_cf = postfix_settings("main.cf.snippet")
    services = master_services()
    # Postfix -> mukaika: the content_filter's next hop is mukaika's listener, on loopback.
    transport, _, nexthop = main_cf["content_filter"].partition(":")
    assert nexthop == f"[{config.smtp.listen_host}]:{config.smtp.listen_port}"
    assert config.smtp.listen_host == "127.0.0.1"
    assert services[transport][1:3] == ["unix", "-"]
    assert services[transport][-1] == "smtp"
    # mukaika -> Postfix: the return smtpd, and notices to senders the same way.
    return_service = f"{config.delivery.relay_host}:{config.delivery.relay_port}"
    assert services[return_service][1] == "inet"
    assert services[return_service][-1] == "smtpd"
    assert (config.delivery.dsn_relay_host, config.delivery.dsn_relay_port) == (
        config.delivery.relay_host,
        config.delivery.relay_port,
    )
    # Limits: whatever Postfix accepts and hands over, mukaika accepts too.
    assert int(main_cf["message_size_limit"]) <= config.smtp.max_message_bytes
    assert int(main_cf[f"{transport}_destination_recipient_limit"]) <= config.smtp.max_recipients
    assert int(services[transport][6]) <= config.smtp.max_connections_per_client


def test_return_smtpd_turns_the_content_filter_off() -> None:
    text = (DEPLOY / "postfix" / "master.cf.snippet").read_text(encoding="utf-8")
    block = text.split("127.0.0.1:10026", 1)[1]
    assert re.search(r"^\s+-o content_filter=$", block, re.MULTILINE)
    assert "-o smtpd_relay_restrictions=permit_mynetworks,reject" in block


def logrotate_for(path: Path, tmp_path: Path) -> Path:
    """deploy/logrotate.d/mukaika for ``path``, owned by whoever runs the test."""
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    text = (DEPLOY / "logrotate.d" / "mukaika").read_text(encoding="utf-8")
    text = text.replace("/var/log/mukaika/audit.jsonl", str(path))
    text = text.replace("mukaika mukaika", f"{user} {group}")
    config = tmp_path / "logrotate.conf"
    config.write_text(text, encoding="utf-8")
    return config


def test_logrotate_rotates_the_audit_log_under_a_writing_service(tmp_path: Path) -> None:
    logrotate = require_tool("logrotate", debian_package="logrotate")
    logs = tmp_path / "log"
    logs.mkdir(mode=0o750)
    path = logs / "audit.jsonl"
    config = logrotate_for(path, tmp_path)
    with AuditLog(path) as audit:
        audit.write({"queue_id": "before"})
        result = subprocess.run(
            [logrotate, "--force", "--state", str(tmp_path / "state"), str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        audit.write({"queue_id": "after"})
    rotated = sorted(p for p in logs.iterdir() if p != path)
    assert len(rotated) == 1
    assert re.fullmatch(r"audit\.jsonl-\d{8}", rotated[0].name)  # delaycompress: not yet .gz

    def ids(file: Path) -> list[str]:
        return [json.loads(line)["queue_id"] for line in file.read_text("utf-8").splitlines()]

    assert ids(rotated[0]) == ["before"]
    assert ids(path) == ["after"]
    assert path.stat().st_mode & 0o777 == 0o640


def containerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    logical = ""
    for line in CONTAINERFILE.read_text(encoding="utf-8").splitlines():
        if not logical and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, rest = logical.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        logical = ""
    assert not logical, "a continuation line runs off the end"
    return instructions


def test_containerfile_is_well_formed_and_non_root() -> None:
    instructions = containerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    known = {
        "FROM", "RUN", "COPY", "ENV", "USER", "WORKDIR", "VOLUME", "EXPOSE",
        "HEALTHCHECK", "STOPSIGNAL", "ENTRYPOINT", "CMD", "ARG", "LABEL",
    }  # fmt: skip
    assert set(keywords) <= known
    assert keywords[0] == "FROM"
    base = instructions[0][1]
    match = re.search(r"python:(3\.\d+)-slim", base)
    assert match
    assert tuple(map(int, match[1].split("."))) >= (3, 11)
    assert "libmagic1" in " ".join(args for keyword, args in instructions if keyword == "RUN")
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users == ["10025:10025"]  # the fixed uid:gid the RUN line gives user mukaika
    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert "--gid 10025 mukaika" in runs
    assert "--uid 10025 --gid mukaika" in runs
    # Everything after USER runs unprivileged; the service starts after it.
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    config = load_config(DEPLOY / "container.toml")
    volumes = json.loads(dict(instructions)["VOLUME"])
    assert volumes == [config.service.data_dir]
    exposed = {int(port) for port in dict(instructions)["EXPOSE"].split()}
    assert exposed == {config.smtp.listen_port, config.metrics.port}
    assert json.loads(dict(instructions)["ENTRYPOINT"]) == ["/opt/mukaika/bin/mukaika"]
    assert json.loads(dict(instructions)["CMD"]) == [
        "serve",
        "--config",
        "/etc/mukaika/mukaika.toml",
    ]
    assert dict(instructions)["STOPSIGNAL"] == "SIGTERM"


def test_every_documented_build_keeps_the_healthcheck() -> None:
    """podman and buildah build the OCI format by default, which has no HEALTHCHECK: they drop
    it with only a warning. Every build command shown must ask for the docker format."""
    assert "HEALTHCHECK" in dict(containerfile_instructions())
    documents = [CONTAINERFILE, DEPLOY / "GUIDE.en.md", DEPLOY / "GUIDE.ja.md", ROOT / "README.md"]
    builds = [
        line
        for document in documents
        for line in document.read_text(encoding="utf-8").splitlines()
        if re.search(r"\b(podman|buildah) (build|bud)\b", line)
    ]
    assert builds
    for line in builds:
        assert "--format docker" in line, line


def test_hadolint_finds_nothing() -> None:
    hadolint = require_tool("hadolint")
    result = subprocess.run(
        [hadolint, str(CONTAINERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_container_copies_exist_and_build_a_complete_package(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for keyword, args in containerfile_instructions():
        if keyword != "COPY":
            continue
        *sources, destination = args.split()
        for source in sources:
            src = ROOT / source
            assert src.exists(), f"COPY {source}: not in the repository"
            if not destination.startswith("/tmp/mukaika-src/"):
                continue  # configuration and documentation, not the package
            rel = destination.removeprefix("/tmp/mukaika-src/")
            dest = context / rel / src.name if destination.endswith("/") else context / rel
            if src.is_dir():
                shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, dest)
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        # As in the image: pip builds it with the build backend pyproject.toml asks for.
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(wheels), str(context)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (wheel,) = wheels.glob("mukaika-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "mukaika = gateway.cli:main" in archive.read(entry_points).decode()
    assert {"sanitizers/templates/notice_ja.txt", "gateway/service/assembly.py"} <= names


@pytest.mark.slow
def test_container_healthcheck_passes_against_a_running_gateway(tmp_path: Path) -> None:
    args = dict(containerfile_instructions())["HEALTHCHECK"]
    command = json.loads(args.split(" CMD ", 1)[1])
    assert command[0] == "/opt/mukaika/bin/python"
    port = free_port()
    code = command[-1].replace("2525", str(port))
    assert code != command[-1], "the healthcheck no longer probes port 2525"
    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(DEPLOY / "container.toml"),
         "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data"),
         "--metrics", "127.0.0.1:0"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def up() -> bool | None:
            assert serve.poll() is None, log_path.read_text(errors="replace")
            return smtp_banner(port)

        wait_for("the gateway to listen", up, 60, lambda: log_path.read_text(errors="replace"))
        check = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
        )
        assert check.returncode == 0, check.stderr
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait(timeout=10)
        log.close()
    failed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert failed.returncode != 0  # nothing listens any more: unhealthy
