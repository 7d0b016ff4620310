"""Held and quarantined mail: the list with filters and search, one message, the download of
an original (operators), and the workflow's actions (release, request, approve, deny), which
call the same functions as the command line (:class:`gateway.service.held_mail.HeldMail`).

Held outbound mail is not listed here: it has its pages (:mod:`.outbound`), and only its
sender and its group's approvers see it.

Threat model: a recipient sees only mail whose envelope names one of their addresses, and a
tenant's user only that tenant's mail, in the list and on every message URL alike (another's
message answers 404, as a missing one does).
Every value from mail is shown through the templates' escaping. A look at an original and a
download are audit lines.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from gateway.console.middleware import ConsoleUser
from gateway.console.rendering import render as render_original
from gateway.console.runtime import current
from gateway.console.views.access import requires
from gateway.console.views.account import client_address
from gateway.console.views.errors import error_page, forbidden
from gateway.evidence.quarantine import (
    QuarantineEntry,
    QuarantineError,
    QuarantineNotFoundError,
    is_valid_id,
)
from gateway.evidence.quarantine.entries import ENTRY_STATES, HELD_STATES
from gateway.evidence.quarantine.index import MailFilter
from gateway.service.access import Permission
from gateway.service.held_mail import (
    InvalidRequestError,
    NotAllowedError,
    NotFoundError,
    WorkflowError,
    WrongStateError,
    may_see_outbound,
)
from gateway.store.workflow import history
from sanitizers.senderauth import AuthOutcome
from sanitizers.vocabulary import AuditEvent, MessageState, Reason, RequestKind

PAGE_SIZE: Final = 50
MAX_FILTER_CHARS: Final = 200
MAX_PAGES: Final = 1000
HELD_FILTER: Final = "waiting"  # the list's default: every state of mail waiting for a decision
ALL_FILTER: Final = "all"


def visible(user: ConsoleUser, entry: QuarantineEntry) -> bool:
    """Whether ``user`` may see ``entry``: never another tenant's; held outbound mail only
    its sender and its group's approvers, on the outbound pages."""
    if not user.sees_tenant(entry.tenant):
        return False
    runtime = current()
    if runtime.held.outbound_decision(entry.id) is not None:
        return may_see_outbound(
            runtime.config, user.name, user.role, user.addresses, entry.mail_from, runtime.store
        )
    if user.may(Permission.SEE_ALL_MAIL):
        return True
    mine = set(user.addresses)
    return bool(mine & {address.lower() for address in entry.rcpt_to})


def _entry_for(user: ConsoleUser, ref: str) -> QuarantineEntry:
    if not is_valid_id(ref):
        raise Http404
    try:
        entry = current().quarantine.get(ref)
    except QuarantineNotFoundError:
        raise Http404 from None
    if not visible(user, entry):
        raise Http404
    return entry


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _filter_of(request: HttpRequest, user: ConsoleUser) -> tuple[MailFilter, dict[str, str]]:
    """The filter the query string asks for, and the form's values to show again."""
    form = {
        key: request.GET.get(key, "").strip()[:MAX_FILTER_CHARS]
        for key in ("state", "since", "until", "sender", "recipient", "reason", "q")
    }
    state = form["state"] or HELD_FILTER
    states: tuple[str, ...] | None
    if state == HELD_FILTER:
        states = tuple(sorted(str(s) for s in HELD_STATES))
    elif state in ENTRY_STATES:
        states = (state,)
    else:
        state, states = ALL_FILTER, None
    form["state"] = state
    since, until = _day(form["since"]), _day(form["until"])
    zone = datetime.now().astimezone().tzinfo
    reason = form["reason"] if form["reason"] in set(Reason) else ""
    form["reason"] = reason
    wanted = MailFilter(
        states=states,
        since=datetime.combine(since, time(), zone).astimezone(UTC) if since else None,
        until=(
            datetime.combine(until + timedelta(days=1), time(), zone).astimezone(UTC)
            if until
            else None
        ),
        sender=form["sender"] or None,
        recipient=form["recipient"] or None,
        reason=reason or None,
        text=form["q"] or None,
        recipients=None if user.may(Permission.SEE_ALL_MAIL) else user.addresses,
        without_kind=str(RequestKind.OUTBOUND),
        tenant=user.only_tenant,
    )
    return wanted, form


@require_GET
@requires(Permission.SEE_OWN_MAIL)
def mail_list(request: HttpRequest, user: ConsoleUser) -> HttpResponse:
    wanted, form = _filter_of(request, user)
    try:
        page = min(max(int(request.GET.get("page", "1")), 1), MAX_PAGES)
    except ValueError:
        page = 1
    entries = current().quarantine.index.search(
        wanted, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1
    )
    query = urlencode({k: v for k, v in form.items() if v})
    context: dict[str, Any] = {
        "entries": entries[:PAGE_SIZE],
        "form": form,
        "page": page,
        "has_next": len(entries) > PAGE_SIZE,
        "states": [HELD_FILTER, ALL_FILTER, *sorted(str(s) for s in ENTRY_STATES)],
        "reasons": sorted(str(r) for r in Reason),
        "query": query,
    }
    return render(request, "console/mail_list.html", context)


