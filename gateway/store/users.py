"""The users of the held-mail workflow: a name, a role, and whether they are disabled.

The command line acts as the person who runs it (:mod:`gateway.service.identity`); the web
console signs the same users in with their login (:class:`Login`: a password hash made by the
console's hasher, and a TOTP secret for the roles that need one) and shows a recipient the mail
of their addresses (several users may share one address). Threat model: names are chosen by
administrators and checked against one strict pattern, so a name can never be mistaken for
another on a terminal or in an audit line; the store is private to the service's user, and it
holds password hashes only, never a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from gateway.store.database import Store, StoreError
from gateway.store.schema import user_addresses, users
from sanitizers.vocabulary import UserRole

NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
# A mail address as the console matches it against envelope recipients: one @, no spaces or
# controls, at most 320 characters (RFC 5321's limits), stored lower-cased.
ADDRESS_PATTERN: Final = re.compile(r"^[^\s@\x00-\x1f\x7f]{1,64}@[^\s@\x00-\x1f\x7f]{1,255}$")
MAX_ADDRESSES: Final = 100


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
    # The tenant whose mail the user sees and acts on; "" = every tenant's (the cluster's).
    tenant: str = ""


def check_name(name: str) -> str:
    """``name`` if it is a valid user name; else ValueError."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid user name {name!r}: letters, digits and . _ @ - (at most 100, "
            "starting with a letter or digit)"
        )
    return name


def check_address(address: str) -> str:
    """``address`` lower-cased if it is a plain mail address; else ValueError."""
    if not ADDRESS_PATTERN.fullmatch(address):
        raise ValueError(f"invalid mail address {address!r}")
    return address.lower()


@dataclass(frozen=True, slots=True)
class Login:
    """What the console checks at sign-in; ``None`` where the user has none yet."""

    password_hash: str | None
    totp_secret: str | None
    totp_last_step: int | None


def add_user(
    store: Store,
    name: str,
    role: UserRole,
    created_by: str,
    *,
    password_hash: str | None = None,
    addresses: tuple[str, ...] = (),
    tenant: str = "",
) -> User:
    """Add a user (with a console login, addresses and a tenant when given)."""
    check_name(name)
    wanted = tuple(dict.fromkeys(check_address(a) for a in addresses))
    if len(wanted) > MAX_ADDRESSES:
        raise ValueError(f"at most {MAX_ADDRESSES} addresses per user")
    now = datetime.now(UTC)
    try:
        with store.writing() as db:
            inserted = db.execute(
                insert(users).values(
                    name=name,
                    role=str(role),
                    disabled=False,
                    created_at=now,
                    created_by=created_by,
                    password_hash=password_hash,
                    tenant=tenant,
                )
            ).inserted_primary_key
            user_id = inserted[0] if inserted is not None else None
            for address in wanted:
                db.execute(insert(user_addresses).values(user_id=user_id, address=address))
    except StoreError as exc:
        if isinstance(exc.__cause__, IntegrityError):
            raise UserExistsError(f"user {name!r} exists already") from exc
        raise
    return User(name, role, False, now, created_by, tenant)


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
        tenant=row["tenant"],
    )


def login_of(store: Store, name: str) -> Login | None:
    """The login of ``name``, or None if there is no such user."""
    with store.reading() as db:
        row = (
            db.execute(
                select(users.c.password_hash, users.c.totp_secret, users.c.totp_last_step).where(
                    users.c.name == name
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        return None
    return Login(row["password_hash"], row["totp_secret"], row["totp_last_step"])


def set_login(
    store: Store,
    name: str,
    *,
    password_hash: str | None = None,
    totp_secret: str | None = None,
) -> None:
    """Set a new password hash or TOTP secret (a new secret forgets the last used step)."""
    values: dict[str, object] = {}
    if password_hash is not None:
        values["password_hash"] = password_hash
    if totp_secret is not None:
        values["totp_secret"] = totp_secret
        values["totp_last_step"] = None
    with store.writing() as db:
        found = db.execute(update(users).where(users.c.name == name).values(**values)).rowcount
    if not found:
        raise UnknownUserError(f"no user {name!r}")


def use_totp_step(store: Store, name: str, step: int) -> bool:
    """Record that the code of time step ``step`` was used; False if that step or a later one
    was used already (a code is accepted once)."""
    with store.writing() as db:
        changed = db.execute(
            update(users)
            .where(
                users.c.name == name,
                or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step),
            )
            .values(totp_last_step=step)
        ).rowcount
    return bool(changed)


def addresses_of(store: Store, name: str) -> list[str]:
    """The addresses whose mail ``name`` sees, sorted."""
    with store.reading() as db:
        rows = db.execute(
            select(user_addresses.c.address)
            .join(users, users.c.id == user_addresses.c.user_id)
            .where(users.c.name == name)
            .order_by(user_addresses.c.address)
        )
        return [row[0] for row in rows]


def set_addresses(store: Store, name: str, addresses: tuple[str, ...]) -> list[str]:
    """Replace the addresses of ``name``; the new list, sorted."""
    wanted = sorted(dict.fromkeys(check_address(a) for a in addresses))
    if len(wanted) > MAX_ADDRESSES:
        raise ValueError(f"at most {MAX_ADDRESSES} addresses per user")
    with store.writing() as db:
        user_id = db.execute(select(users.c.id).where(users.c.name == name)).scalar()
        if user_id is None:
            raise UnknownUserError(f"no user {name!r}")
        db.execute(delete(user_addresses).where(user_addresses.c.user_id == user_id))
        for address in wanted:
            db.execute(insert(user_addresses).values(user_id=user_id, address=address))
    return wanted


def enabled_addresses(store: Store, limit: int) -> list[str]:
    """The distinct addresses of enabled users, sorted, at most ``limit`` (the digests')."""
    with store.reading() as db:
        rows = db.execute(
            select(user_addresses.c.address)
            .join(users, users.c.id == user_addresses.c.user_id)
            .where(users.c.disabled.is_(False))
            .group_by(user_addresses.c.address)
            .order_by(user_addresses.c.address)
            .limit(limit)
        )
        return [row[0] for row in rows]
