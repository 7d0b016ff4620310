"""SMTP AUTH on the outbound listener (``[outbound] auth``): who may hand mail for the Internet
to mukaika, besides the client network.

Users are the store's users and their passwords the console's (the hash is checked by the
hasher the command line injects: :mod:`gateway.console.passwords`, Django's Argon2; nothing is
hashed here). A login is refused for an unknown, disabled or password-less user, a wrong
password, or while its user name or its client address is locked out.

A login is taken only after STARTTLS, so that no password crosses the network in clear; a
client on loopback (a mail program on the mukaika host itself, whose traffic never leaves it)
may log in without, unless ``auth_loopback_without_tls`` is off.

Threat model: the client is an MTA or a mail program on the LGWAN side, already inside
``client_networks``; AUTH protects against a compromised machine there sending as anyone.
Guessing is bounded: failures are counted per user name (``auth_max_failures``) and per client
address (ten times as many, a whole office may share one MTA) in the store's ``login_limits``
(scopes of their own, beside the console's), each locking for ``auth_lockout_seconds``; a
locked login is answered like a wrong password and the hasher still runs, so neither the
answer nor its time tells a locked or unknown user from a wrong password. The password is in
memory only while it is checked; it is never logged. The check runs in a thread, not in the
gateway's event loop. With ``auth_sender_match`` the envelope sender must be the user's name or
one of their addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.configuration.settings import OutboundSettings
from gateway.store import Store
from gateway.store.login_limits import clear, locked_until, record_failure
from gateway.store.users import addresses_of, find_user, login_of

log = logging.getLogger("mukaika.outbound")

SMTP_USER: Final = "smtp_user"
SMTP_ADDRESS: Final = "smtp_address"
# A client address may fail this many times more than one user name before it is locked.
ADDRESS_FACTOR: Final = 10
MAX_LOGIN_BYTES: Final = 320
MAX_PASSWORD_BYTES: Final = 1024

# Checks a password against a stored hash (None: no hash; the hasher still runs once).
PasswordCheck = Callable[[str, str | None], bool]


class OutboundLogins:
    """The logins of the outbound listener (:class:`gateway.receiving.smtp.SmtpLogin`)."""

    def __init__(self, store: Store, settings: OutboundSettings, check: PasswordCheck) -> None:
        self.store = store
        self.settings = settings
        self.check = check

    async def authenticate(self, client: str, login: bytes, password: bytes) -> str | None:
        return await asyncio.to_thread(self._authenticate, client, login, password)

    def _authenticate(self, client: str, login: bytes, password: bytes) -> str | None:
        now = datetime.now(UTC)
        try:
            name = login[:MAX_LOGIN_BYTES].decode("utf-8")
            secret = password[:MAX_PASSWORD_BYTES].decode("utf-8")
        except UnicodeDecodeError:
            name, secret = "", ""
        locked = bool(name) and (
            locked_until(self.store, SMTP_USER, name, now) is not None
            or locked_until(self.store, SMTP_ADDRESS, client, now) is not None
        )
        user = find_user(self.store, name) if name else None
        stored = login_of(self.store, name) if user is not None else None
        usable = user is not None and not user.disabled and stored is not None
        good = self.check(secret, stored.password_hash if usable and stored else None)
        if good and usable and not locked:
            clear(self.store, SMTP_USER, name)
            log.info("outbound AUTH: %s logged in from %s", name, client)
            return name
        window = timedelta(seconds=self.settings.auth_lockout_seconds)
        most = self.settings.auth_max_failures
        if name:
            record_failure(self.store, SMTP_USER, name, now, max_failures=most, window=window)
        record_failure(
            self.store, SMTP_ADDRESS, client, now, max_failures=most * ADDRESS_FACTOR, window=window
        )
        log.warning("outbound AUTH: a login from %s refused", client)
        return None

    def without_tls(self, client: str) -> bool:
        if not self.settings.auth_loopback_without_tls:
            return False
        try:
            return ipaddress.ip_address(client).is_loopback
        except ValueError:
            return False

    async def may_send_as(self, user: str, sender: str) -> bool:
        if not self.settings.auth_sender_match:
            return True
        wanted = sender.strip().lower()
        if not wanted:
            return False
        if wanted == user.lower():
            return True
        return wanted in await asyncio.to_thread(addresses_of, self.store, user)
