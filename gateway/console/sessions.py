"""The console's session backend: Django's session machinery (key generation and checks,
signed encoding, expiry, key cycling at sign-in) with its rows in the store
(:mod:`gateway.store.sessions`), so that a logout revokes the session on the server and every
console process sharing the store sees the same sessions.

Threat model: the cookie holds only the key; the data stay on the server. A key that is not in
the store (never issued, expired, revoked) gives an empty session, never an error that tells
which. A session ended elsewhere while a request was running is not written back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError

from gateway.console.runtime import current
from gateway.store.sessions import (
    create_session,
    delete_session,
    load_session,
    purge_expired,
    session_exists,
    update_session,
)

USER_KEY = "user"  # the session key holding the signed-in user's name


class SessionStore(SessionBase):
    """Sessions in the store's ``console_sessions`` table."""

    def load(self) -> dict[str, Any]:
        key = self.session_key
        data = None
        if key is not None:
            data = load_session(current().store, key, datetime.now(UTC))
        if data is None:
            self._session_key = None
            return {}
        decoded: dict[str, Any] = self.decode(data)
        return decoded

    def exists(self, session_key: str | None) -> bool:
        return session_key is not None and session_exists(current().store, session_key)

    def create(self) -> None:
        while True:
            self._session_key = self._get_new_session_key()  # type: ignore[attr-defined]
            try:
                self.save(must_create=True)
            except CreateError:
                continue  # the new key is taken: draw another
            self.modified = True
            return

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            self.create()
            return
        data = self._get_session(no_load=must_create)  # type: ignore[attr-defined]
        encoded = self.encode(data)
        expires = self.get_expiry_date()
        user = data.get(USER_KEY)
        user_name = user if isinstance(user, str) else None
        store = current().store
        if must_create:
            if not create_session(store, self.session_key, encoded, expires, user_name):
                raise CreateError
        elif not update_session(store, self.session_key, encoded, expires, user_name):
            raise UpdateError

    def delete(self, session_key: str | None = None) -> None:
        key = session_key if session_key is not None else self.session_key
        if key is not None:
            delete_session(current().store, key)

    @classmethod
    def clear_expired(cls) -> None:
        purge_expired(current().store, datetime.now(UTC))
