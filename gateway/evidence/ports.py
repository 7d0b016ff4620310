"""What the worker needs from the quarantine and the audit log, as protocols.

The real implementations are :class:`gateway.evidence.quarantine.Quarantine` and
:class:`gateway.evidence.audit.AuditLog`; the worker depends only on these shapes, so it can be
tested alone with stand-ins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sanitizers.report import Report
from sanitizers.vocabulary import MessageState


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
        tenant: str = "",
    ) -> str: ...

    def record_result(self, qid: str, report: Report) -> None: ...

    def record_delivery(self, qid: str, state: MessageState) -> None: ...


class AuditPort(Protocol):
    def write(self, record: Mapping[str, Any]) -> None: ...
