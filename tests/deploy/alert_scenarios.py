"""deploy/prometheus/alerts.test.yml, generated from a real worker over a real spool.

Each scenario drives the real :class:`gateway.service.worker.Worker` (its sanitizing and
delivery stages, its scheduler's report) and the real :class:`Metrics` over a spool on disk,
with the clock injected: one step is one minute. After each step the metrics exposition is
scraped and parsed, as Prometheus would every minute; those samples are promtool's input
series. Only the expectations (which alert fires when, with which text) are written by hand.
What is not real is said where it is used: the sanitizer answers like the pipeline stub
(``FakeSanitizer``: a clamd outage is its TemporaryFailure), the quarantine and audit are
in-memory, the clock probe is fed timedatectl's real answers, the scanner probe (the real
:class:`ScannerHealth`) talks to a stand-in that answers clamd's PING as clamd does, and the
store probe (the real :class:`StoreHealth`) pings a stand-in store that refuses while "down"
(a real database going away is tests/e2e/test_store_outage.py's).

Regenerate after changing alerts.yml, the metrics or a scenario (tests/deploy/
test_monitoring.py compares the file with this output)::

    .venv/bin/python -m tests.deploy.alert_scenarios > deploy/prometheus/alerts.test.yml
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from prometheus_client.parser import text_string_to_metric_families

from gateway.configuration.rules import Rule, RuleSet
from gateway.configuration.settings import DeliverySettings, ScannerSettings, WorkerSettings
from gateway.delivery.client import Deliverer
from gateway.observation.clock import ClockWatch, TimedatedProbe
from gateway.observation.metrics import Metrics
from gateway.outbound.rates import RateLimits
from gateway.processing.scanner_health import ScannerHealth
from gateway.queue.spool import Envelope, Spool, new_queue_id
from gateway.service.store_health import StoreHealth
from gateway.service.worker import Worker
from gateway.store import StoreError
from sanitizers.notice import NoticeContext
from sanitizers.policy import Policy
from sanitizers.report import PartReport, SanitizeResult
from sanitizers.vocabulary import Action, Reason
from tests.gateway.relaykit import (
    FakeAudit,
    FakeQuarantine,
    FakeSanitizer,
    Sink,
    SinkHandler,
    free_port,
)

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
TARGET = 'instance="gw:9464",job="mukaika"'
# 2026-11-02 00:00 UTC: a fixed start, so the file is the same on every run.
T0 = 1_793_577_600.0
STEP_SECONDS = 60.0
MAIL = b"From: a@example.jp\r\nSubject: test\r\n\r\nbody\r\n"
# Real answers of `timedatectl show --property=NTPSynchronized --value` (exit status 0).
TIMEDATECTL_SYNCHRONIZED = "yes\n"
TIMEDATECTL_NOT_SYNCHRONIZED = "no\n"


def alert_rules() -> dict[str, dict[str, Any]]:
    from tests.deploy.yamlsubset import load

    document = load(ALERTS.read_text(encoding="utf-8"))
    return {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]}


def used_names(alerts: set[str] | None = None) -> set[str]:
    """The mukaika_* series the rules of ``alerts`` (default: all) read; histograms excluded
    (their timings are real durations, different on every run)."""
    rules = alert_rules()
    exprs = " ".join(rules[a]["expr"] for a in (alerts if alerts is not None else rules))
    names = set(re.findall(r"\bmukaika_[a-z_]+", exprs))
    return {n for n in names if not n.endswith(("_bucket", "_sum", "_count"))}


@dataclass
class Simulation:
    """A real worker over a real spool; its clock moves only when :meth:`step` says so."""

    directory: Path
    relay_port: int
    sanitizer: FakeSanitizer = field(default_factory=FakeSanitizer)
    rules: RuleSet | None = None
    clock_answers: Callable[[int], str] | None = None
    scanner_address: str | None = None
    store: StandInStore | None = None
    now: float = T0
    minute: int = 0
    samples: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics = Metrics()
        self.spool = Spool(self.directory / "spool")
        delivery = DeliverySettings(relay_port=self.relay_port, timeout_seconds=10.0)
        self.deliverer = Deliverer(delivery)
        self.worker = Worker(
            self.spool,
            self.sanitizer,
            self.deliverer,
            settings=WorkerSettings(),
            delivery=delivery,
            quarantine=FakeQuarantine(),
            audit=FakeAudit(),
            metrics=self.metrics,
            hostname="gw.test",
            clock=lambda: self.now,
            rules=self.rules,
        )
        self.clock_watch = None
        if self.clock_answers is not None:
            answers = self.clock_answers
            probe = TimedatedProbe(run=lambda argv, timeout: (0, answers(self.minute), ""))
            self.clock_watch = ClockWatch(probe, self.metrics)
        self.scanner_health = None
        if self.scanner_address is not None:
            scanner = ScannerSettings(enabled=True, address=self.scanner_address, timeout_seconds=5)
            self.scanner_health = ScannerHealth(scanner, self.metrics)
        self.store_health = None
        if self.store is not None:
            stand_in: Any = self.store
            self.store_health = StoreHealth(stand_in, 5.0, self.metrics, lambda up: None)

    def accept(self, recipient: str = "staff@example.lg.jp") -> None:
        envelope = Envelope(
            queue_id=new_queue_id(self.now),
            mail_from="a@example.jp",
            rcpt_tos=(recipient,),
            client="192.0.2.1",
            received_at=self.now,
            size=len(MAIL),
        )
        self.spool.accept(envelope, MAIL)

    async def step(self) -> None:
        """One minute: every message that is due is worked on once (incoming: sanitizing is
        retried every worker.temporary_failure_retry_seconds, one minute by default; outgoing:
        at the envelope's next_attempt, the real backoff), then the scheduler's report and the
        clock check run as on every rescan, the scanner is probed (every
        scanner.probe_interval_seconds: 30 s, so at least once a minute), and the exposition is
        scraped."""
        for queue_id in self.spool.ids("incoming"):
            await self.worker.sanitizing.run(queue_id)
        for queue_id in self.spool.ids("outgoing"):
            if self.spool.envelope("outgoing", queue_id).next_attempt <= self.now:
                await self.worker.delivering.run(queue_id)
        self.worker.scheduler.report_depth()
        if self.clock_watch is not None:
            self.clock_watch.check()
        if self.scanner_health is not None:
            await self.scanner_health.probe()
        if self.store_health is not None:
            await self.store_health.probe()
        self.scrape()
        self.minute += 1
        self.now += STEP_SECONDS

    def scrape(self) -> None:
        names = used_names()
        text = self.metrics.render().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name not in names:
                    continue
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                series = f"{sample.name}{{{TARGET}{',' if labels else ''}{labels}}}"
                values = self.samples.setdefault(series, [])
                values.extend([float("nan")] * (self.minute - len(values)))
                values.append(sample.value)

    async def run(
        self, minutes: int, every_minute: Callable[[Simulation], None] | None = None
    ) -> Simulation:
        try:
            for _ in range(minutes):
                if every_minute is not None:
                    every_minute(self)
                await self.step()
        finally:
            await self.deliverer.close()
        return self

    def value(self, series_prefix: str, minute: int) -> float:
        (series,) = [s for s in self.samples if s.startswith(series_prefix)]
        return self.samples[series][minute]


def compress(values: list[float]) -> str:
    """promtool's notation: runs of equal steps as ``a+bxn`` (n further values); ``_`` where the
    series did not exist yet (a labelled child appears with its first event)."""
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        if math.isnan(values[i]):
            while j + 1 < len(values) and math.isnan(values[j + 1]):
                j += 1
            parts.append("_" if j == i else f"_x{j - i}")
            i = j + 1
            continue
        if j + 1 < len(values) and not math.isnan(values[j + 1]):
            step = values[j + 1] - values[j]
            while (
                j + 1 < len(values)
                and not math.isnan(values[j + 1])
                and values[j + 1] - values[j] == step
            ):
                j += 1
        else:
            step = 0.0
        start = _number(values[i])
        if j == i:
            parts.append(start)
        elif step == 0:
            parts.append(f"{start}x{j - i}")
        else:
            sign = "+" if step > 0 else "-"
            parts.append(f"{start}{sign}{_number(abs(step))}x{j - i}")
        i = j + 1
    return " ".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


# --- expectations --------------------------------------------------------------------------


def description(alert: str) -> str:
    """The alert's description as alerts.yml writes it (for alerts without a template)."""
    return str(alert_rules()[alert]["annotations"]["description"])


def fires(
    alert: str, at: str, severity: str, summary: str, descr: str | None = None, **labels: str
) -> dict[str, Any]:
    exp_labels = {"severity": severity, "instance": "gw:9464", **labels}
    if not labels:  # a "sum by" over labels of its own keeps no job label
        exp_labels["job"] = "mukaika"
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [
            {
                "exp_labels": exp_labels,
                "exp_annotations": {
                    "summary": summary,
                    "description": descr if descr is not None else description(alert),
                },
            }
        ],
    }


