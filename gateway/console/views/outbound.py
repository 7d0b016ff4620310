"""Outbound mail in the console (上長承認 and 送信遅延): approvers see the held outbound mail of
the groups they approve for and approve or reject it with a comment; a sender sees their own
mail in its delay (and cancels it there) and their own held mail.

Decisions go through the same functions as the command line
(:class:`gateway.service.held_mail.HeldMail`: the group, self-approval and k-of-n rules are
checked there); serve carries them out and tells the sender. The mail in its delay is in
serve's spool, not in the store: the page asks serve over its control socket
(:mod:`gateway.service.control`, commands ``waiting`` and ``cancel``), naming the signed-in
user's addresses; serve cancels only mail whose envelope sender is the one named.

Threat model: a held outbound mail is shown only to its sender and the approvers of the
sender's group (:func:`gateway.service.held_mail.may_see_outbound`), never to another tenant's
users; anyone else gets 404, as for a missing message. A cancel names a sender the page
checks is one of the user's addresses. Every value from mail goes through the templates'
escaping; actions are CSRF-checked POSTs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from gateway.console.middleware import ConsoleUser
from gateway.console.rendering import render as render_original
from gateway.console.runtime import Runtime, current
from gateway.console.views.access import requires
from gateway.console.views.errors import error_page
from gateway.console.views.mail import act
from gateway.evidence.quarantine import QuarantineEntry, QuarantineError, is_valid_id
from gateway.queue.spool import is_queue_id
from gateway.service import control
from gateway.service.access import Permission
from gateway.service.held_mail import (
    approvals_required,
    may_see_outbound,
    outbound_approval_problem,
)
from gateway.store.workflow import Decision, approvals_of, history
from sanitizers.vocabulary import AuditEvent, RequestKind, RequestState

log = logging.getLogger("mukaika.console")


def may_see(runtime: Runtime, user: ConsoleUser, entry: QuarantineEntry) -> bool:
    """Whether ``user`` may see the held outbound mail ``entry`` (never another tenant's)."""
    return user.sees_tenant(entry.tenant) and may_see_outbound(
        runtime.config, user.name, user.role, user.addresses, entry.mail_from, runtime.store
    )


def _held_for(user: ConsoleUser, ref: str) -> tuple[QuarantineEntry, Decision]:
    """The outbound mail ``ref`` and its decision, if ``user`` may see it; else 404."""
    runtime = current()
    if not is_valid_id(ref):
        raise Http404
    decision = runtime.held.outbound_decision(ref)
    if decision is None:
        raise Http404
    try:
        entry = runtime.quarantine.get(ref)
    except QuarantineError:
        raise Http404 from None
    if not may_see(runtime, user, entry):
        raise Http404
    return entry, decision


def _waiting(runtime: Runtime, user: ConsoleUser) -> tuple[list[dict[str, Any]], bool]:
    """The user's outbound mail in its delay, from serve; and whether serve answered."""
    if not runtime.config.outbound.enabled or not user.addresses:
        return [], True
    lines = "".join(f"{address}\n" for address in user.addresses).encode("utf-8")
    try:
        answer = control.request(runtime.data_dir, "waiting", "", lines, on_behalf=user.name)
    except (OSError, ValueError) as exc:
        log.warning("serve's control socket did not answer: %s", exc)
        return [], False
    mail = answer.get("mail")
    if answer.get("result") != "ok" or not isinstance(mail, list):
        return [], False
    own = set(user.addresses)
    shown = []
    for item in mail:
        if not isinstance(item, dict) or str(item.get("mail_from", "")).lower() not in own:
            continue
        item["received"] = datetime.fromtimestamp(float(item["received_at"]), UTC)
        item["until"] = datetime.fromtimestamp(float(item["due"]), UTC)
        shown.append(item)
    return shown, True


@require_GET
@requires(Permission.SEE_OWN_MAIL)
def outbound_list(request: HttpRequest, user: ConsoleUser) -> HttpResponse:
    runtime = current()
    to_decide, own_held = [], []
    mine = set(user.addresses)
    for decision, entry in runtime.held.held_outbound():
        if not user.sees_tenant(entry.tenant):
            continue
        if entry.mail_from.lower() in mine:
            own_held.append((decision, entry))
        elif user.may(Permission.DECIDE) and may_see(runtime, user, entry):
            to_decide.append((decision, entry))
    waiting, answered = _waiting(runtime, user)
    context = {
        "to_decide": to_decide,
        "own_held": own_held,
        "waiting": waiting,
        "serve_answered": answered,
        "may_decide": user.may(Permission.DECIDE),
    }
    return render(request, "console/outbound_list.html", context)


@require_GET
@requires(Permission.SEE_OWN_MAIL)
def outbound_message(request: HttpRequest, user: ConsoleUser, ref: str) -> HttpResponse:
    entry, decision = _held_for(user, ref)
    runtime = current()
    try:
        original = runtime.quarantine.read_original(entry.id)
    except QuarantineError:
        return error_page(request, 500, _("The original cannot be read (integrity check)."))
    rendering = render_original(original, entry, runtime.config)
    runtime.audit.write(
        {
            "event": AuditEvent.VIEW,
            "quarantine_id": entry.id,
            "actor": user.name,
            "direction": "outbound",
        }
    )
    pending = decision.state is RequestState.PENDING
    problem = outbound_approval_problem(
        runtime.config, user.name, entry.mail_from, runtime.store, user.addresses
    )
    given = approvals_of(runtime.store, decision.id)
    if pending and any(a.approver == user.name for a in given):
        problem = _("You have approved it; it waits for the other approvers.")
    context = {
        "entry": entry,
        "decision": decision,
        "decisions": [
            d for d in history(runtime.store, entry.id) if d.kind is RequestKind.OUTBOUND
        ],
        "rendering": rendering,
        "parts": rendering.report.parts if rendering.report else [],
        "approvals": given,
        "required": approvals_required(runtime.config, entry.mail_from),
        "may_decide": pending and user.may(Permission.DECIDE) and problem is None,
        "why_not": problem if pending and user.may(Permission.DECIDE) else None,
    }
    return render(request, "console/outbound_message.html", context)


@require_POST
@requires(Permission.DECIDE)
def approve(request: HttpRequest, user: ConsoleUser, ref: str) -> HttpResponse:
    entry, _decision = _held_for(user, ref)
    comment = request.POST.get("comment", "")
    return act(
        request,
        f"/outbound/{entry.id}",
        lambda: current().held.approve(entry.id, user.name, comment=comment),
    )


@require_POST
@requires(Permission.DECIDE)
def reject(request: HttpRequest, user: ConsoleUser, ref: str) -> HttpResponse:
    entry, _decision = _held_for(user, ref)
    comment = request.POST.get("comment", "")
    return act(
        request, f"/outbound/{entry.id}", lambda: current().held.deny(entry.id, user.name, comment)
    )


@require_POST
@requires(Permission.SEE_OWN_MAIL)
def cancel(request: HttpRequest, user: ConsoleUser, queue_id: str) -> HttpResponse:
    """Cancel one's own outbound mail during its delay (serve does it, and tells the sender)."""
    sender = request.POST.get("sender", "").strip().lower()
    if not is_queue_id(queue_id) or sender not in set(user.addresses):
        raise Http404
    runtime = current()
    try:
        answer = control.request(
            runtime.data_dir, "cancel", queue_id, f"{sender}\n".encode(), on_behalf=user.name
        )
    except (OSError, ValueError) as exc:
        log.warning("%s: serve's control socket did not answer: %s", queue_id, exc)
        return error_page(request, 503, _("The gateway does not answer; try again shortly."))
    result = answer.get("result")
    if result == "cancelled":
        return HttpResponseRedirect("/outbound?cancelled=" + queue_id)
    if result == "too_late":
        return error_page(
            request, 409, _("Too late: the delay is over and the mail is on its way.")
        )
    raise Http404
