"""This node's clock against the database server's: checked before serve listens, then again.

Intent: with several nodes, the audit lines, quarantine times and logs of all of them are one
record, and a record is evidence only if the clocks that stamped it agree. The PostgreSQL
server's clock is the reference every node can read. At start, before the port opens, serve
measures the offset (the database's clock minus this node's, from the reading with the
shortest round trip); beyond ``node.max_clock_offset_seconds`` it refuses to start
(:class:`~gateway.store.ClockOffsetError`, exit 80) with both clocks named. Every
``node.clock_check_interval_seconds`` it measures again; a larger offset then is logged as an
error (the node keeps relaying: stopping mail would not fix the clock). Each measure is an audit
line (event ``node``, ``clock_offset_seconds``), so the node's offset is in its audit stream.
On SQLite the database's clock is this machine's: nothing to compare, no line.

Threat model: the reading is one fixed query on the operator's database; nothing from mail.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.configuration.settings import NodeSettings
from gateway.evidence.ports import AuditPort
from gateway.store import ClockOffsetError, Store, StoreError
from sanitizers.vocabulary import AuditEvent

log = logging.getLogger("mukaika.node")


class NodeClock:
    """Measures this node's clock against the store's and records each measure."""

    def __init__(self, store: Store, settings: NodeSettings, node: str, audit: AuditPort) -> None:
        self.store = store
        self.settings = settings
        self.node = node
        self.audit = audit

    def measure(self, outcome: str) -> float | None:
        """The offset in seconds (None on SQLite), written to the audit log."""
        offset = self.store.clock_offset()
        if offset is not None:
            self.audit.write(
                {
                    "event": AuditEvent.NODE,
                    "outcome": outcome,
                    "clock_offset_seconds": round(offset, 6),
                }
            )
        return offset

    def beyond(self, offset: float | None) -> bool:
        return offset is not None and abs(offset) > self.settings.max_clock_offset_seconds

    def describe(self, offset: float) -> str:
        ahead = "ahead of" if offset > 0 else "behind"
        return (
            f"the database's clock ({self.store.where}) is {abs(offset):.3f}s {ahead} this "
            f"node's ({self.node}); node.max_clock_offset_seconds is "
            f"{self.settings.max_clock_offset_seconds:g}: synchronise the clocks (NTP)"
        )

    def check_at_start(self) -> float | None:
        """Measure once; :class:`ClockOffsetError` beyond the bound (serve does not start)."""
        offset = self.measure("started")
        if offset is not None and self.beyond(offset):
            log.error("clock check failed: %s", self.describe(offset))
            raise ClockOffsetError(self.describe(offset))
        return offset

    async def run_forever(self) -> None:
        """Measure every ``clock_check_interval_seconds`` until cancelled; log an error beyond
        the bound, and a store fault as a warning (the store's health is watched elsewhere)."""
        while True:
            await asyncio.sleep(self.settings.clock_check_interval_seconds)
            try:
                offset = await asyncio.to_thread(self.measure, "checked")
            except StoreError as exc:
                log.warning("clock check skipped: %s", exc)
                continue
            if offset is not None and self.beyond(offset):
                log.error("clock check: %s", self.describe(offset))
