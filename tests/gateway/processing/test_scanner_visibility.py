"""What operators see about the malware scan: off is said, not silent; down is a warning,
a metric and the deferred mail's last error."""

from __future__ import annotations

import gc
import logging
import tomllib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from gateway.cli import main
from gateway.configuration.config import Config, load_config
from gateway.evidence.audit import audit_record
from gateway.observation.metrics import Metrics
from gateway.processing.sanitize_task import sanitize_scanned, task_for
from gateway.service.assembly import Gateway, Parts
from sanitizers.policy import Policy
from sanitizers.vocabulary import Reason
from tests.gateway.relaykit import (
    CountingMetrics,
    FakeAudit,
    FakeQuarantine,
    Sink,
    make_config,
    wait_until,
)
from tests.paths import ROOT


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    yield
    gc.collect()


def mail_with_file() -> bytes:
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["To"] = "u@example.lg.jp"
    message["Subject"] = "with a file"
    message.set_content("see attached\n")
    message.add_attachment(b"plain notes\n", maintype="text", subtype="plain", filename="a.txt")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def with_scanner(base: Config, **scanner: object) -> Config:
    data = base.model_dump(mode="python")
    data["scanner"] = {"enabled": True, **scanner}
    return Config.model_validate(data)


# --- scanner off: the report and the audit line say so -----------------------------------------


def test_scanner_off_marks_every_file_not_scanned_in_report_and_audit() -> None:
    task = task_for(Config().scanner)
    result = task(mail_with_file(), Policy(), "ref")
    files = [part for part in result.report.parts if part.kind is not None]
    others = [part for part in result.report.parts if part.kind is None]
    assert files
    assert others
    assert all(Reason.NOT_SCANNED in part.findings for part in files)
    assert not any(Reason.NOT_SCANNED in part.findings for part in others)
    record = audit_record(
        queue_id="q", client="", helo="", mail_from="", rcpt_to=[], report=result.report, state="x"
    )
    assert "not_scanned" in record["reasons"]
    assert [p.get("findings") for p in record["parts"] if p["kind"]] == [["not_scanned"]]


def test_scanned_files_are_not_marked(clamd_socket: Path) -> None:
    scanner = with_scanner(Config(), address=f"unix:{clamd_socket}").scanner
    result = sanitize_scanned(mail_with_file(), Policy(), "ref", scanner=scanner)
    assert [p for p in result.report.parts if p.kind is not None]
    assert Reason.NOT_SCANNED not in result.report.reason_codes()


# --- check-config warns; the exit code stays -----------------------------------------------------


def test_check_config_warns_when_the_scanner_is_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    off = tmp_path / "off.toml"
    off.write_text("[smtp]\nhostname = 'gw'\n", encoding="utf-8")
    assert main(["check-config", "--config", str(off), "-q"]) == 0
    _, err = capsys.readouterr()
    assert err.startswith("warning: scanner.enabled = false")
    assert "対策基準 6(4)①イ" in err
    on = tmp_path / "on.toml"
    on.write_text("[scanner]\nenabled = true\n", encoding="utf-8")
    assert main(["check-config", "--config", str(on), "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_demo_keeps_the_scanner_off_and_production_examples_turn_it_on() -> None:
    assert load_config(None).scanner.enabled is False  # the demo runs on the defaults
    production = [*sorted((ROOT / "config" / "examples").glob("*.toml"))]
    production.append(ROOT / "deploy" / "container.toml")
    for path in production:
        assert tomllib.loads(path.read_text(encoding="utf-8"))["scanner"]["enabled"] is True, path


# --- scanner on but unreachable: warning, metric, last error -------------------------------------


async def test_unreachable_scanner_warns_at_start_sets_the_metric_and_explains_the_deferral(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mukaika.scanner")
    sink = await Sink().start()
    address = f"unix:{tmp_path}/no-clamd.sock"
    config = with_scanner(make_config(tmp_path / "data", sink.port), address=address)
    metrics = CountingMetrics()
    gateway = Gateway(
        config, Parts(quarantine=FakeQuarantine(), audit=FakeAudit(), metrics=metrics)
    )
    try:
        _, port = await gateway.start()
        await wait_until(lambda: metrics.scanner_up == [False], within=30)
        # Only the scanner's own records: the clock probe may warn too on a host without timedated.
        (warning,) = [r.getMessage() for r in caplog.records if r.name == "mukaika.scanner"]
        assert "scanner enabled but unusable" in warning
        assert address in warning
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        async with client:
            await client.sendmail("a@example.com", ["u@example.lg.jp"], mail_with_file())
        await wait_until(lambda: metrics.counts["deferred"] >= 1, within=30)
        (queue_id,) = gateway.spool.ids("incoming")
        last_error = gateway.spool.envelope("incoming", queue_id).last_error
        assert f"clamd at {address} unreachable" in last_error
        assert sink.messages == []
    finally:
        await gateway.stop()
        await sink.stop()


async def test_reachable_scanner_is_up(tmp_path: Path, clamd_socket: Path) -> None:
    sink = await Sink().start()
    config = with_scanner(make_config(tmp_path / "data", sink.port), address=f"unix:{clamd_socket}")
    metrics = CountingMetrics()
    gateway = Gateway(
        config, Parts(quarantine=FakeQuarantine(), audit=FakeAudit(), metrics=metrics)
    )
    try:
        await gateway.start()
        await wait_until(lambda: metrics.scanner_up == [True], within=30)
    finally:
        await gateway.stop()
        await sink.stop()


def test_scanner_up_series_exists_only_once_probed() -> None:
    metrics = Metrics()
    assert b"mukaika_scanner_up" not in metrics.render()  # scanner off: no series, no alert
    metrics.set_scanner_up(False)
    assert b"mukaika_scanner_up 0.0" in metrics.render()
    metrics.set_scanner_up(True)
    assert b"mukaika_scanner_up 1.0" in metrics.render()
