"""Whether the malware scanner answers: probed at start and then periodically.

Intent: with the scanner on and clamd down or unreachable, every message with an attachment is
deferred (never passed unscanned). Operators must learn that from a warning at start, a metric
and an alert, not from a queue that slowly grows. So while the scanner is enabled, clamd is
sent a PING at start and every ``scanner.probe_interval_seconds``; each answer sets
``mukaika_scanner_up`` (1 answered, 0 not), and each change is logged, a failure as a warning
with the reason (the same reason the deferred mail's last error gives).

Threat model: the probe is a fixed command to a configured loopback or unix-socket address; a
hung clamd costs at most ``scanner.timeout_seconds`` per probe, in a thread, never the loop.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.configuration.settings import ScannerSettings
from gateway.observation.ports import MetricsPort
from gateway.processing.scanner import ClamdClient
from sanitizers.errors import TemporaryFailure

log = logging.getLogger("mukaika.scanner")


class ScannerHealth:
    """Probes clamd with PING and reports the result as a gauge and in the log."""

    def __init__(self, settings: ScannerSettings, metrics: MetricsPort) -> None:
        self.settings = settings
        self.metrics = metrics
        self.client = ClamdClient(settings.address, settings.timeout_seconds)
        self.up: bool | None = None  # unknown until the first probe

    def _ping(self) -> str:
        """Empty when clamd answered PONG, else why not."""
        try:
            return "" if self.client.ping() else f"clamd at {self.settings.address}: no PONG"
        except TemporaryFailure as exc:
            return str(exc)

    async def probe(self) -> bool:
        problem = await asyncio.to_thread(self._ping)
        up = not problem
        self.metrics.set_scanner_up(up)
        if up and self.up is not True:
            log.info("scanner: clamd at %s answers", self.settings.address)
        elif not up and self.up is not False:
            log.warning(
                "scanner enabled but unusable (%s): mail with attachments is deferred, "
                "never passed unscanned, until clamd answers",
                problem,
            )
        self.up = up
        return up

    async def run(self) -> None:
        """Probe now and then every ``probe_interval_seconds``, until cancelled."""
        while True:
            await self.probe()
            await asyncio.sleep(self.settings.probe_interval_seconds)
