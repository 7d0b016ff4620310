"""Whether the store answers: probed at start and then periodically, and told to the receivers.

Intent: new mail is answered ``250`` only while it can be recorded. The quarantine index, the
held-mail workflow and the audit index live in the store; on PostgreSQL the store is another
machine that can go away. So the gateway probes it every ``store.probe_interval_seconds``
(one trivial query through the same pool the work uses); while it does not answer, every
receiver answers new transactions ``451 4.3.0`` at MAIL and at the end of DATA
(:mod:`gateway.receiving.smtp`), ``mukaika_store_up`` is 0 and the change is logged. Mail
already spooled goes on: sanitized mail is delivered (its delivery state is recorded once the
store is back, :mod:`gateway.delivery.recording`), and mail not yet quarantined waits in the
spool and is retried. When the store answers again the receivers accept again; no operator
acts. A message accepted in the moment between the store going away and the next probe is in
the spool (fsynced before its ``250``): it is recorded when the store returns, never lost.

Threat model: the probe is a fixed query on the operator's URL; a hung database costs at most
``store.connect_timeout_seconds`` (or ``pool_timeout_seconds``) per probe, in a thread, never
the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.observation.ports import MetricsPort
from gateway.store import Store, StoreError

log = logging.getLogger("mukaika.store")


class StoreHealth:
    """Probes the store; reports each result as a gauge and each change to ``on_change``."""

    def __init__(
        self,
        store: Store,
        interval_seconds: float,
        metrics: MetricsPort,
        on_change: Callable[[bool], None],
    ) -> None:
        self.store = store
        self.interval_seconds = interval_seconds
        self.metrics = metrics
        self.on_change = on_change
        self.up = True  # the store answered when serve opened it
        self.changed = asyncio.Event()  # set on every change (tests wait on it)

    def _ping(self) -> str:
        """Empty when the store answered, else why not."""
        try:
            self.store.ping()
        except StoreError as exc:
            return str(exc)
        return ""

    async def probe(self) -> bool:
        problem = await asyncio.to_thread(self._ping)
        up = not problem
        self.metrics.set_store_up(up)
        if up != self.up:
            if up:
                log.info("store %s answers again: accepting new mail", self.store.where)
            else:
                log.error(
                    "store unreachable (%s): new mail is answered 451 until it answers; "
                    "spooled mail is still delivered",
                    problem,
                )
            self.up = up
            self.on_change(up)
            self.changed.set()
        return up

    async def run(self) -> None:
        """Probe every ``interval_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(self.interval_seconds)
            await self.probe()
