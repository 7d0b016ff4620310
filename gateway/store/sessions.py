"""The web console's sessions, kept in the store so that a logout (or a disabled user) ends a
session on the server and several console processes can share them.

The console's session backend (:mod:`gateway.console.sessions`) generates the keys and encodes
the data; this module only keeps rows. Threat model: a key is a bearer secret; it is compared
by the database's equality on a primary key and never logged. Expired rows are never read and
are deleted by :func:`purge_expired`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update

from gateway.store.database import Store, StoreError
from gateway.store.schema import console_sessions


def load_session(store: Store, key: str, now: datetime) -> str | None:
    """The data of the live session ``key``, or None."""
    with store.reading() as db:
        return db.execute(
            select(console_sessions.c.data).where(
                console_sessions.c.key == key, console_sessions.c.expires_at > now
            )
        ).scalar()


def session_exists(store: Store, key: str) -> bool:
    """Whether a row (live or expired) has the key ``key``."""
    with store.reading() as db:
        found = db.execute(
            select(console_sessions.c.key).where(console_sessions.c.key == key)
        ).first()
    return found is not None


def create_session(
    store: Store, key: str, data: str, expires_at: datetime, user_name: str | None
) -> bool:
    """Insert a new session; False if the key is taken."""
    try:
        with store.writing() as db:
            db.execute(
                insert(console_sessions).values(
                    key=key, data=data, expires_at=expires_at, user_name=user_name
                )
            )
    except StoreError:
        if session_exists(store, key):
            return False
        raise
    return True


def update_session(
    store: Store, key: str, data: str, expires_at: datetime, user_name: str | None
) -> bool:
    """Replace the data of session ``key``; False if it no longer exists (revoked)."""
    with store.writing() as db:
        changed = db.execute(
            update(console_sessions)
            .where(console_sessions.c.key == key)
            .values(data=data, expires_at=expires_at, user_name=user_name)
        ).rowcount
    return bool(changed)


def delete_session(store: Store, key: str) -> None:
    with store.writing() as db:
        db.execute(delete(console_sessions).where(console_sessions.c.key == key))


def delete_sessions_of(store: Store, user_name: str) -> int:
    """End every session of ``user_name`` (a disabled user, a changed password)."""
    with store.writing() as db:
        return db.execute(
            delete(console_sessions).where(console_sessions.c.user_name == user_name)
        ).rowcount


def purge_expired(store: Store, now: datetime) -> int:
    with store.writing() as db:
        return db.execute(
            delete(console_sessions).where(console_sessions.c.expires_at <= now)
        ).rowcount
