"""Signed PPAP links: one per held message and envelope recipient, valid until a set time.

Intent: the notice that tells a recipient their mail waits for a password carries a link to
the console's PPAP page (``[console] public_url``/ppap/TOKEN); opening it lets that recipient
give the password without an account. ``serve`` signs the links (:meth:`UnlockLinks.sign`)
with the key of ``[console] secret_key_file`` (:mod:`gateway.configuration.secret_key`); the
console verifies them (:meth:`UnlockLinks.verify`) with the same key.

The signature is itsdangerous's (HMAC-SHA256 over the payload, with a salt of this purpose so
no other token made with the key, such as a session, is a valid link): a small, well-kept
library (Pallets, BSD-3-Clause) that ``serve`` can import without a web framework. The
payload is the reference, the recipient and the expiry (seconds since the epoch): readable by
whoever has the link (it is that recipient's own), unchangeable without the key.

Threat model: a link is a bearer credential for one recipient of one message until it
expires. A changed reference, recipient or expiry breaks the signature; an expired link is
refused; whoever verifies also checks that the recipient is one of the message's (a link of a
message kept after its recipients changed is worth nothing). A link never carries or unlocks
anything by itself: it only admits its holder to the password form, whose attempts are
counted per message (``policy.unlock.max_attempts``), per link, per user and per address.
Refusals say why (:class:`LinkRefusal`) for the audit, never with the key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from itsdangerous import BadSignature, URLSafeSerializer

from gateway.evidence.quarantine import is_valid_id

# Keeps the links' signatures apart from every other use of the key.
SALT: Final = "mukaika.ppap-link.v1"
# The path of the PPAP page under [console] public_url; the token follows.
PAGE_PATH: Final = "ppap/"
# The daily digest's links (gateway/service/digests.py): the same claim (this recipient of this
# held message, until then) for another page, under a salt of their own, so a digest link is
# never a PPAP link nor the reverse.
DIGEST_SALT: Final = "mukaika.digest-link.v1"
DIGEST_PAGE_PATH: Final = "digest/"
# The longest recipient address a link carries (RFC 5321's path limit).
MAX_ADDRESS_CHARS: Final = 256


class LinkRefusal(StrEnum):
    """Why a link was not accepted."""

    BAD_SIGNATURE = "bad_signature"  # not made with this key, or changed since
    EXPIRED = "expired"


class LinkRefused(Exception):
    """A link that may not be used; ``reason`` says why."""

    def __init__(self, reason: LinkRefusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a verified link says: this recipient of this held message, until ``expires``."""

    reference: str
    recipient: str
    expires: int


class UnlockLinks:
    """Signs and verifies the PPAP links of one key; ``lifetime_seconds``: how long a new link
    is valid; ``clock``: seconds since the epoch (tests move it). ``salt`` and ``page_path``
    make the same kind of link for another page (:func:`digest_links`)."""

    def __init__(
        self,
        key: str,
        public_url: str,
        lifetime_seconds: float,
        clock: Callable[[], float] = time.time,
        *,
        salt: str = SALT,
        page_path: str = PAGE_PATH,
    ) -> None:
        self._serializer = URLSafeSerializer(
            key, salt=salt, signer_kwargs={"digest_method": hashlib.sha256}
        )
        self.page_path = page_path
        self.public_url = public_url
        self.lifetime_seconds = lifetime_seconds
        self.clock = clock

    def sign(self, reference: str, recipient: str) -> tuple[str, int]:
        """A new link for ``recipient`` of ``reference`` and its expiry (epoch seconds)."""
        expires = int(self.clock() + self.lifetime_seconds)
        token = self._serializer.dumps([reference, recipient.lower(), expires])
        return self.url(token), expires

    def links(self, reference: str, recipients: Sequence[str]) -> tuple[tuple[str, str], ...]:
        """(recipient, link) for each recipient of a held message, in their order."""
        return tuple((rcpt, self.sign(reference, rcpt)[0]) for rcpt in recipients)

    def url(self, token: str) -> str:
        return f"{self.public_url.rstrip('/')}/{self.page_path}{token}"

    def verify(self, untrusted_token: str) -> LinkClaim:
        """The claim of a link's token; raises :class:`LinkRefused` when it is not one of
        ours, was changed, or has expired."""
        try:
            payload = self._serializer.loads(untrusted_token)
        except BadSignature as exc:
            raise LinkRefused(LinkRefusal.BAD_SIGNATURE) from exc
        claim = _claim(payload)
        if claim is None:  # signed by us, but not a link (a key shared by mistake)
            raise LinkRefused(LinkRefusal.BAD_SIGNATURE)
        if claim.expires <= self.clock():
            raise LinkRefused(LinkRefusal.EXPIRED)
        return claim


def _claim(payload: object) -> LinkClaim | None:
    if not isinstance(payload, list) or len(payload) != 3:
        return None
    reference, recipient, expires = payload
    if not (isinstance(reference, str) and is_valid_id(reference)):
        return None
    if not (isinstance(recipient, str) and 0 < len(recipient) <= MAX_ADDRESS_CHARS):
        return None
    if not isinstance(expires, int) or isinstance(expires, bool):
        return None
    return LinkClaim(reference, recipient, expires)


def digest_links(
    key: str, public_url: str, lifetime_seconds: float, clock: Callable[[], float] = time.time
) -> UnlockLinks:
    """The daily digest's links: they only open the console's page for that recipient's held
    message (a release is asked for there, signed in, as that recipient)."""
    return UnlockLinks(
        key, public_url, lifetime_seconds, clock, salt=DIGEST_SALT, page_path=DIGEST_PAGE_PATH
    )
