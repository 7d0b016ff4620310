"""Temporary stand-in: the real pipeline replaces this module (same signature)."""

from __future__ import annotations

from sanitizers.cdr.disarmer import Disarmer
from sanitizers.policy import Policy
from sanitizers.report import Report, SanitizeResult


def sanitize_message(
    untrusted_raw: bytes,
    policy: Policy,
    *,
    disarmer: Disarmer | None = None,
    reference: str | None = None,
) -> SanitizeResult:
    """Turn untrusted mail bytes into a text-only message and a report. Never raises on bad
    input (only :class:`sanitizers.errors.TemporaryFailure` escapes)."""
    body = b"Subject: sanitized\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n(stub)\r\n"
    return SanitizeResult(message=body, report=Report(size=len(untrusted_raw)))
