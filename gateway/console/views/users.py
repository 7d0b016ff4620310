"""The users, for administrators: read-only. Users are added, disabled and given TOTP secrets
on the command line (``mukaika user``), where the password is typed and never crosses the
network."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from gateway.console.middleware import ConsoleUser
from gateway.console.runtime import current
from gateway.console.views.access import requires
from gateway.service.access import SECOND_FACTOR_ROLES, Permission
from gateway.store.users import addresses_of, list_users, login_of


@require_GET
@requires(Permission.MANAGE_USERS)
def users(request: HttpRequest, user: ConsoleUser) -> HttpResponse:
    store = current().store
    rows = []
    for each in list_users(store):
        if not user.sees_tenant(each.tenant):
            continue  # a tenant's administrator sees that tenant's users only
        login = login_of(store, each.name)
        rows.append(
            {
                "user": each,
                "addresses": addresses_of(store, each.name),
                "has_password": bool(login and login.password_hash),
                "needs_code": each.role in SECOND_FACTOR_ROLES,
                "has_code": bool(login and login.totp_secret),
            }
        )
    return render(request, "console/users.html", {"rows": rows})
