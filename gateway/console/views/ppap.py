"""The PPAP page: give the password of a message held for a password-protected attachment,
and see what became of it.

Two ways in: the signed link of a held notice (``/ppap/TOKEN``: that recipient of that
message, without an account, until the link expires; :mod:`gateway.processing.unlock_links`)
or a signed-in user who may see the message (``/ppap/mail/REF``). A GET shows the form and
changes nothing; the POST (CSRF-checked like every form) gives the password
(:func:`gateway.console.unlock.give_password`).

Threat model: a link is checked on every request (signature, expiry, and that its recipient
is one of the message's); a refused link says only that it cannot be used, and why in broad
terms (expired or not valid). Every value from mail goes through the templates' escaping. The
password is never echoed back into the page.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from gateway.console.middleware import ConsoleUser
from gateway.console.runtime import current
from gateway.console.unlock import Answer, BadPassword, Holder, checked_password, give_password
from gateway.console.views.access import requires
from gateway.console.views.account import client_address
from gateway.console.views.errors import error_page
from gateway.console.views.mail import visible
from gateway.evidence.quarantine import QuarantineEntry, QuarantineNotFoundError, is_valid_id
from gateway.processing.unlock_links import LinkRefusal, LinkRefused, UnlockLinks
from gateway.service.access import Permission
from sanitizers.vocabulary import MessageState, UnlockResult


def _links() -> UnlockLinks:
    """The links of the shared key (Django's SECRET_KEY is ``[console] secret_key_file``)."""
    console = current().config.console
    return UnlockLinks(settings.SECRET_KEY, console.public_url, console.link_lifetime_seconds)


def _entry(ref: str) -> QuarantineEntry | None:
    if not is_valid_id(ref):
        return None
    try:
        return current().quarantine.get(ref)
    except QuarantineNotFoundError:
        return None


def _not_valid(request: HttpRequest) -> HttpResponse:
    return error_page(
        request, 404, _("This link is not valid. Copy the whole line from the notice.")
    )


@require_http_methods(["GET", "POST"])
def by_link(request: HttpRequest, token: str) -> HttpResponse:
    """The page a held notice's link opens."""
    try:
        claim = _links().verify(token)
    except LinkRefused as exc:
        if exc.reason is LinkRefusal.EXPIRED:
            message = _("This link has expired. Ask the contact in the notice for help.")
            return error_page(request, 403, message)
        return _not_valid(request)
    entry = _entry(claim.reference)
    if entry is None or claim.recipient not in {r.lower() for r in entry.rcpt_to}:
        return _not_valid(request)
    holder = Holder.of_link(entry.id, claim.recipient)
    return _page(request, entry, holder, recipient=claim.recipient)


@require_http_methods(["GET", "POST"])
@requires(Permission.GIVE_PASSWORD)
def by_user(request: HttpRequest, user: ConsoleUser, ref: str) -> HttpResponse:
    """The same page for a signed-in user, for a message they may see."""
    entry = _entry(ref)
    if entry is None or not visible(user, entry):
        raise Http404
    return _page(request, entry, Holder.of_user(user.name), recipient="")


def _page(
    request: HttpRequest, entry: QuarantineEntry, holder: Holder, *, recipient: str
) -> HttpResponse:
    answer: Answer | None = None
    problem = ""
    status = 200
    if request.method == "POST" and entry.state == MessageState.AWAITING_PASSWORD:
        try:
            password = checked_password(request.POST.get("password", ""))
        except BadPassword:
            problem = _("Enter the password on one line.")
            status = 400
        else:
            answer = give_password(current(), entry.id, password, holder, client_address(request))
            del password
            entry = _entry(entry.id) or entry
            status = _STATUS.get(answer.result, 200)
    context: dict[str, Any] = {
        "entry": entry,
        "recipient": recipient,
        "awaiting": entry.state == MessageState.AWAITING_PASSWORD,
        "answer": answer,
        "unlocked": answer is not None and answer.result is UnlockResult.UNLOCKED,
        "problem": problem,
        "contact": current().config.console.contact,
    }
    return render(request, "console/ppap.html", context, status=status)


# HTTP status of a result the page shows (200 when not listed).
_STATUS = {
    UnlockResult.WRONG_PASSWORD: 403,
    UnlockResult.NO_ATTEMPTS_LEFT: 403,
    UnlockResult.LOCKED_OUT: 429,
    UnlockResult.WRONG_STATE: 409,
    UnlockResult.NOT_FOUND: 404,
    UnlockResult.FAILED: 503,
}