def silent(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


@dataclass
class Scenario:
    comment: str
    simulation: Simulation
    expectations: list[dict[str, Any]]


async def clamd_outage(directory: Path, relay_port: int) -> Scenario:
    sim = Simulation(directory, relay_port, FakeSanitizer(["temporary"] * 10_000))
    for _ in range(3):
        sim.accept()
    await sim.run(41)
    return Scenario(
        "clamd cannot answer: sanitizing is deferred every minute, mail stays incoming, "
        "nothing is delivered.",
        sim,
        [
            fires("MukaikaSanitizingDeferred", "30m", "critical",
                  "mukaika cannot sanitize: is clamd unreachable?"),
            silent("MukaikaRelayFailing", "30m"),
        ],
    )  # fmt: skip


async def relay_outage(directory: Path, relay_port: int) -> Scenario:
    """Nothing listens on the relay port: the real deliverer is refused, the real backoff
    (delivery.retry_*: 5, 10, 20, then every 30 minutes) spaces the attempts."""
    sim = Simulation(directory, relay_port)

    def mail_keeps_arriving(sim: Simulation) -> None:
        if sim.minute % 10 == 0:
            sim.accept()

    await sim.run(91, mail_keeps_arriving)
    return Scenario(
        "The LGWAN-side MTA is down: sanitized mail waits in outgoing, every attempt is "
        "deferred (the real backoff), nothing is delivered.",
        sim,
        [
            fires("MukaikaRelayFailing", "30m", "critical",
                  "mukaika cannot deliver to the LGWAN-side MTA"),
            fires("MukaikaRelayFailing", "90m", "critical",
                  "mukaika cannot deliver to the LGWAN-side MTA"),
            silent("MukaikaSanitizingDeferred", "30m"),
        ],
    )  # fmt: skip


class Busy(SinkHandler):
    """A real recording SMTP server whose mailbox ``later@`` is busy: 451 for it."""

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        if address.startswith("later@"):
            return "451 4.2.1 mailbox busy, try again later"
        return await super().handle_RCPT(server, session, envelope, address, options)


async def deferrals_while_mail_flows(directory: Path) -> Scenario:
    sink = Sink()
    sink.handler = Busy()
    await sink.start()
    sim = Simulation(directory, sink.port)

    def traffic(sim: Simulation) -> None:
        for n in range(5):
            sim.accept(f"staff{n}@example.lg.jp")
        sim.accept("later@example.lg.jp")

    try:
        await sim.run(41, traffic)
    finally:
        await sink.stop()
    return Scenario(
        "Some deferrals while mail keeps flowing: no alert.",
        sim,
        [silent("MukaikaSanitizingDeferred", "30m"), silent("MukaikaRelayFailing", "30m")],
    )


async def queue_gets_old(directory: Path, relay_port: int) -> Scenario:
    sim = Simulation(directory, relay_port)
    sim.accept()
    await sim.run(261)
    return Scenario(
        "One message waits in the queue (the LGWAN-side MTA refuses connections) and grows old.",
        sim,
        [
            silent("MukaikaQueueOld", "20m"),
            fires("MukaikaQueueOld", "40m", "warning", "mail waits in mukaika's queue for 40m 0s"),
            # Few messages: the backoff spaces the attempts (up to 30 minutes apart), so the
            # relay alert pauses between them; MukaikaQueueOld is the one that stays.
            silent("MukaikaRelayFailing", "2h"),
            silent("MukaikaQueueVeryOld", "3h"),
            fires("MukaikaQueueVeryOld", "4h10m", "critical",
                  "mail waits in mukaika's queue for 4h 10m 0s"),
        ],
    )  # fmt: skip


async def exceptions_expire(directory: Path, relay_port: int) -> Scenario:
    """Two approved exceptions (例外措置) whose expiry date has passed."""
    expired = [
        Rule.model_validate({
            "name": f"例外{n}", "recipients": [f"keiri{n}@example.lg.jp"], "exception": True,
            "approved_by": "情報政策課 2026-001", "reason": "取引先の定型書式",
            "expires": "2026-10-31", "policy": {"attachments": {"default": "keep"}},
        })
        for n in (1, 2)
    ]  # fmt: skip
    rules = RuleSet(Policy(), expired, lambda: date(2026, 11, 2))
    sim = Simulation(directory, relay_port, rules=rules)
    await sim.run(91)
    return Scenario(
        "Two exceptions (例外措置) expired: warn after an hour, not before.",
        sim,
        [
            silent("MukaikaExceptionExpired", "30m"),
            fires("MukaikaExceptionExpired", "90m", "warning",
                  "2 exception(s) (例外措置) expired on gw:9464"),
        ],
    )  # fmt: skip


async def clock_loses_sync(directory: Path, relay_port: int) -> Scenario:
    def answers(minute: int) -> str:
        return TIMEDATECTL_NOT_SYNCHRONIZED if minute < 30 else TIMEDATECTL_SYNCHRONIZED

    sim = Simulation(directory, relay_port, clock_answers=answers)
    await sim.run(61)
    return Scenario(
        "timedatectl answers NTPSynchronized=no for half an hour, then yes.",
        sim,
        [
            silent("MukaikaClockUnsynchronized", "10m"),
            fires("MukaikaClockUnsynchronized", "20m", "warning",
                  "the system clock of gw:9464 is not synchronised"),
            silent("MukaikaClockUnsynchronized", "45m"),
        ],
    )  # fmt: skip


class PongServer:
    """Answers clamd's ``zPING`` with ``PONG`` on a unix socket while started (a stand-in:
    the probe's side, ClamdClient and ScannerHealth, is the real one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.listener: socket.socket | None = None

    def start(self) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.listener.listen()
        threading.Thread(target=self._serve, args=(self.listener,), daemon=True).start()

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # stopped
            with connection:
                connection.recv(64)
                connection.sendall(b"PONG\0")

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            self.path.unlink(missing_ok=True)


async def scanner_stops_answering(directory: Path, relay_port: int) -> Scenario:
    path = directory / "clamd.sock"
    sim = Simulation(directory, relay_port, scanner_address=f"unix:{path}")  # makes directory
    clamd = PongServer(path)

    def down_from_5_to_15(sim: Simulation) -> None:
        if sim.minute in (0, 15):
            clamd.start()
        elif sim.minute == 5:
            clamd.stop()

    try:
        await sim.run(25, down_from_5_to_15)
    finally:
        clamd.stop()
    return Scenario(
        "The scanner is on; clamd answers the probes, stops answering for 10 minutes, "
        "answers again.",
        sim,
        [
            silent("MukaikaScannerDown", "4m"),
            fires("MukaikaScannerDown", "12m", "critical",
                  "mukaika's malware scanner (clamd) does not answer on gw:9464"),
            silent("MukaikaScannerDown", "20m"),
        ],
    )  # fmt: skip


class StandInStore:
    """Answers the store probe's ping unless ``down`` (a stand-in: the probe's side,
    StoreHealth and the gauge, is the real one)."""

    where = "postgresql://mukaika@db/mukaika"

    def __init__(self) -> None:
        self.down = False

    def ping(self) -> None:
        if self.down:
            raise StoreError(f"store {self.where}: connection refused")


async def store_stops_answering(directory: Path, relay_port: int) -> Scenario:
    store = StandInStore()
    sim = Simulation(directory, relay_port, store=store)

    def down_from_5_to_15(sim: Simulation) -> None:
        store.down = 5 <= sim.minute < 15

    await sim.run(25, down_from_5_to_15)
    return Scenario(
        "The store (the nodes' database) answers the probes, stops answering for 10 minutes, "
        "answers again.",
        sim,
        [
            silent("MukaikaStoreDown", "4m"),
            fires("MukaikaStoreDown", "12m", "critical",
                  "mukaika's store (database) does not answer on gw:9464"),
            silent("MukaikaStoreDown", "20m"),
        ],
    )  # fmt: skip


class CrashingPart(FakeSanitizer):
    """The pipeline's answer when a part's sanitizer crashed: the part removed (``crash``)."""

    async def run(
        self,
        untrusted_raw: bytes,
        reference: str,
        *,
        isolated: bool,
        policy: Policy | None = None,
        context: NoticeContext | None = None,
    ) -> SanitizeResult:
        result = await super().run(untrusted_raw, reference, isolated=isolated, policy=policy)
        part = PartReport(
            path="2", declared_type="application/pdf", action=Action.REMOVED, reason=Reason.CRASH
        )
        result.report.parts.append(part)
        return result


async def sanitizer_fails(directory: Path) -> Scenario:
    sink = await Sink().start()
    sim = Simulation(directory, sink.port, CrashingPart())

    def one_at_minute_3(sim: Simulation) -> None:
        if sim.minute == 3:
            sim.accept()

    try:
        await sim.run(10, one_at_minute_3)
    finally:
        await sink.stop()
    return Scenario(
        "A part removed because its sanitizer crashed; the message itself is delivered.",
        sim,
        [
            fires("MukaikaSanitizerFailures", "5m", "warning",
                  "attachments removed because sanitizing failed (crash)",
                  "1 part(s) in 30 minutes were removed because their sanitizer crashed, ran "
                  "out of time or failed. Recipients got a notice; the originals are in the "
                  "quarantine. Find them in the audit log by reason.", reason="crash"),
        ],
    )  # fmt: skip


async def mailbox_floods(directory: Path, relay_port: int) -> Scenario:
    """One mailbox sends two outbound mails a minute through the real rate limiter
    (gateway/outbound/rates.py, 60 an hour per sender), which counts each one it holds as
    the outbound stage does."""
    sim = Simulation(directory, relay_port)
    limits = RateLimits(per_sender=60, overall=0, clock=lambda: sim.now)

    def sends(sim: Simulation) -> None:
        for _ in range(2):
            scope = limits.take("yamada@city.example.lg.jp")
            if scope is not None:
                sim.metrics.rate_limited(scope)

    await sim.run(46, sends)
    return Scenario(
        "A mailbox sends like a spammer: past 60 outbound mails an hour its mail is held.",
        sim,
        [
            silent("MukaikaOutboundRateLimited", "20m"),
            fires("MukaikaOutboundRateLimited", "40m", "warning",
                  "outbound mail held by the rate limits (sender)", scope="sender"),
        ],
    )  # fmt: skip


async def all_scenarios(directory: Path) -> list[Scenario]:
    closed = free_port()  # nothing listens there: connections are refused at once
    return [
        await clamd_outage(directory / "clamd", closed),
        await relay_outage(directory / "relay", closed),
        await deferrals_while_mail_flows(directory / "flow"),
        await sanitizer_fails(directory / "crash"),
        await queue_gets_old(directory / "old", closed),
        await exceptions_expire(directory / "expired", closed),
        await clock_loses_sync(directory / "clock", closed),
        await scanner_stops_answering(directory / "scanner", closed),
        await mailbox_floods(directory / "flood", closed),
        await store_stops_answering(directory / "store", closed),
    ]


# --- the file ------------------------------------------------------------------------------


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def render(scenarios: list[Scenario]) -> str:
    out = [
        "# Unit tests of alerts.yml for Prometheus' promtool:  promtool test rules alerts.test.yml",
        "# GENERATED by tests/deploy/alert_scenarios.py: the input series are what a real worker",
        "# over a real spool exported, scraped once a simulated minute. Do not edit; regenerate:",
        "#   .venv/bin/python -m tests.deploy.alert_scenarios > deploy/prometheus/alerts.test.yml",
        "rule_files:",
        "  - alerts.yml",
        "evaluation_interval: 1m",
        "tests:",
    ]
    for scenario in scenarios:
        out += [f"  # {scenario.comment}", "  - interval: 1m", "    input_series:"]
        names = used_names({e["alertname"] for e in scenario.expectations})
        for series, values in sorted(scenario.simulation.samples.items()):
            if series.split("{")[0] not in names:
                continue
            out += [f"      - series: '{series}'", f"        values: '{compress(values)}'"]
        out.append("    alert_rule_test:")
        for expectation in scenario.expectations:
            out += [
                f"      - eval_time: {expectation['eval_time']}",
                f"        alertname: {expectation['alertname']}",
            ]
            if not expectation["exp_alerts"]:
                out.append("        exp_alerts: []")
                continue
            out.append("        exp_alerts:")
            for alert in expectation["exp_alerts"]:
                out.append("          - exp_labels:")
                out += [f"              {k}: {_q(v)}" for k, v in alert["exp_labels"].items()]
                out.append("            exp_annotations:")
                out += [f"              {k}: {_q(v)}" for k, v in alert["exp_annotations"].items()]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def generate() -> tuple[str, list[Scenario]]:
    with tempfile.TemporaryDirectory(prefix="mukaika-alerts-") as directory:
        scenarios = asyncio.run(all_scenarios(Path(directory)))
    return render(scenarios), scenarios


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)  # the worker's warnings are the scenario itself
    sys.stdout.write(generate()[0])
