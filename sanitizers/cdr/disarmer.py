"""The seam between the pipeline and CDR: a disarmer decides one attachment's fate."""

from __future__ import annotations

from typing import Protocol

from sanitizers.cdr.base import CdrOutcome
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.vocabulary import Reason


class Disarmer(Protocol):
    """Decides and carries out what happens to one attachment of a given kind; ``charset`` is
    the label its MIME header declares (text is decoded in it before detection).
    ``passwords`` are candidates for a password-protected file (never shown, logged or
    stored): a disarmer that cannot use them leaves such a file held."""

    def disarm(
        self,
        untrusted_data: bytes,
        filename: str,
        kind: str,
        action: AttachmentAction,
        policy: Policy,
        *,
        charset: str | None = None,
        passwords: tuple[str, ...] = (),
    ) -> CdrOutcome: ...


class RemoveAll:
    """The disarmer that keeps nothing: every attachment is removed by policy."""

    def disarm(
        self,
        untrusted_data: bytes,
        filename: str,
        kind: str,
        action: AttachmentAction,
        policy: Policy,
        *,
        charset: str | None = None,
        passwords: tuple[str, ...] = (),
    ) -> CdrOutcome:
        return CdrOutcome.drop(Reason.POLICY)
