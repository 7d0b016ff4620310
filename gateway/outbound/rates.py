"""Outbound rate limits: a mailbox that sends like a spammer is stopped (対策基準 ⑭イ).

Per sender and overall, the messages let through in the last hour are counted (a sliding
window, in the gateway's memory: a restart starts the count again). Past a limit the sender's
mail is held for an approver instead of sent, counted in ``mukaika_outbound_rate_limited_total``
(an alert rule fires on it) and listed among held mail. Held mail is not counted.

Bounded: at most :data:`MAX_SENDERS` senders are tracked (the one seen longest ago is
forgotten first); each sender's window holds at most its limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final

WINDOW_SECONDS: Final = 3600.0
MAX_SENDERS: Final = 100_000


class RateLimits:
    """``per_sender`` and ``overall`` messages an hour (0: no limit)."""

    def __init__(
        self, per_sender: int, overall: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_sender = per_sender
        self.overall = overall
        self.clock = clock
        self._all: deque[float] = deque()
        self._senders: OrderedDict[str, deque[float]] = OrderedDict()

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - WINDOW_SECONDS:
            times.popleft()

    def take(self, sender: str) -> str | None:
        """Count one message of ``sender`` if both limits allow it; else the scope that is
        exceeded ("sender" or "all"), and nothing is counted."""
        now = self.clock()
        key = sender.lower()
        self._expire(self._all, now)
        times = self._senders.get(key)
        if times is not None:
            self._expire(times, now)
            self._senders.move_to_end(key)
        if self.per_sender and times is not None and len(times) >= self.per_sender:
            return "sender"
        if self.overall and len(self._all) >= self.overall:
            return "all"
        if self.per_sender:
            if times is None:
                times = self._senders[key] = deque()
                if len(self._senders) > MAX_SENDERS:
                    self._senders.popitem(last=False)
            times.append(now)
        if self.overall:
            self._all.append(now)
        return None
