"""Failed sign-ins counted per user name and per client address, each against its own limit.

Staff behind a screen-transfer server or a reverse proxy arrive from one address: a limit per
address alone would let one person's mistakes lock out a whole town hall, and a limit per user
alone would let one address guess many users' passwords. So both are counted, separately
(:data:`USER`, :data:`ADDRESS`), and the console refuses a sign-in while either is locked.

Threat model: subjects are user names and client addresses, both bounded; nothing here says
whether a user exists (a failure for an unknown name is counted like any other).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, insert, select, update

from gateway.store.database import Store
from gateway.store.schema import login_limits

USER: Final = "user"
ADDRESS: Final = "address"
MAX_SUBJECT_CHARS: Final = 320


def locked_until(store: Store, scope: str, subject: str, now: datetime) -> datetime | None:
    """Until when ``subject`` is locked out, or None."""
    with store.reading() as db:
        until = db.execute(
            select(login_limits.c.locked_until).where(
                login_limits.c.scope == scope,
                login_limits.c.subject == subject[:MAX_SUBJECT_CHARS],
            )
        ).scalar()
    return until if until is not None and until > now else None


def record_failure(
    store: Store,
    scope: str,
    subject: str,
    now: datetime,
    *,
    max_failures: int,
    window: timedelta,
) -> bool:
    """Count one failure of ``subject`` in a window of ``window``; once ``max_failures`` are
    reached, it is locked for ``window`` from now. True if it is locked now."""
    key = subject[:MAX_SUBJECT_CHARS]
    where = (login_limits.c.scope == scope, login_limits.c.subject == key)
    with store.writing() as db:
        row = db.execute(select(login_limits).where(*where)).mappings().first()
        still_locked = row is not None and (row["locked_until"] or now) > now
        if row is None or (row["window_start"] + window <= now and not still_locked):
            failures = 1
            if row is not None:
                db.execute(delete(login_limits).where(*where))
            db.execute(
                insert(login_limits).values(
                    scope=scope, subject=key, failures=1, window_start=now, locked_until=None
                )
            )
        else:
            failures = int(row["failures"]) + 1
            db.execute(update(login_limits).where(*where).values(failures=failures))
        if failures >= max_failures:
            db.execute(update(login_limits).where(*where).values(locked_until=now + window))
            return True
    return False


def clear(store: Store, scope: str, subject: str) -> None:
    """Forget the failures of ``subject`` (a user who signed in)."""
    with store.writing() as db:
        db.execute(
            delete(login_limits).where(
                login_limits.c.scope == scope,
                login_limits.c.subject == subject[:MAX_SUBJECT_CHARS],
            )
        )


def purge_stale(store: Store, now: datetime, window: timedelta) -> int:
    """Delete rows whose window and lockout are over."""
    with store.writing() as db:
        return db.execute(
            delete(login_limits).where(
                login_limits.c.window_start <= now - window,
                (login_limits.c.locked_until.is_(None)) | (login_limits.c.locked_until <= now),
            )
        ).rowcount
