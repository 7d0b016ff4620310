"""The directory in the store: the staff as an import (CSV or LDAP) describes them, their
groups (課), and who approves for whom.

An import is one transaction (:func:`apply_import`): either every person it lists is in the
store as listed, or nothing changed. Its meaning:

- a listed person who is not in the store is added (enabled, without a console password);
- a listed person who is is updated: role, addresses and groups as listed; their login
  (password hash, TOTP) is kept; a user added by hand is taken over by the import;
- a user the same import managed before (``users.directory``) who is no longer listed is
  disabled (their console sessions end): users are never deleted, their decisions name them;
- an import never enables a disabled user: someone may have disabled them on purpose
  (``mukaika user enable NAME`` does it);
- a user managed by the other import (``csv`` vs ``ldap``) is refused
  (:class:`DirectoryConflictError`): two sources must not fight over one person;
- an import is for one tenant (``""``: the cluster's own users): the users it adds are of that
  tenant, it takes over, updates and disables only users of that tenant (disabling is scoped
  by source and tenant), and a listed user of another tenant is refused
  (:class:`DirectoryConflictError`): an import for one tenant never changes another's users;
- groups are exactly those listed; a group left without members is removed.

Who approves for whom: a member of a group whose role is ``approver`` approves the held
outbound mail of the group's members (:func:`groups_of_sender`). A group is a name within a
tenant: two tenants' 総務課 are two groups, and one's approvers never approve the other's mail.

Threat model: the import's text (names, addresses, group names) comes from an administrator's
file or directory server; it was checked by :mod:`gateway.directory.records` (strict names,
plain addresses, group names without control characters) before it reaches here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from gateway.store.database import Store, StoreError
from gateway.store.schema import (
    console_sessions,
    directory_groups,
    group_members,
    user_addresses,
    users,
)
from sanitizers.vocabulary import UserRole

# The imports that manage users (users.directory).
SOURCES: Final = ("csv", "ldap")


class DirectoryConflictError(StoreError):
    """The import names users that another import or another tenant has (the message lists
    them)."""


@dataclass(frozen=True, slots=True)
class Person:
    """One person as an import lists them (checked by gateway.directory.records)."""

    name: str
    role: UserRole
    addresses: tuple[str, ...]
    groups: tuple[str, ...]


@dataclass(slots=True)
class ImportResult:
    """What an import changed (or, on a dry run, would change): user names, sorted."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


class _DryRun(Exception):
    """Raised inside the transaction of a dry run so that it rolls back."""


def apply_import(
    store: Store,
    people: Sequence[Person],
    *,
    source: str,
    actor: str,
    tenant: str = "",
    dry_run: bool = False,
) -> ImportResult:
    """Make the store's directory what ``people`` says (see the module docstring)."""
    if source not in SOURCES:
        raise ValueError(f"unknown directory source {source!r}")
    result = ImportResult()
    try:
        with store.writing() as db:
            _import(db, people, source, actor, tenant, result)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    for names in (result.added, result.updated, result.unchanged, result.disabled):
        names.sort()
    result.groups = sorted({group for person in people for group in person.groups})
    return result


def _import(
    db: Connection,
    people: Sequence[Person],
    source: str,
    actor: str,
    tenant: str,
    result: ImportResult,
) -> None:
    existing = {
        row.name: row
        for row in db.execute(
            select(
                users.c.id,
                users.c.name,
                users.c.role,
                users.c.disabled,
                users.c.directory,
                users.c.tenant,
            )
        )
    }
    _refuse_other_tenants(people, existing, tenant)
    foreign = sorted(
        person.name
        for person in people
        if person.name in existing and existing[person.name].directory not in (None, source)
    )
    if foreign:
        other = "ldap" if source == "csv" else "csv"
        raise DirectoryConflictError(
            f"managed by the {other} import, not this one: {', '.join(foreign)}"
        )
    now = datetime.now(UTC)
    ids: dict[str, int] = {}
    for person in people:
        row = existing.get(person.name)
        if row is None:
            inserted = db.execute(
                insert(users).values(
                    name=person.name,
                    role=str(person.role),
                    disabled=False,
                    created_at=now,
                    created_by=actor,
                    directory=source,
                    tenant=tenant,
                )
            ).inserted_primary_key
            assert inserted is not None
            ids[person.name] = int(inserted[0])
            result.added.append(person.name)
        else:
            ids[person.name] = int(row.id)
            before = (row.role, row.directory, _addresses(db, row.id), _groups_of(db, row.id))
            after = (str(person.role), source, sorted(person.addresses), sorted(person.groups))
            if before == after:
                result.unchanged.append(person.name)
                continue
            db.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(role=str(person.role), directory=source)
            )
            db.execute(delete(user_addresses).where(user_addresses.c.user_id == row.id))
            db.execute(delete(group_members).where(group_members.c.user_id == row.id))
            result.updated.append(person.name)
        for address in person.addresses:
            db.execute(insert(user_addresses).values(user_id=ids[person.name], address=address))
        for group in person.groups:
            db.execute(
                insert(group_members).values(
                    group_id=_group_id(db, group), user_id=ids[person.name]
                )
            )
    listed = {person.name for person in people}
    for name, row in existing.items():
        if (
            row.directory == source
            and row.tenant == tenant
            and name not in listed
            and not row.disabled
        ):
            db.execute(update(users).where(users.c.id == row.id).values(disabled=True))
            db.execute(delete(console_sessions).where(console_sessions.c.user_name == name))
            result.disabled.append(name)
    db.execute(
        delete(directory_groups).where(
            directory_groups.c.id.not_in(select(group_members.c.group_id).distinct())
        )
    )


