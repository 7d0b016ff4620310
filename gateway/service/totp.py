"""One-time codes (TOTP, RFC 6238) for the roles that sign in with a second factor
(:data:`gateway.service.access.SECOND_FACTOR_ROLES`), through pyotp.

Threat model: a code is valid for its 30-second step and one step either side (clocks drift),
and is accepted once: the step used is recorded in the store and no code of that step or an
earlier one is accepted again, so a code seen over a shoulder or in a proxy log cannot be
replayed. The secret is shown once, when it is made (``mukaika user totp``).
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Final

import pyotp

from gateway.store import Store
from gateway.store.users import set_login, use_totp_step

ISSUER: Final = "mukaika"
DRIFT_STEPS: Final = 1
CODE_DIGITS: Final = 6


def new_secret(store: Store, name: str) -> tuple[str, str]:
    """Give ``name`` a new secret; (the secret, its otpauth:// URI for an authenticator app)."""
    secret = pyotp.random_base32()
    set_login(store, name, totp_secret=secret)
    uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)
    return secret, uri


def accept_code(store: Store, name: str, secret: str, code: str, now: datetime) -> bool:
    """Whether ``code`` is the current code of ``secret`` (within the drift) and unused; a
    matching code is used up."""
    code = code.strip().replace(" ", "")
    if len(code) != CODE_DIGITS or not code.isascii() or not code.isdigit():
        return False
    totp = pyotp.TOTP(secret, digits=CODE_DIGITS)
    step = totp.timecode(now)
    for candidate in range(step + DRIFT_STEPS, step - DRIFT_STEPS - 1, -1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return use_totp_step(store, name, candidate)
    return False
