"""Giving the password of a held message from the console (the PPAP page's work).

Intent: the console does not open archives; it hands the password to the running ``serve``
over its control socket (:mod:`gateway.service.control`), where the same code as ``mukaika
quarantine unlock`` tries it (:class:`gateway.processing.unlocking.Unlocking`: counted per
message against ``policy.unlock.max_attempts``, audited with the actor named here, the files
sanitized and delivered to the held copy's recipients).

Threat model: whoever holds a notice's link, or a signed-in user who may see the message,
may try passwords; wrong ones are also counted here per link, per user and per client
address (:mod:`gateway.store.login_limits`, each scope with its own ``[console]`` limit over
``unlock_attempts_window_seconds``), so that guessing is slow and one person's mistakes do
not lock out everyone behind one screen-transfer server. While any of them is locked, the
password is not even sent. A password is one line (several lines would be several
candidates in one attempt), bounded, and never logged, stored or shown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.console.runtime import Runtime
from gateway.service import control
from gateway.store.login_limits import (
    UNLOCK_ADDRESS,
    UNLOCK_LINK,
    UNLOCK_USER,
    locked_until,
    record_failure,
)
from sanitizers.vocabulary import AuditEvent, UnlockResult

log = logging.getLogger("mukaika.console")

# The longest password the page accepts (the control socket takes a few KB of candidates).
MAX_PASSWORD_CHARS: Final = 1024


class BadPassword(ValueError):
    """Not one line of text of a bounded length (nothing was tried)."""


@dataclass(frozen=True, slots=True)
class Holder:
    """Who gives the password: a notice's link (its recipient) or a signed-in user; ``actor``
    is how the audit names them."""

    actor: str
    link: str = ""  # "REF recipient" of a link, else ""
    user: str = ""  # the signed-in user's name, else ""

    @classmethod
    def of_link(cls, reference: str, recipient: str) -> Holder:
        return cls(actor=f"link:{recipient}", link=f"{reference} {recipient}")

    @classmethod
    def of_user(cls, name: str) -> Holder:
        return cls(actor=name, user=name)


@dataclass(frozen=True, slots=True)
class Answer:
    """What became of one try: serve's result (or ``locked_out`` when the console did not
    send it), and the message's attempts left as serve counted them."""

    result: UnlockResult
    remaining: int = 0


def checked_password(untrusted: str) -> str:
    """The password as typed, if it is one line of at most :data:`MAX_PASSWORD_CHARS`."""
    if not untrusted or len(untrusted) > MAX_PASSWORD_CHARS:
        raise BadPassword(f"a password has 1 to {MAX_PASSWORD_CHARS} characters")
    if "\n" in untrusted or "\r" in untrusted:
        raise BadPassword("a password is one line")
    return untrusted


def give_password(
    runtime: Runtime, reference: str, password: str, holder: Holder, client: str
) -> Answer:
    """One try of ``password`` on the held message ``reference`` (see the module docstring)."""
    settings = runtime.config.console
    now = datetime.now(UTC)
    scopes = _scopes(runtime, holder, client)
    if any(locked_until(runtime.store, scope, subject, now) for scope, subject, _ in scopes):
        runtime.audit.write(
            {
                "event": AuditEvent.UNLOCK_ATTEMPT,
                "quarantine_id": reference,
                "actor": holder.actor,
                "client": client,
                "outcome": str(UnlockResult.LOCKED_OUT),
            }
        )
        return Answer(UnlockResult.LOCKED_OUT)
    try:
        reply = control.request(
            runtime.data_dir,
            "unlock",
            reference,
            password.encode("utf-8") + b"\n",
            on_behalf=holder.actor,
        )
    except (OSError, ValueError) as exc:
        log.warning("%s: serve's control socket did not answer: %s", reference, exc)
        return Answer(UnlockResult.FAILED)
    raw = str(reply.get("result"))
    result = UnlockResult(raw) if raw in set(UnlockResult) else UnlockResult.FAILED
    remaining = reply.get("remaining", 0)
    if result is UnlockResult.WRONG_PASSWORD:
        window = timedelta(seconds=settings.unlock_attempts_window_seconds)
        for scope, subject, limit in scopes:
            record_failure(runtime.store, scope, subject, now, max_failures=limit, window=window)
    return Answer(result, remaining if isinstance(remaining, int) else 0)


def _scopes(runtime: Runtime, holder: Holder, client: str) -> list[tuple[str, str, int]]:
    """(scope, subject, limit) of every count this try belongs to."""
    settings = runtime.config.console
    scopes = [(UNLOCK_ADDRESS, client, settings.unlock_attempts_per_address)]
    if holder.link:
        scopes.append((UNLOCK_LINK, holder.link, settings.unlock_attempts_per_link))
    if holder.user:
        scopes.append((UNLOCK_USER, holder.user, settings.unlock_attempts_per_user))
    return scopes
