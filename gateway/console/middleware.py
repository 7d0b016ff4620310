"""The console's own middleware: security headers Django does not set, the page language, and
who is signed in.

- :func:`content_security_policy`: a Content-Security-Policy that allows no script at all,
  styles only from the console's own file, nothing framed and no framing (``frame-ancestors
  'none'``), forms posted only to the console; every page ``Cache-Control: no-store`` (pages
  show mail).
- :func:`language`: Japanese unless the user chose English (the language cookie that Django's
  ``set_language`` view sets); the browser's Accept-Language is not followed, so every
  municipality's staff see Japanese by default.
- :func:`signed_in_user`: ``request.console_user`` is the user of the session, read again from
  the store on every request, so a disabled user is signed out at once; a session older than
  ``session_max_seconds`` is ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from gateway.console.runtime import current
from gateway.console.sessions import USER_KEY
from gateway.service.access import Permission, may
from gateway.store.users import addresses_of, find_user
from sanitizers.vocabulary import UserRole

Handler = Callable[[HttpRequest], HttpResponse]
SIGNED_IN_AT_KEY: Final = "signed_in_at"  # epoch seconds of the sign-in, in the session
CSP: Final = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class ConsoleUser:
    """The signed-in user of a request."""

    name: str
    role: UserRole
    addresses: tuple[str, ...]
    # The one tenant whose mail and records the user sees; "" = every tenant's.
    tenant: str = ""

    def may(self, permission: Permission) -> bool:
        return may(self.role, permission)

    def sees_tenant(self, tenant: str) -> bool:
        """Whether mail or a record of ``tenant`` is the user's to see."""
        return not self.tenant or tenant == self.tenant

    @property
    def only_tenant(self) -> str | None:
        """The tenant a query must be limited to; None for a user of every tenant."""
        return self.tenant or None


def content_security_policy(get_response: Handler) -> Handler:
    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return middleware


def chosen_language(request: HttpRequest) -> str:
    """The language of the cookie if it is one the console speaks, else Japanese."""
    wanted = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    known = {code for code, _ in settings.LANGUAGES}
    return wanted if wanted in known else str(settings.LANGUAGE_CODE)


def language(get_response: Handler) -> Handler:
    def middleware(request: HttpRequest) -> HttpResponse:
        code = chosen_language(request)
        translation.activate(code)
        request.LANGUAGE_CODE = code
        response = get_response(request)
        response.headers.setdefault("Content-Language", code)
        return response

    return middleware


def _user_of(request: HttpRequest) -> ConsoleUser | None:
    name = request.session.get(USER_KEY)
    if not isinstance(name, str):
        return None
    runtime = current()
    signed_in_at = request.session.get(SIGNED_IN_AT_KEY)
    too_old = (
        not isinstance(signed_in_at, int | float)
        or time.time() - signed_in_at > runtime.config.console.session_max_seconds
    )
    user = None if too_old else find_user(runtime.store, name)
    if user is None or user.disabled:
        request.session.flush()
        return None
    return ConsoleUser(
        user.name, user.role, tuple(addresses_of(runtime.store, user.name)), user.tenant
    )


def signed_in_user(get_response: Handler) -> Handler:
    def middleware(request: HttpRequest) -> HttpResponse:
        request.console_user = _user_of(request)  # type: ignore[attr-defined]
        return get_response(request)

    return middleware


def console_user(request: HttpRequest) -> ConsoleUser | None:
    """The signed-in user of ``request`` (set by :func:`signed_in_user`)."""
    user = getattr(request, "console_user", None)
    return user if isinstance(user, ConsoleUser) else None


def page_context(request: HttpRequest) -> dict[str, Any]:
    """What every page's frame shows: the user, what they may open, the languages."""
    user = console_user(request)
    allowed = {p.value: bool(user and user.may(p)) for p in Permission}
    return {
        "console_user": user,
        "allowed": allowed,
        "console_languages": settings.LANGUAGES,
        "current_language": translation.get_language(),
    }
