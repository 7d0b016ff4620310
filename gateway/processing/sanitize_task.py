"""What a sanitizer worker process runs when the malware scanner is on.

Intent: every attachment is scanned by clamd before CDR sees it
(``gateway.processing.scanner``); when clamd cannot answer,
:class:`sanitizers.errors.TemporaryFailure` escapes the pipeline and the
worker defers the message: it is never passed on unscanned. Kept apart from the service so a
worker process imports only the pipeline and the scanner.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from gateway.configuration.config import ScannerSettings
from sanitizers.policy import Policy
from sanitizers.report import SanitizeResult


def sanitize_scanned(
    untrusted_raw: bytes, policy: Policy, reference: str, *, scanner: ScannerSettings
) -> SanitizeResult:
    from gateway.processing.scanner import scanning
    from sanitizers.cdr.registry import default_disarmer
    from sanitizers.pipeline import sanitize_message

    disarmer = scanning(default_disarmer(policy), scanner)
    return sanitize_message(untrusted_raw, policy, disarmer=disarmer, reference=reference)


def task_for(scanner: ScannerSettings) -> Callable[[bytes, Policy, str], SanitizeResult] | None:
    """The picklable task for the process pool; None (the plain pipeline) when scanning is off."""
    if not scanner.enabled:
        return None
    return functools.partial(sanitize_scanned, scanner=scanner)
