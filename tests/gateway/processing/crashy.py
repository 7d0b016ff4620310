"""Sanitizer stand-ins that run in worker processes (importable by the forkserver)."""

from __future__ import annotations

import os
import time

from sanitizers.policy import Policy
from sanitizers.report import Report, SanitizeResult

CLEAN = b"Subject: clean\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nclean\r\n"


def crash_on_marker(untrusted_raw: bytes, policy: Policy, reference: str) -> SanitizeResult:
    """Dies like a segfaulting parser on b"CRASH", hangs on b"HANG", else answers."""
    if b"CRASH" in untrusted_raw:
        os._exit(139)
    if b"HANG" in untrusted_raw:
        time.sleep(60)
    return SanitizeResult(message=CLEAN, report=Report(size=len(untrusted_raw)))
