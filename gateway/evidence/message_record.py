"""The audit line for one message at the end of its way through the gateway.

Intent: one record per acknowledged message, built from its spool envelope and the report of
its sanitizing, so an auditor can tell who sent what to whom, what was removed and why, and
what became of it (delivered, held, dead). What the audit log keeps of it, and how it bounds
and cleans each field, is :mod:`gateway.evidence.audit`'s business.
"""

from __future__ import annotations

from typing import Any

from gateway.queue.spool import Envelope
from sanitizers.vocabulary import AuditEvent


def message_record(
    envelope: Envelope, state: str, dsn: str, error: str | None = None
) -> dict[str, Any]:
    """The ``message`` event for ``envelope`` ending in ``state``; ``dsn`` says what became
    of the delivery-status notice (``none``, ``sent``, ``failed``, ``none: why``)."""
    report = envelope.report or {}
    record: dict[str, Any] = {
        "event": AuditEvent.MESSAGE,
        "queue_id": envelope.queue_id,
        "quarantine_id": envelope.quarantine_id,
        "client": envelope.client,
        "helo": envelope.helo,
        "mail_from": envelope.mail_from,
        "rcpt_to": list(envelope.delivered) + [rcpt for rcpt, _ in envelope.failed],
        "message_id": report.get("message_id"),
        "size": envelope.size,
        "sha256": report.get("sha256"),
        "verdict": envelope.verdict,
        "reasons": report.get("reasons", []),
        "parts": report.get("parts", []),
        "defects": report.get("defects", []),
        "timings": report.get("timings_ms", {}),
        "deliveries": list(envelope.deliveries),
        "state": state,
        "attempts": envelope.attempts,
    }
    if envelope.release:
        record["request"] = envelope.release
    auth = report.get("auth")
    if isinstance(auth, dict):
        # Sender authentication: "spf=pass", "dmarc=fail"..., the action and why.
        record["auth"] = {
            "results": [f"{r['method']}={r['result']}" for r in auth.get("results", [])],
            "action": auth.get("action"),
            "reasons": auth.get("reasons", []),
        }
    if report.get("rules"):
        record["rules"] = report["rules"]
        record["exceptions"] = report.get("exceptions", [])
    if error is not None or dsn not in ("none", "sent"):
        record["error"] = error or f"dsn {dsn}"
    return record
