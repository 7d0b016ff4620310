"""The audit trail, for auditors: read-only; a tenant's auditor reads that tenant's lines."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from gateway.console.audit_trail import TrailFilter, recent_lines
from gateway.console.middleware import ConsoleUser
from gateway.console.runtime import current
from gateway.console.views.access import requires
from gateway.service.access import Permission
from sanitizers.vocabulary import AuditEvent

MAX_FILTER_CHARS = 100
# Columns shown for every line; the rest of a line is shown as its JSON.
COLUMNS = ("time", "event", "actor", "user", "client", "quarantine_id", "outcome", "reason")


@require_GET
@requires(Permission.READ_AUDIT)
def audit_trail(request: HttpRequest, user: ConsoleUser) -> HttpResponse:
    runtime = current()
    form = {
        key: request.GET.get(key, "").strip()[:MAX_FILTER_CHARS]
        for key in ("event", "actor", "reference")
    }
    if form["event"] not in {str(e) for e in AuditEvent}:
        form["event"] = ""
    path = runtime.config.audit.resolve_path(runtime.data_dir)
    wanted = TrailFilter(**form, tenant=user.only_tenant)
    lines = [] if path is None else recent_lines(path, wanted)
    rows = [[line.get(column, "") for column in COLUMNS] for line in lines]
    context = {
        "form": form,
        "columns": COLUMNS,
        "rows": rows,
        "events": sorted(str(e) for e in AuditEvent),
        "to_stdout": path is None,
    }
    return render(request, "console/audit.html", context)
