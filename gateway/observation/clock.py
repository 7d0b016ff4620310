"""Is the system clock synchronised? The answer behind ``mukaika_clock_synchronized``.

Intent: the policies ask for correct, synchronised time on servers that keep important logs
(7(1)イ); the audit log, the quarantine and every notice carry this host's time. The kernel
knows whether NTP (systemd-timesyncd, chrony, ntpd) has synchronised the clock, but asking it
takes ``adjtimex``, and the shipped unit's ``ProtectClock=yes`` forbids that system call
whether it reads or sets. So :class:`TimedatedProbe` asks systemd-timedated instead, over
D-Bus through ``timedatectl show``: an unprivileged read of the same kernel flag, allowed
under the unit. :class:`ClockWatch` asks every ``CHECK_INTERVAL_SECONDS``, sets the gauge and
logs each change.

Threat model: the answer comes from a local system service, but it is parsed strictly: only
``yes`` counts as synchronised. No answer, another answer, a missing ``timedatectl``, a time-
out (``PROBE_TIMEOUT_SECONDS``) all count as not synchronised: an alert a person looks at,
never silence. Text from the command is cut to ``MAX_DETAIL_CHARS`` and stripped of control
characters before it reaches the log.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from sanitizers.safetext import log_text

log = logging.getLogger("mukaika.clock")

COMMAND: Final = ("timedatectl", "show", "--property=NTPSynchronized", "--value")
PROBE_TIMEOUT_SECONDS: Final = 5.0
CHECK_INTERVAL_SECONDS: Final = 60.0
MAX_DETAIL_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class ClockStatus:
    """Whether the clock is synchronised, and the evidence in a few words (for the log)."""

    synchronized: bool
    detail: str


# Runs a command: (exit status, standard output, standard error). Raises OSError when the
# program cannot be started and subprocess.TimeoutExpired after ``timeout`` seconds.
Runner = Callable[[Sequence[str], float], tuple[int, str, str]]


def run_command(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
    result = subprocess.run(  # noqa: S603 - the fixed COMMAND; nothing from outside
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def _printable(text: str) -> str:
    return log_text(" ".join(text.split()), MAX_DETAIL_CHARS)


def parse_timedatectl(returncode: int, stdout: str, stderr: str) -> ClockStatus:
    """The clock's state from ``timedatectl show --property=NTPSynchronized --value``."""
    if returncode != 0:
        return ClockStatus(False, f"timedatectl failed ({returncode}): {_printable(stderr)}")
    answer = stdout.strip()
    if answer in ("yes", "no"):
        return ClockStatus(answer == "yes", f"timedatectl: NTPSynchronized={answer}")
    return ClockStatus(False, f"timedatectl: unexpected answer {_printable(answer)!r}")


class Probe(Protocol):
    def __call__(self) -> ClockStatus: ...


class TimedatedProbe:
    """Asks systemd-timedated (through ``timedatectl``) whether NTP synchronised the clock."""

    def __init__(self, run: Runner = run_command, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
        self._run = run
        self._timeout = timeout

    def __call__(self) -> ClockStatus:
        try:
            returncode, stdout, stderr = self._run(COMMAND, self._timeout)
        except subprocess.TimeoutExpired:
            return ClockStatus(False, f"timedatectl: no answer within {self._timeout:g} s")
        except OSError as exc:
            return ClockStatus(False, f"timedatectl: cannot run: {exc.strerror or exc}")
        return parse_timedatectl(returncode, stdout, stderr)


class ClockSink(Protocol):
    def set_clock_synchronized(self, synchronized: bool) -> None: ...


class ClockWatch:
    """Sets the gauge from ``probe`` and logs when the answer changes."""

    def __init__(self, probe: Probe, metrics: ClockSink) -> None:
        self.probe = probe
        self.metrics = metrics
        self._last: bool | None = None

    def check(self) -> ClockStatus:
        """Ask once (blocking: call it in a thread from the event loop)."""
        status = self.probe()
        self.metrics.set_clock_synchronized(status.synchronized)
        if status.synchronized != self._last:
            if status.synchronized:
                log.info("system clock synchronised (%s)", status.detail)
            else:
                log.warning(
                    "system clock NOT synchronised: times in the audit log and quarantine "
                    "may be wrong (%s)",
                    status.detail,
                )
            self._last = status.synchronized
        return status

    async def run_forever(self, interval: float = CHECK_INTERVAL_SECONDS) -> None:
        while True:
            await asyncio.to_thread(self.check)
            await asyncio.sleep(interval)
