"""The outbound checks as a pool task: the malware scan (clamd) and the pure checks of
:mod:`sanitizers.outbound_checks`, run in a sanitizer process (a crash or a hang costs that
process, never the gateway; :meth:`gateway.processing.pool.ProcessSanitizer.run_task`).

The scan is the same as inbound (every attachment, through clamd's INSTREAM): a hit rejects
the mail; a file larger than ``scanner.max_bytes`` cannot be scanned and holds it; clamd down
raises :class:`sanitizers.errors.TemporaryFailure`, so the mail is deferred, never sent
unscanned. With the scanner off nothing is scanned (``mukaika check-config`` warns).
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.configuration.settings import ScannerSettings, SmtpSettings
from sanitizers.errors import LimitExceeded
from sanitizers.outbound_checks import OutboundReport, Scan, check_outbound
from sanitizers.policy import Policy
from sanitizers.vocabulary import Reason


def clamd_scan(settings: ScannerSettings) -> Scan:
    """A scan function over clamd for :func:`check_outbound`."""
    from gateway.processing.scanner import ClamdClient, ScanTooLarge

    client = ClamdClient(settings.address, settings.timeout_seconds, settings.max_bytes)

    def scan(untrusted_data: bytes, name: str) -> str | None:
        try:
            return client.scan(untrusted_data).signature
        except ScanTooLarge as exc:
            raise LimitExceeded(Reason.LIMIT_SIZE, f"{name}: too large to scan") from exc

    return scan


def check_task(
    untrusted_raw: bytes,
    policy: Policy,
    recipients: Sequence[str],
    smtp: SmtpSettings,
    scanner: ScannerSettings,
) -> OutboundReport:
    """The decision on one outbound mail (runs in a pool process)."""
    return check_outbound(
        untrusted_raw,
        policy,
        recipients=recipients,
        is_outside=lambda address: not smtp.accepts(address),
        scan=clamd_scan(scanner) if scanner.enabled else None,
    )
