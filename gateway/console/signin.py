"""Signing in to the console: password, a one-time code for the roles that need one, and the
limits on failures per user and per client address (:mod:`gateway.store.login_limits`).

Every attempt is an audit line (event ``login``, outcome ``ok``, ``failed`` or ``locked``, the
user name as typed and the client address), never the password or the code. Threat model: the
answer to a failed attempt never says which part was wrong nor whether the user exists, and
the hasher runs for unknown users too; while the user or the address is locked out, the
password is not even checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from gateway.console import passwords
from gateway.console.runtime import Runtime
from gateway.evidence.quarantine import clean_text
from gateway.service.access import SECOND_FACTOR_ROLES
from gateway.service.totp import accept_code
from gateway.store.login_limits import ADDRESS, USER, clear, locked_until, record_failure
from gateway.store.users import NAME_PATTERN, User, find_user, login_of
from sanitizers.vocabulary import AuditEvent

MAX_NAME_CHARS = 100


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    LOCKED = "locked"


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    user: User | None = None


def sign_in(runtime: Runtime, name: str, password: str, code: str, client: str) -> Attempt:
    """Check one sign-in from ``client``; count it against the limits; audit it."""
    settings = runtime.config.console
    store = runtime.store
    now = datetime.now(UTC)
    name = name.strip()[:MAX_NAME_CHARS]
    if locked_until(store, USER, name, now) or locked_until(store, ADDRESS, client, now):
        _audit(runtime, name, client, Outcome.LOCKED)
        return Attempt(Outcome.LOCKED)
    user = find_user(store, name) if NAME_PATTERN.fullmatch(name) else None
    login = login_of(store, name) if user is not None else None
    matched = passwords.check(password, login.password_hash if login else None)
    ok = matched and user is not None and login is not None and not user.disabled
    if ok and user is not None and login is not None and user.role in SECOND_FACTOR_ROLES:
        ok = login.totp_secret is not None and accept_code(
            store, user.name, login.totp_secret, code, now
        )
    if not ok or user is None:
        window = timedelta(seconds=settings.lockout_seconds)
        locked = record_failure(
            store, USER, name, now, max_failures=settings.max_failures_per_user, window=window
        )
        locked |= record_failure(
            store,
            ADDRESS,
            client,
            now,
            max_failures=settings.max_failures_per_address,
            window=window,
        )
        _audit(runtime, name, client, Outcome.FAILED)
        return Attempt(Outcome.LOCKED if locked else Outcome.FAILED)
    clear(store, USER, name)
    _audit(runtime, name, client, Outcome.OK, user.tenant)
    return Attempt(Outcome.OK, user)


def _audit(runtime: Runtime, name: str, client: str, outcome: Outcome, tenant: str = "") -> None:
    runtime.audit.write(
        {
            "event": AuditEvent.LOGIN,
            "user": clean_text(name, MAX_NAME_CHARS),
            "client": client,
            "outcome": str(outcome),
            **({"tenant": tenant} if tenant else {}),
        }
    )
