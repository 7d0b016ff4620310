"""Which user may open a page: :func:`requires` wraps a view with the permission it needs.

Anonymous visitors are sent to the sign-in page; a signed-in user without the permission gets
403 (the page exists, but not for them). A view that changes something is also wrapped in
Django's ``require_POST``, so a GET never changes state.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from gateway.console.middleware import ConsoleUser, console_user
from gateway.console.views.errors import forbidden
from gateway.service.access import Permission

View = Callable[..., HttpResponse]


def requires(permission: Permission) -> Callable[[Callable[..., HttpResponse]], View]:
    """The view only for users with ``permission``; it gets the user as second argument."""

    def decorate(view: Callable[..., HttpResponse]) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = console_user(request)
            if user is None:
                return HttpResponseRedirect("/login?" + urlencode({"next": request.path}))
            if not user.may(permission):
                return forbidden(request)
            return view(request, user, *args, **kwargs)

        return wrapper

    return decorate


__all__ = ["ConsoleUser", "requires"]
