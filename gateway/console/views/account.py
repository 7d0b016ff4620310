"""Signing in and out (:mod:`gateway.console.signin` does the checking)."""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from gateway.console.middleware import SIGNED_IN_AT_KEY, console_user
from gateway.console.runtime import current
from gateway.console.sessions import USER_KEY
from gateway.console.signin import Outcome, sign_in
from sanitizers.vocabulary import AuditEvent

MAX_FIELD_CHARS = 1024


def client_address(request: HttpRequest) -> str:
    """The client's address: the connection's, or the one a trusted proxy forwarded (the
    server rewrites it, :mod:`gateway.console.server`)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _next_page(request: HttpRequest) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(wanted, allowed_hosts=None) and wanted.startswith("/"):
        return wanted
    return "/"


@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        if console_user(request) is not None:
            return HttpResponseRedirect("/")
        return render(request, "console/login.html", {"next": _next_page(request)})
    name = request.POST.get("name", "")[:MAX_FIELD_CHARS]
    password = request.POST.get("password", "")[:MAX_FIELD_CHARS]
    code = request.POST.get("code", "")[:MAX_FIELD_CHARS]
    attempt = sign_in(current(), name, password, code, client_address(request))
    if attempt.outcome is Outcome.OK and attempt.user is not None:
        request.session.cycle_key()
        request.session[USER_KEY] = attempt.user.name
        request.session[SIGNED_IN_AT_KEY] = time.time()
        return HttpResponseRedirect(_next_page(request))
    message = (
        _("Too many failed sign-ins. Try again later, or ask the administrator.")
        if attempt.outcome is Outcome.LOCKED
        else _("The name, the password or the code is wrong.")
    )
    context = {"next": _next_page(request), "error": message, "name": name[:100]}
    return render(request, "console/login.html", context, status=401)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    user = console_user(request)
    if user is not None:
        current().audit.write(
            {
                "event": AuditEvent.LOGOUT,
                "user": user.name,
                **({"tenant": user.tenant} if user.tenant else {}),
                "actor": user.name,
                "client": client_address(request),
            }
        )
    request.session.flush()
    return HttpResponseRedirect("/login")
