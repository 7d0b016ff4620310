"""The audit line for one message at the end of its way through the gateway.

Intent: one record per acknowledged message, built from its spool envelope and the report of
its sanitizing, so an auditor can tell who sent what to whom, what was removed and why, and
what became of it (delivered, held, dead). What the audit log keeps of it, and how it bounds
and cleans each field, is :mod:`gateway.evidence.audit`'s business.
"""

from __future__ import annotations

from typing import Any

from gateway.queue.spool import Envelope
from gateway.store.workflow import Decision
from sanitizers.vocabulary import AuditEvent, RequestKind


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
    if envelope.tenant:
        record["tenant"] = envelope.tenant
    auth = report.get("auth")
    if isinstance(auth, dict):
        # Sender authentication: "spf=pass", "dmarc=fail"..., the action and why.
        record["auth"] = {
            "results": [f"{r['method']}={r['result']}" for r in auth.get("results", [])],
            "action": auth.get("action"),
            "reasons": auth.get("reasons", []),
        }
    if envelope.direction != "inbound":
        record["direction"] = envelope.direction
        record["findings"] = report.get("findings", [])
        conversion = {k: report[k] for k in ("bcc_converted", "dkim", "disclaimer") if k in report}
        if conversion:
            record["conversion"] = conversion
    if report.get("rules"):
        record["rules"] = report["rules"]
        record["exceptions"] = report.get("exceptions", [])
    if error is not None or dsn not in ("none", "sent"):
        record["error"] = error or f"dsn {dsn}"
    return record


def decision_record(event: AuditEvent, decision: Decision, actor: str) -> dict[str, object]:
    """The audit line of one workflow event."""
    record: dict[str, object] = {
        "event": event,
        "quarantine_id": decision.message,
        "request": decision.id,
        "kind": decision.kind,
        "state": decision.state,
        "actor": actor,
        "reason": decision.decision_reason or decision.reason or None,
    }
    if decision.parts:
        record["parts"] = [{"path": part} for part in decision.parts]
    if decision.raised_limits:
        record["raised_limits"] = dict(decision.raised_limits)
    if decision.expires_at is not None:
        record["expires"] = decision.expires_at
    if decision.queue_ids:
        record["queue_id"] = ",".join(decision.queue_ids)
    if decision.outcome:
        record["outcome"] = decision.outcome
    if decision.kind is RequestKind.OUTBOUND:
        record["direction"] = "outbound"
    if decision.tenant:
        record["tenant"] = decision.tenant
    return record
