"""Recording a message's delivery state in the quarantine index without ever holding up mail.

Intent: once a message is sanitized, delivering it needs only the spool and the LGWAN-side
MTA. Its state in the index (``delivered``, ``deferred``, ``dead``) is a record for operators;
when the store cannot take it (PostgreSQL unreachable, its disk full), delivery goes on and
the state is kept here to be written when the store answers again (the next record, or
:meth:`DeliveryRecords.flush` from the store's health probe). The audit line, on the node's
own disk, is written either way: it is the evidence. At most ``MAX_PENDING`` states wait;
beyond that the oldest is dropped with an error in the log, so an outage of any length costs
bounded memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Final

from gateway.evidence.ports import QuarantinePort
from sanitizers.vocabulary import MessageState

log = logging.getLogger("mukaika.delivery")

# Delivery states kept for the store while it is away (one per message, the latest).
MAX_PENDING: Final = 100_000


class DeliveryRecords:
    """Writes delivery states to the quarantine index; keeps them while the store is away."""

    def __init__(self, quarantine: QuarantinePort, max_pending: int = MAX_PENDING) -> None:
        self.quarantine = quarantine
        self.max_pending = max_pending
        self.pending: OrderedDict[str, MessageState] = OrderedDict()
        # One flush at a time: concurrent deliveries would otherwise each write the same
        # oldest state while the first write is under way (measured: ~27 writes per message
        # at 4 concurrent deliveries, benchmarks/cluster.py).
        self._flushing = asyncio.Lock()

    async def record(self, quarantine_id: str, state: MessageState) -> None:
        """Record ``state`` for ``quarantine_id`` now, or keep it for later if the store
        cannot take it; never raises for a store fault."""
        if not quarantine_id:
            return
        self.pending.pop(quarantine_id, None)
        self.pending[quarantine_id] = state
        await self.flush()

    async def flush(self) -> None:
        """Write the kept states, oldest first, each once; stop at the first store fault."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        while self.pending:
            quarantine_id, state = next(iter(self.pending.items()))
            try:
                await asyncio.to_thread(self.quarantine.record_delivery, quarantine_id, state)
            except LookupError:
                pass  # purged meanwhile: nothing left to record
            except OSError as exc:  # QuarantineStoreError: the store is away
                log.warning(
                    "%s: delivery state %s not recorded yet (%s); kept for when the store answers",
                    quarantine_id,
                    state,
                    exc,
                )
                self._bound()
                return
            if self.pending.get(quarantine_id) == state:
                del self.pending[quarantine_id]

    def _bound(self) -> None:
        while len(self.pending) > self.max_pending:
            dropped, state = self.pending.popitem(last=False)
            log.error(
                "%s: delivery state %s dropped: more than %d states waited for the store",
                dropped,
                state,
                self.max_pending,
            )
