"""Error pages: the same frame as every page, no detail about the server."""

from __future__ import annotations

import sys
from typing import Final

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from gateway.store import StoreError

# Seconds a browser (or a proxy) is told to wait before asking again while the store is down.
STORE_DOWN_RETRY_SECONDS: Final = 30


def error_page(request: HttpRequest, status: int, message: str) -> HttpResponse:
    return render(
        request, "console/error.html", {"status": status, "message": message}, status=status
    )


def forbidden(request: HttpRequest) -> HttpResponse:
    return error_page(request, 403, _("You may not open this page."))


def not_found(request: HttpRequest) -> HttpResponse:
    return error_page(request, 404, _("No such page or message."))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF check failed (``CSRF_FAILURE_VIEW``): nothing was done."""
    return error_page(
        request,
        403,
        _(
            "The form was not accepted (its security token was missing or stale). Nothing was "
            "done. Reload the page and try again."
        ),
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 handler (``handler404``)."""
    return not_found(request)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler (``handler500``), called while the failure is being handled: when
    the store does not answer (the database is down or failing over), a 503 page saying so,
    which goes away by itself once the pool reaches the database again; any other fault, a
    500 page without detail."""
    if _from_the_store(sys.exc_info()[1]):
        response = error_page(
            request,
            503,
            _(
                "The database is not answering, so this page cannot be shown. The console "
                "recovers by itself when the database is back: reload the page in a moment."
            ),
        )
        response.headers["Retry-After"] = str(STORE_DOWN_RETRY_SECONDS)
        return response
    return error_page(
        request, 500, _("Something went wrong on the server. Nothing was changed by this page.")
    )


def _from_the_store(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was raised while handling, a store error."""
    seen = 0
    while exc is not None and seen < 20:  # bounded: a chain is short, never a loop
        if isinstance(exc, StoreError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
