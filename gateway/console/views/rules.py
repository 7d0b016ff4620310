"""The effective rules and exceptions (read-only, with the file each came from; exceptions that
expire soon or have expired stand out), and the explain page: a saved mail uploaded, a
recipient chosen, the decision shown by the same code as ``mukaika explain``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from gateway.configuration.config import tenants_of
from gateway.configuration.rules import Rule
from gateway.console.middleware import ConsoleUser
from gateway.console.runtime import current
from gateway.console.views.access import requires
from gateway.service.access import Permission
from gateway.service.explaining import explain, header_addresses
from gateway.store.users import check_address
from sanitizers.errors import TemporaryFailure

# An exception that expires within this many days is highlighted.
EXPIRING_SOON_DAYS: Final = 14
MAX_RECIPIENTS: Final = 20


@dataclass(frozen=True)
class RuleRow:
    number: int
    rule: Rule
    source: str
    status: str  # "", "expiring" or "expired"
    override: str


def rule_rows(today: date, user: ConsoleUser | None = None) -> list[RuleRow]:
    """The shared rules, then each tenant's that ``user`` may see (all without a user)."""
    runtime = current()
    layered = runtime.layered
    sources = layered.rule_sources
    found: list[tuple[Rule, str]] = [
        (rule, sources[index][0] if index < len(sources) else "-")
        for index, rule in enumerate(runtime.config.rules)
    ]
    for number, tenant in enumerate(runtime.config.tenants):
        if user is None or user.sees_tenant(tenant.name):
            found.extend(
                (rule, layered.origin(("tenants", number, "rules", index)))
                for index, rule in enumerate(tenant.rules)
            )
    rows = []
    for index, (rule, source) in enumerate(found):
        status = ""
        if rule.exception and rule.expires is not None:
            if rule.expired(today):
                status = "expired"
            elif rule.expires <= today + timedelta(days=EXPIRING_SOON_DAYS):
                status = "expiring"
        override = json.dumps(rule.policy, ensure_ascii=False, sort_keys=True, indent=1)
        rows.append(RuleRow(index + 1, rule, source, status, override))
    return rows


@require_http_methods(["GET"])
@requires(Permission.SEE_RULES)
def rules(request: HttpRequest, user: ConsoleUser) -> HttpResponse:
    context = {"rows": rule_rows(date.today(), user), "soon_days": EXPIRING_SOON_DAYS}
    return render(request, "console/rules.html", context)


@require_http_methods(["GET", "POST"])
@requires(Permission.SEE_RULES)
def explain_page(request: HttpRequest, user: ConsoleUser) -> HttpResponse:
    """GET: the form. POST: the explanation (nothing is stored or sent)."""
    context: dict[str, object] = {"recipients": "", "sender": ""}
    if request.method == "POST":
        upload = request.FILES.get("message")
        recipients_text = request.POST.get("recipients", "")[:2000]
        sender_text = request.POST.get("sender", "").strip()[:320]
        context.update(recipients=recipients_text, sender=sender_text)
        if upload is None:
            context["error"] = _(
                "Choose a saved mail (.eml) no larger than the largest mail the gateway accepts."
            )
            return render(request, "console/explain.html", context, status=400)
        untrusted_raw = upload.read()
        header_sender, header_recipients = header_addresses(untrusted_raw)
        try:
            recipients = [check_address(a) for a in recipients_text.replace(",", " ").split()]
            sender = check_address(sender_text) if sender_text else header_sender
        except ValueError as exc:
            context["error"] = str(exc)
            return render(request, "console/explain.html", context, status=400)
        recipients = (recipients or header_recipients)[:MAX_RECIPIENTS]
        tenants = tenants_of(current().config)
        if any(not user.sees_tenant(tenants.tenant_of(r)) for r in recipients):
            context["error"] = _("Choose recipients of your own organisation.")
            return render(request, "console/explain.html", context, status=400)
        try:
            lines, results = explain(
                untrusted_raw,
                current().config,
                sender=sender,
                recipients=recipients,
                client="",
                today=date.today(),
            )
        except TemporaryFailure as exc:
            context["error"] = str(exc)
            return render(request, "console/explain.html", context, status=503)
        context["explanation"] = "\n".join(lines)
        context["results"] = results
    return render(request, "console/explain.html", context)
