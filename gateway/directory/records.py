"""One person of an import, checked: the same rules for a CSV row and an LDAP entry.

A problem is reported with where it was found (``line 7`` of a CSV file, or an LDAP entry's
DN) and why; an import with any problem is refused whole (:class:`ImportRefused`), so a typo
never half-changes the directory.

Threat model: the values come from an administrator's file or directory server, and end up in
the store, on terminals and in audit lines. Names and addresses pass the users' strict checks
(:mod:`gateway.store.users`); group names may be Japanese but carry no control, format or
separator characters (which could forge a line or hide a difference), are kept exactly as
written (never normalised: 税務課 and a look-alike stay two groups), and are bounded.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Final

from gateway.store.directory import Person
from gateway.store.users import MAX_ADDRESSES, check_address, check_name
from sanitizers.vocabulary import UserRole

MAX_GROUP_CHARS: Final = 100
MAX_GROUPS: Final = 20
# Unicode categories refused in a group name: controls, format characters (bidi overrides,
# zero-width), line and paragraph separators, unassigned and private-use code points.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Co", "Cs"})
# What a problem is reported as at most (a hostile value must not flood the terminal).
_SHOWN_CHARS: Final = 60


class ImportRefused(Exception):
    """The import was refused; ``problems`` says where and why, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def shown(value: str) -> str:
    """``value`` as a problem quotes it: bounded, control characters escaped."""
    cut = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"
    return ascii(cut) if any(unicodedata.category(c)[0] == "C" for c in cut) else repr(cut)


def check_group(name: str) -> str:
    """``name`` if it is a usable group name; else ValueError saying why."""
    if not name:
        raise ValueError("an empty group name")
    if len(name) > MAX_GROUP_CHARS:
        raise ValueError(f"group name {shown(name)} is longer than {MAX_GROUP_CHARS} characters")
    for char in name:
        if unicodedata.category(char) in _REFUSED_CATEGORIES or char.isspace():
            raise ValueError(
                f"group name {shown(name)} holds U+{ord(char):04X} (a space, control or "
                "invisible character)"
            )
    return name


def person(name: str, role: str, addresses: Iterable[str], groups: Iterable[str]) -> Person:
    """A checked :class:`Person`; ValueError with the first problem otherwise."""
    try:
        check_name(name)
    except ValueError:
        raise ValueError(
            f"invalid user name {shown(name)}: letters, digits and . _ @ - (at most 100, "
            "starting with a letter or digit)"
        ) from None
    try:
        checked_role = UserRole(role)
    except ValueError:
        roles = ", ".join(str(r) for r in UserRole)
        raise ValueError(f"unknown role {shown(role)} (one of {roles})") from None
    wanted: dict[str, None] = {}
    for address in addresses:
        try:
            wanted[check_address(address)] = None
        except ValueError:
            raise ValueError(f"invalid mail address {shown(address)}") from None
    if len(wanted) > MAX_ADDRESSES:
        raise ValueError(f"more than {MAX_ADDRESSES} addresses")
    group_names = tuple(dict.fromkeys(check_group(group) for group in groups))
    if len(group_names) > MAX_GROUPS:
        raise ValueError(f"more than {MAX_GROUPS} groups")
    return Person(name, checked_role, tuple(sorted(wanted)), group_names)


def checked_people(found: Iterable[tuple[str, Person]], max_users: int) -> list[Person]:
    """The people of ``found`` (each with where it came from) when no name is listed twice
    and there are at most ``max_users``; else :class:`ImportRefused`."""
    first: dict[str, str] = {}
    people: list[Person] = []
    problems: list[str] = []
    for where, one in found:
        if one.name in first:
            problems.append(f"{where}: user {one.name!r} is listed already ({first[one.name]})")
            continue
        first[one.name] = where
        people.append(one)
    if len(people) > max_users:
        problems.append(
            f"{len(people)} users: more than directory.max_users ({max_users}); nothing imported"
        )
    if problems:
        raise ImportRefused(problems)
    return people
