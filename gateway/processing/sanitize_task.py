"""What a sanitizer worker process runs: the pipeline, with or without the malware scan.

Intent: with the scanner on, every attachment is scanned by clamd before CDR sees it
(``gateway.processing.scanner``); when clamd cannot answer,
:class:`sanitizers.errors.TemporaryFailure` escapes the pipeline and the worker defers the
message: it is never passed on unscanned. With the scanner off, every file in the report is
marked ``not_scanned``, so the report and the audit line say that no scanner looked at it
instead of staying silent. Kept apart from the service so a worker process imports only the
pipeline and the scanner.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace

from gateway.configuration.settings import ScannerSettings
from sanitizers.notice import NoticeContext
from sanitizers.policy import Policy
from sanitizers.release import ReleaseTerms
from sanitizers.report import Report, SanitizeResult
from sanitizers.senderauth import AuthOutcome
from sanitizers.vocabulary import Reason


def sanitize_scanned(
    untrusted_raw: bytes,
    policy: Policy,
    reference: str,
    *,
    scanner: ScannerSettings,
    context: NoticeContext | None = None,
    passwords: tuple[str, ...] = (),
    unlocked_by_mail: bool = False,
    release: ReleaseTerms | None = None,
    auth: AuthOutcome | None = None,
) -> SanitizeResult:
    from gateway.processing.scanner import scanning
    from sanitizers.cdr.isolation import default_disarmer
    from sanitizers.pipeline import sanitize_message

    disarmer = scanning(default_disarmer(policy), scanner)
    if scanner.on_hit == "hold":
        # The scanner holds a part with ``malware``: that reason holds (hold_reasons fails
        # closed, so a held part whose reason is not listed would be removed instead).
        policy = policy.model_copy(update={"hold_reasons": policy.hold_reasons | {Reason.MALWARE}})
    return sanitize_message(
        untrusted_raw,
        policy,
        disarmer=disarmer,
        reference=reference,
        passwords=passwords,
        context=context,
        unlocked_by_mail=unlocked_by_mail,
        release=release,
        auth=auth,
    )


def sanitize_unscanned(
    untrusted_raw: bytes,
    policy: Policy,
    reference: str,
    *,
    context: NoticeContext | None = None,
    passwords: tuple[str, ...] = (),
    unlocked_by_mail: bool = False,
    release: ReleaseTerms | None = None,
    auth: AuthOutcome | None = None,
) -> SanitizeResult:
    """Without a scanner nothing may cross as it came: an exception's parts are disarmed like
    any other (the gateway refuses such exceptions before they get here; this is the floor)."""
    from sanitizers.pipeline import sanitize_message

    if release is not None and release.keep_parts:
        release = replace(release, keep_parts=frozenset())
    result = sanitize_message(
        untrusted_raw,
        policy,
        reference=reference,
        passwords=passwords,
        context=context,
        unlocked_by_mail=unlocked_by_mail,
        release=release,
        auth=auth,
    )
    mark_not_scanned(result.report)
    return result


def mark_not_scanned(report: Report) -> None:
    """Every file (a part whose kind was detected: each one a scanner would have seen) gets the
    finding ``not_scanned``."""
    for part in report.parts:
        if part.kind is not None and Reason.NOT_SCANNED not in part.findings:
            part.findings.append(Reason.NOT_SCANNED)


def task_for(
    scanner: ScannerSettings, context: NoticeContext | None = None
) -> Callable[..., SanitizeResult]:
    """The picklable task for the process pool: scanned when the scanner is on; ``context``
    for the held notices. It takes ``passwords=`` for an unlock (sent through the pool's
    pipe, never stored)."""
    if not scanner.enabled:
        return functools.partial(sanitize_unscanned, context=context)
    return functools.partial(sanitize_scanned, scanner=scanner, context=context)