@require_GET
@requires(Permission.SEE_OWN_MAIL)
def message(request: HttpRequest, user: ConsoleUser, ref: str) -> HttpResponse:
    entry = _entry_for(user, ref)
    runtime = current()
    if runtime.held.outbound_decision(entry.id) is not None:
        return HttpResponseRedirect(f"/outbound/{entry.id}")
    try:
        original = runtime.quarantine.read_original(entry.id)
    except QuarantineError:
        return error_page(request, 500, _("The original cannot be read (integrity check)."))
    rendering = render_original(original, entry, runtime.config)
    runtime.audit.write(
        {
            "event": AuditEvent.VIEW,
            "quarantine_id": entry.id,
            **({"tenant": entry.tenant} if entry.tenant else {}),
            "actor": user.name,
            "client": client_address(request),
        }
    )
    decisions = history(runtime.store, entry.id)
    pending = next((d for d in reversed(decisions) if d.state == "pending"), None)
    context = {
        "entry": entry,
        "auth": None if entry.auth is None else AuthOutcome.from_dict(entry.auth),
        "rendering": rendering,
        "parts": rendering.report.parts if rendering.report else [],
        "decisions": decisions,
        "pending": pending,
        "may_release": user.may(Permission.RELEASE),
        "may_request": may_request(user, entry),
        "may_decide": user.may(Permission.DECIDE)
        and pending is not None
        and pending.requested_by != user.name,
        "may_download": user.may(Permission.DOWNLOAD_ORIGINAL),
        "may_give_password": user.may(Permission.GIVE_PASSWORD)
        and entry.state == MessageState.AWAITING_PASSWORD,
        "releasable": entry.state
        in {MessageState.HELD, MessageState.AWAITING_PASSWORD, MessageState.DENIED},
    }
    return render(request, "console/message.html", context)


@require_POST
@requires(Permission.DOWNLOAD_ORIGINAL)
def download(request: HttpRequest, user: ConsoleUser, ref: str) -> HttpResponse:
    """The original as it came in, as an attachment that browsers do not open (POST: it is
    recorded)."""
    entry = _entry_for(user, ref)
    runtime = current()
    try:
        original = runtime.quarantine.read_original(entry.id)
    except QuarantineError:
        return error_page(request, 500, _("The original cannot be read (integrity check)."))
    runtime.audit.write(
        {
            "event": AuditEvent.DOWNLOAD,
            "quarantine_id": entry.id,
            **({"tenant": entry.tenant} if entry.tenant else {}),
            "sha256": entry.sha256,
            "actor": user.name,
            "client": client_address(request),
        }
    )
    response = HttpResponse(original, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{entry.id}.eml.bin"'
    return response


def act(request: HttpRequest, then: str, action: Any) -> HttpResponse:
    """Run a workflow ``action``; on success go to ``then``, else the page of what refused."""
    try:
        action()
    except (NotFoundError, QuarantineNotFoundError):
        raise Http404 from None
    except NotAllowedError as exc:
        return error_page(request, 403, str(exc))
    except (WrongStateError, InvalidRequestError) as exc:
        return error_page(request, 409, str(exc))
    except WorkflowError as exc:
        return error_page(request, 400, str(exc))
    return HttpResponseRedirect(then)


@require_POST
@requires(Permission.RELEASE)
def release(request: HttpRequest, user: ConsoleUser, ref: str) -> HttpResponse:
    entry = _entry_for(user, ref)
    return act(request, f"/mail/{ref}", lambda: current().held.release(entry.id, user.name))


def may_request(user: ConsoleUser, entry: QuarantineEntry) -> bool:
    """Whether the page offers ``user`` to ask for a release of ``entry`` (the workflow checks
    again): whoever may release, and a recipient for mail to their own addresses."""
    if user.may(Permission.RELEASE):
        return True
    own = set(user.addresses)
    return user.may(Permission.REQUEST_OWN) and bool(own & {a.lower() for a in entry.rcpt_to})


@require_POST
@requires(Permission.SEE_OWN_MAIL)
def request_release(request: HttpRequest, user: ConsoleUser, ref: str) -> HttpResponse:
    entry = _entry_for(user, ref)
    if not may_request(user, entry):
        return forbidden(request)
    reason = request.POST.get("reason", "")
    parts = [p for p in request.POST.get("parts", "").replace(",", " ").split() if p]
    return act(
        request,
        f"/mail/{ref}",
        lambda: current().held.request(entry.id, user.name, reason, parts=parts),
    )


@require_POST
@requires(Permission.DECIDE)
def approve(request: HttpRequest, user: ConsoleUser, ref: str) -> HttpResponse:
    entry = _entry_for(user, ref)
    return act(request, f"/mail/{ref}", lambda: current().held.approve(entry.id, user.name))


@require_POST
@requires(Permission.DECIDE)
def deny(request: HttpRequest, user: ConsoleUser, ref: str) -> HttpResponse:
    entry = _entry_for(user, ref)
    reason = request.POST.get("reason", "")
    return act(request, f"/mail/{ref}", lambda: current().held.deny(entry.id, user.name, reason))
