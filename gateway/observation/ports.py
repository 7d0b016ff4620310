"""What the worker needs from the metrics, as a protocol, plus a stand-in that counts nothing.

The real implementation is :class:`gateway.observation.metrics.Metrics`; the worker depends
only on this shape, so it can be tested alone.
"""

from __future__ import annotations

from typing import Protocol

from sanitizers.vocabulary import (
    Action,
    MessageState,
    OutboundEvent,
    Reason,
    SmtpRefusal,
    Verdict,
)


class MetricsPort(Protocol):
    def received(self) -> None: ...
    def rejected(self, reason: SmtpRefusal | Reason) -> None: ...
    def delivered(self) -> None: ...
    def deferred(self) -> None: ...
    def dead_lettered(self) -> None: ...
    def verdict(self, verdict: Verdict) -> None: ...
    def quarantined(self) -> None: ...
    def part(self, action: Action, reason: Reason) -> None: ...
    def auth_result(self, method: str, result: str) -> None: ...
    def observe_sanitize(self, seconds: float) -> None: ...
    def observe_end_to_end(self, seconds: float) -> None: ...
    def set_queue_depth(self, state: MessageState, n: int) -> None: ...
    def set_oldest_age(self, seconds: float) -> None: ...
    def set_busy_workers(self, n: int) -> None: ...
    def set_expired_exceptions(self, n: int) -> None: ...
    def set_scanner_up(self, up: bool) -> None: ...
    def set_store_up(self, up: bool) -> None: ...
    def set_clock_synchronized(self, synchronized: bool) -> None: ...
    def outbound(self, event: OutboundEvent) -> None: ...
    def rate_limited(self, scope: str) -> None: ...
    def tenant_message(self, tenant: str, outcome: Verdict | str) -> None: ...


class NullMetrics:
    """Counts nothing."""

    def received(self) -> None:
        return None

    def rejected(self, reason: SmtpRefusal | Reason) -> None:
        return None

    def delivered(self) -> None:
        return None

    def deferred(self) -> None:
        return None

    def dead_lettered(self) -> None:
        return None

    def verdict(self, verdict: Verdict) -> None:
        return None

    def quarantined(self) -> None:
        return None

    def auth_result(self, method: str, result: str) -> None:
        return None

    def part(self, action: Action, reason: Reason) -> None:
        return None

    def observe_sanitize(self, seconds: float) -> None:
        return None

    def observe_end_to_end(self, seconds: float) -> None:
        return None

    def set_queue_depth(self, state: MessageState, n: int) -> None:
        return None

    def set_oldest_age(self, seconds: float) -> None:
        return None

    def set_busy_workers(self, n: int) -> None:
        return None

    def set_expired_exceptions(self, n: int) -> None:
        return None

    def set_scanner_up(self, up: bool) -> None:
        return None

    def set_store_up(self, up: bool) -> None:
        return None

    def set_clock_synchronized(self, synchronized: bool) -> None:
        return None

    def outbound(self, event: OutboundEvent) -> None:
        return None

    def rate_limited(self, scope: str) -> None:
        return None

    def tenant_message(self, tenant: str, outcome: Verdict | str) -> None:
        return None
