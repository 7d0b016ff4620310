"""Whether the system clock is synchronised: the probe, the watch, the gauge, the service.

The probe's parsing is tested on timedatectl's real outputs (its two answers, and what it
prints here, where no systemd runs) and on hostile ones; the source of truth is injected
through the constructor everywhere else, so nothing depends on this machine's clock.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.observation.clock import (
    COMMAND,
    MAX_DETAIL_CHARS,
    ClockStatus,
    ClockWatch,
    TimedatedProbe,
    parse_timedatectl,
)
from gateway.observation.metrics import Metrics
from gateway.service.assembly import Gateway, Parts
from tests.gateway.relaykit import FakeSanitizer, Sink, make_config, wait_until
from tests.tools import require_tool

# What `timedatectl show --property=NTPSynchronized --value` prints on a host without a running
# systemd (this test machine, a container): exit status 1.
NO_SYSTEMD = (
    "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
    "Failed to connect to bus: Host is down\n"
)


@pytest.mark.parametrize(
    ("returncode", "stdout", "stderr", "synchronized", "detail"),
    [
        (0, "yes\n", "", True, "timedatectl: NTPSynchronized=yes"),
        (0, "no\n", "", False, "timedatectl: NTPSynchronized=no"),
        (1, "", NO_SYSTEMD, False, "timedatectl failed (1): System has not been booted"),
        (1, "", "Failed to connect to bus: No such file or directory\n", False, "No such file"),
        (0, "", "", False, "unexpected answer ''"),
        (0, "Yes\n", "", False, "unexpected answer 'Yes'"),  # only the exact answer counts
        (0, "yes\nyes\n", "", False, "unexpected answer"),
        (0, "1\n", "", False, "unexpected answer '1'"),
    ],
)
def test_only_a_plain_yes_is_synchronised(
    returncode: int, stdout: str, stderr: str, synchronized: bool, detail: str
) -> None:
    status = parse_timedatectl(returncode, stdout, stderr)
    assert status.synchronized is synchronized
    assert detail in status.detail


def test_what_timedatectl_says_reaches_the_log_bounded_and_printable() -> None:
    hostile = "\x1b[2J\x1b]0;owned\x07" + "x" * 10_000 + "\r\nfake log line\u2028"
    for status in (parse_timedatectl(1, "", hostile), parse_timedatectl(0, hostile, "")):
        assert not status.synchronized
        assert all(c.isprintable() for c in status.detail)
        assert len(status.detail) <= MAX_DETAIL_CHARS + 40


def runner(result: tuple[int, str, str] | BaseException) -> object:
    def run(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        assert tuple(argv) == COMMAND
        if isinstance(result, BaseException):
            raise result
        return result

    return run


@pytest.mark.parametrize(
    ("result", "synchronized", "detail"),
    [
        ((0, "yes\n", ""), True, "NTPSynchronized=yes"),
        (FileNotFoundError(2, "No such file or directory"), False, "cannot run: No such file"),
        (PermissionError(13, "Permission denied"), False, "cannot run: Permission denied"),
        (subprocess.TimeoutExpired(list(COMMAND), 5.0), False, "no answer within 5 s"),
    ],
    ids=["yes", "missing", "not executable", "timeout"],
)
def test_the_probe_fails_closed(
    result: tuple[int, str, str] | BaseException, synchronized: bool, detail: str
) -> None:
    status = TimedatedProbe(run=runner(result))()  # type: ignore[arg-type]
    assert status.synchronized is synchronized
    assert detail in status.detail


def test_the_real_probe_reads_the_real_timedatectl() -> None:
    """On this machine timedatectl cannot reach timedated (no systemd): not synchronised, and
    the log says timedatectl's own words. Where systemd runs it answers yes or no."""
    require_tool("timedatectl", debian_package="systemd")
    expected = subprocess.run(list(COMMAND), capture_output=True, text=True, check=False)
    status = TimedatedProbe()()
    assert status == parse_timedatectl(expected.returncode, expected.stdout, expected.stderr)
    assert status.detail.startswith("timedatectl")


class Answers:
    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)

    def __call__(self) -> ClockStatus:
        synchronized = self.answers.pop(0)
        return ClockStatus(synchronized, f"NTPSynchronized={'yes' if synchronized else 'no'}")


def gauge(metrics: Metrics) -> str:
    lines = metrics.render().decode().splitlines()
    (line,) = [n for n in lines if n.startswith("mukaika_clock_synchronized ")]
    return line.split()[1]


def test_the_watch_sets_the_gauge_and_logs_each_change_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    assert gauge(metrics) == "0.0"  # unknown until asked: not synchronised
    watch = ClockWatch(Answers(False, False, True, True, False), metrics)
    seen = []
    with caplog.at_level(logging.INFO, logger="mukaika.clock"):
        for _ in range(5):
            watch.check()
            seen.append(gauge(metrics))
    assert seen == ["0.0", "0.0", "1.0", "1.0", "0.0"]
    messages = [(r.levelname, r.getMessage().split(" (")[0]) for r in caplog.records]
    assert messages == [
        ("WARNING", "system clock NOT synchronised: times in the audit log and quarantine may "
                    "be wrong"),
        ("INFO", "system clock synchronised"),
        ("WARNING", "system clock NOT synchronised: times in the audit log and quarantine may "
                    "be wrong"),
    ]  # fmt: skip


async def test_the_running_service_exports_the_clock(tmp_path: Path) -> None:
    sink = await Sink().start()
    metrics = Metrics()
    gateway = Gateway(
        make_config(tmp_path / "data", sink.port),
        Parts(sanitizer=FakeSanitizer(), metrics=metrics, clock=Answers(True)),
    )
    try:
        await gateway.start()
        await wait_until(lambda: gauge(metrics) == "1.0")
    finally:
        await gateway.stop()
        await sink.stop()
