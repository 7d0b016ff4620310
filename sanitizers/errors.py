"""Typed errors that carry a reason code, so every failure maps to the shared vocabulary."""

from __future__ import annotations

from sanitizers.vocabulary import Reason


class SanitizeError(Exception):
    """Sanitizing could not complete; ``reason`` says why in the shared vocabulary."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


class LimitExceeded(SanitizeError):
    """A named, configurable limit was hit (the reason is one of the ``limit_*`` codes)."""


class Locked(SanitizeError):
    """The file is encrypted and needs a password (reason ``encrypted`` or
    ``encrypted_archive``): the part is held, awaiting a password, never removed unread as
    if it were broken. Raised by a sanitizer; :class:`sanitizers.cdr.base.CdrSanitizer`
    turns it into a ``held`` outcome."""


class TemporaryFailure(Exception):
    """A dependency the policy requires is unavailable (e.g. the virus scanner): the message
    must be deferred and retried, never passed on unchecked. The pipeline never catches it."""