def _refuse_other_tenants(people: Sequence[Person], existing: dict[str, Any], tenant: str) -> None:
    """DirectoryConflictError if a listed user is of another tenant than the import's."""
    theirs = sorted(
        person.name
        for person in people
        if person.name in existing and existing[person.name].tenant != tenant
    )
    own = f"tenant {tenant!r}" if tenant else "the cluster's own (no tenant)"
    if theirs:
        raise DirectoryConflictError(f"users of another tenant than {own}: {', '.join(theirs)}")


def _addresses(db: Connection, user_id: int) -> list[str]:
    rows = db.execute(
        select(user_addresses.c.address)
        .where(user_addresses.c.user_id == user_id)
        .order_by(user_addresses.c.address)
    )
    return [row[0] for row in rows]


def _groups_of(db: Connection, user_id: int) -> list[str]:
    rows = db.execute(
        select(directory_groups.c.name)
        .join(group_members, group_members.c.group_id == directory_groups.c.id)
        .where(group_members.c.user_id == user_id)
        .order_by(directory_groups.c.name)
    )
    return [row[0] for row in rows]


def _group_id(db: Connection, name: str) -> int:
    found = db.execute(
        select(directory_groups.c.id).where(directory_groups.c.name == name)
    ).scalar()
    if found is not None:
        return int(found)
    inserted = db.execute(insert(directory_groups).values(name=name)).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Group:
    """A group (課) of the directory in one tenant (``""``: the cluster's own users): its
    members and, among them, its approvers. Two tenants' groups of one name are two groups."""

    name: str
    members: tuple[str, ...]
    approvers: tuple[str, ...]
    tenant: str = ""


def list_groups(store: Store) -> list[Group]:
    """Every group with its enabled members and approvers, sorted by name and tenant."""
    with store.reading() as db:
        rows = db.execute(
            select(directory_groups.c.name, users.c.tenant, users.c.name, users.c.role)
            .join(group_members, group_members.c.group_id == directory_groups.c.id)
            .join(users, users.c.id == group_members.c.user_id)
            .where(users.c.disabled.is_(False))
            .order_by(directory_groups.c.name, users.c.tenant, users.c.name)
        ).all()
    return _grouped((group, tenant, name, role) for group, tenant, name, role in rows)


def groups_of_sender(store: Store, address: str) -> list[Group]:
    """The groups of the enabled users who own ``address`` (a sender's groups), each with the
    members of the owner's tenant only, by name."""
    owner = users.alias("owner")
    owners_groups = group_members.alias("owners_groups")
    with store.reading() as db:
        rows = db.execute(
            select(directory_groups.c.name, users.c.tenant, users.c.name, users.c.role)
            .select_from(user_addresses)
            .join(owner, owner.c.id == user_addresses.c.user_id)
            .join(owners_groups, owners_groups.c.user_id == owner.c.id)
            .join(directory_groups, directory_groups.c.id == owners_groups.c.group_id)
            .join(group_members, group_members.c.group_id == directory_groups.c.id)
            .join(
                users,
                (users.c.id == group_members.c.user_id) & (users.c.tenant == owner.c.tenant),
            )
            .where(
                user_addresses.c.address == address.strip().lower(),
                owner.c.disabled.is_(False),
                users.c.disabled.is_(False),
            )
            .distinct()
            .order_by(directory_groups.c.name, users.c.tenant, users.c.name)
        ).all()
    return _grouped((group, tenant, name, role) for group, tenant, name, role in rows)


def has_groups(store: Store) -> bool:
    """Whether the directory holds any group (then it, not [[outbound.groups]], decides)."""
    with store.reading() as db:
        return db.execute(select(directory_groups.c.id).limit(1)).first() is not None


def _grouped(rows: Iterable[tuple[str, str, str, str]]) -> list[Group]:
    """(group, tenant, member, role) rows, in order, as groups."""
    members: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for group, tenant, name, role in rows:
        members.setdefault((group, tenant), []).append((name, role))
    return [
        Group(
            name=group,
            members=tuple(name for name, _ in people),
            approvers=tuple(name for name, role in people if role == UserRole.APPROVER),
            tenant=tenant,
        )
        for (group, tenant), people in members.items()
    ]
