"""What the worker needs from quarantine, audit and metrics, as protocols, plus no-op stand-ins.

The real implementations live in :mod:`gateway.quarantine`, :mod:`gateway.audit` and
:mod:`gateway.metrics`; the worker depends only on these shapes, so it can be tested alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sanitizers.report import Report


class QuarantinePort(Protocol):
    def store(
        self,
        queue_id: str,
        untrusted_raw: bytes,
        *,
        client: str,
        helo: str,
        mail_from: str,
        rcpt_to: Sequence[str],
        received_at: datetime,
    ) -> str: ...

    def record_result(self, qid: str, report: Report) -> None: ...

    def record_delivery(self, qid: str, state: str) -> None: ...


class AuditPort(Protocol):
    def write(self, record: Mapping[str, Any]) -> None: ...


class MetricsPort(Protocol):
    def received(self) -> None: ...
    def rejected(self, reason: str) -> None: ...
    def delivered(self) -> None: ...
    def deferred(self) -> None: ...
    def dead_lettered(self) -> None: ...
    def verdict(self, verdict: str) -> None: ...
    def quarantined(self) -> None: ...
    def part(self, action: str, reason: str) -> None: ...
    def observe_sanitize(self, seconds: float) -> None: ...
    def observe_end_to_end(self, seconds: float) -> None: ...
    def set_queue_depth(self, state: str, n: int) -> None: ...
    def set_oldest_age(self, seconds: float) -> None: ...
    def set_busy_workers(self, n: int) -> None: ...
    def set_expired_exceptions(self, n: int) -> None: ...


class NullMetrics:
    """Counts nothing."""

    def received(self) -> None:
        return None

    def rejected(self, reason: str) -> None:
        return None

    def delivered(self) -> None:
        return None

    def deferred(self) -> None:
        return None

    def dead_lettered(self) -> None:
        return None

    def verdict(self, verdict: str) -> None:
        return None

    def quarantined(self) -> None:
        return None

    def part(self, action: str, reason: str) -> None:
        return None

    def observe_sanitize(self, seconds: float) -> None:
        return None

    def observe_end_to_end(self, seconds: float) -> None:
        return None

    def set_queue_depth(self, state: str, n: int) -> None:
        return None

    def set_oldest_age(self, seconds: float) -> None:
        return None

    def set_busy_workers(self, n: int) -> None:
        return None

    def set_expired_exceptions(self, n: int) -> None:
        return None
