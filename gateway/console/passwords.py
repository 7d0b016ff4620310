"""Passwords of console users: hashed and checked by Django's hashers (Argon2 first, through
argon2-cffi) and judged by Django's password validators; the command line (``mukaika user
add``) and the console share this module, so a hash made by one is checked by the other.

Threat model: a password exists only in memory while it is hashed or checked; only the hash is
stored. A sign-in for an unknown user still runs the hasher once, so its time does not tell
whether the user exists.
"""

from __future__ import annotations

from typing import Any, Final

PASSWORD_HASHERS: Final = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
MIN_PASSWORD_CHARS: Final = 12
MAX_PASSWORD_CHARS: Final = 1024
VALIDATORS: Final[list[dict[str, Any]]] = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": MIN_PASSWORD_CHARS},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]


class WeakPasswordError(ValueError):
    """The password is refused by a validator; the message says why."""


def _ready() -> None:
    """Django's settings, for a process that is not the console (the command line)."""
    from django.conf import settings

    if not settings.configured:
        settings.configure(PASSWORD_HASHERS=PASSWORD_HASHERS, USE_I18N=False)


def hash_password(password: str) -> str:
    """The hash to store for ``password``, after the validators accepted it."""
    _ready()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.password_validation import (
        get_password_validators,
        validate_password,
    )
    from django.core.exceptions import ValidationError

    if len(password) > MAX_PASSWORD_CHARS:
        raise WeakPasswordError(f"a password has at most {MAX_PASSWORD_CHARS} characters")
    try:
        validate_password(password, password_validators=get_password_validators(VALIDATORS))
    except ValidationError as exc:
        raise WeakPasswordError(" ".join(str(m) for m in exc.messages)) from exc
    return make_password(password)


def check(password: str, stored_hash: str | None) -> bool:
    """Whether ``password`` matches ``stored_hash``; with no hash, the hasher still runs once
    (on a dummy) and the answer is False."""
    _ready()
    from django.contrib.auth.hashers import check_password, make_password

    if len(password) > MAX_PASSWORD_CHARS:
        password = password[:MAX_PASSWORD_CHARS]
    if stored_hash is None:
        make_password(password)
        return False
    return check_password(password, stored_hash)
