"""The page a daily digest's link opens: it checks the link, asks for a sign-in, and leads the
signed-in user who reads mail for the link's address to that message's page.

Threat model: a link is a pointer, never a credential. Its GET changes nothing (a mail
scanner or a link preview that fetches it releases nothing, and without a session it only
reaches the sign-in page); the signature, expiry and the message's recipients are checked on
every request (:mod:`gateway.processing.unlock_links`, with the digests' own salt); and a
digest forwarded to someone else is refused once they sign in: the user must read mail for the
address the link was signed for. Asking for a release is the message page's POST, with its
CSRF token, by that signed-in user (:mod:`.mail`).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from gateway.console.middleware import console_user
from gateway.console.runtime import current
from gateway.console.views.account import client_address
from gateway.console.views.errors import error_page
from gateway.evidence.quarantine import QuarantineNotFoundError
from gateway.processing.unlock_links import LinkRefusal, LinkRefused, digest_links
from sanitizers.vocabulary import AuditEvent


@require_GET
def by_link(request: HttpRequest, token: str) -> HttpResponse:
    """Check a digest link; then the sign-in page, or the message's page for its reader."""
    runtime = current()
    links = digest_links(
        settings.SECRET_KEY,
        runtime.config.console.public_url,
        runtime.config.digest.link_lifetime_seconds,
    )
    try:
        claim = links.verify(token)
    except LinkRefused as exc:
        if exc.reason is LinkRefusal.EXPIRED:
            return error_page(
                request, 403, _("This link has expired. Open the list of held mail instead.")
            )
        return _not_valid(request)
    try:
        entry = runtime.quarantine.get(claim.reference)
    except QuarantineNotFoundError:
        return _not_valid(request)
    if claim.recipient not in {r.lower() for r in entry.rcpt_to}:
        return _not_valid(request)
    user = console_user(request)
    if user is None:
        return HttpResponseRedirect("/login?" + urlencode({"next": request.path}))
    if claim.recipient not in user.addresses:
        runtime.audit.write(
            {
                "event": AuditEvent.VIEW,
                "quarantine_id": entry.id,
                "actor": user.name,
                "client": client_address(request),
                "outcome": "refused: a digest link of another recipient",
            }
        )
        return error_page(
            request,
            403,
            _(
                "This link was sent to another recipient's digest. Sign in as that recipient, "
                "or open the list of your held mail."
            ),
        )
    return HttpResponseRedirect(f"/mail/{entry.id}")


def _not_valid(request: HttpRequest) -> HttpResponse:
    return error_page(
        request, 404, _("This link is not valid. Copy the whole line from the digest.")
    )
