"""The users of the held-mail workflow: a name, a role, and whether they are disabled.

The command line acts as the person who runs it (:mod:`gateway.service.identity`); the web
console will add logins to the same rows. Threat model: names are chosen by administrators and
checked against one strict pattern, so a name can never be mistaken for another on a terminal
or in an audit line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from gateway.store.database import Store, StoreError
from gateway.store.schema import users
from sanitizers.vocabulary import UserRole

NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class UserExistsError(StoreError):
    """A user of that name exists already."""


class UnknownUserError(StoreError, LookupError):
    """No user of that name."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: UserRole
    disabled: bool
    created_at: datetime
    created_by: str


def check_name(name: str) -> str:
    """``name`` if it is a valid user name; else ValueError."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid user name {name!r}: letters, digits and . _ @ - (at most 100, "
            "starting with a letter or digit)"
        )
    return name


def add_user(store: Store, name: str, role: UserRole, created_by: str) -> User:
    check_name(name)
    now = datetime.now(UTC)
    try:
        with store.writing() as db:
            db.execute(
                insert(users).values(
                    name=name, role=str(role), disabled=False, created_at=now, created_by=created_by
                )
            )
    except StoreError as exc:
        if isinstance(exc.__cause__, IntegrityError):
            raise UserExistsError(f"user {name!r} exists already") from exc
        raise
    return User(name, role, False, now, created_by)


def find_user(store: Store, name: str) -> User | None:
    with store.reading() as db:
        row = db.execute(select(users).where(users.c.name == name)).mappings().first()
    return None if row is None else _user(row)


def list_users(store: Store) -> list[User]:
    with store.reading() as db:
        return [_user(row) for row in db.execute(select(users).order_by(users.c.name)).mappings()]


def change_user(
    store: Store, name: str, *, role: UserRole | None = None, disabled: bool | None = None
) -> User:
    """Change a user's role or disabled flag; :class:`UnknownUserError` if there is none."""
    values: dict[str, object] = {}
    if role is not None:
        values["role"] = str(role)
    if disabled is not None:
        values["disabled"] = disabled
    with store.writing() as db:
        if values:
            db.execute(update(users).where(users.c.name == name).values(**values))
        row = db.execute(select(users).where(users.c.name == name)).mappings().first()
    if row is None:
        raise UnknownUserError(f"no user {name!r}")
    return _user(row)


def _user(row: RowMapping) -> User:
    return User(
        name=row["name"],
        role=UserRole(row["role"]),
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
    )
