"""Error pages: the same frame as every page, no detail about the server."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


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
