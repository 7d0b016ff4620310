"""``mukaika user add|list|disable|enable``: the users of the held-mail workflow.

A user is a name (the login of the person, as :mod:`gateway.service.identity` finds it), a
role (``operator``: releases and requests; ``approver``: also approves or denies another user's
request) and a disabled flag. Users are never deleted: the decisions they made name them.
Whoever can run commands as the service's user manages them; each change is an audit line
(event ``user``) naming who made it. The web console will add logins to the same users.

Exit codes: 0 done; 2 usage (a bad name); 4 no such user; 5 the user exists already; 74 the
store cannot be written; 79 the store's schema is not this program's.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_group, data_dir, load
from gateway.evidence.audit import AuditLog
from gateway.service.identity import acting_user
from gateway.store import Store, StoreError, StoreSchemaError, migrate_store, open_store
from gateway.store.users import (
    UnknownUserError,
    User,
    UserExistsError,
    add_user,
    change_user,
    check_name,
    list_users,
)
from sanitizers.vocabulary import AuditEvent, UserRole


def register(subparsers: Any) -> None:
    """Add ``user`` and its actions to the ``mukaika`` parser."""
    add_action = add_group(
        subparsers,
        "user",
        help="the users of the held-mail workflow (operators, approvers)",
        description="Users of the held-mail workflow: who may release, request and approve.",
    )
    add = add_action("add", help="add a user")
    add.add_argument("name", type=_name, help="the person's login name")
    add.add_argument("--role", required=True, choices=[str(role) for role in UserRole])
    add.set_defaults(func=_add)
    listing = add_action("list", help="list the users")
    listing.set_defaults(func=_list)
    for action, disabled in (("disable", True), ("enable", False)):
        parser = add_action(action, help=f"{action} a user")
        parser.add_argument("name", type=_name)
        parser.set_defaults(func=_change, disabled=disabled)


def _name(text: str) -> str:
    try:
        return check_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@contextlib.contextmanager
def _store(args: argparse.Namespace, *, create: bool) -> Iterator[tuple[Store, AuditLog]]:
    """The store (created and migrated for ``add`` on a new installation) and the audit log."""
    config, _ = load(args)
    root = data_dir(args, config)
    try:
        if create:
            store, _, _ = migrate_store(config.store, config.quarantine, root)
        else:
            store = open_store(config.store, config.quarantine, root)
    except StoreSchemaError as exc:
        raise CliError(str(exc), ExitCode.STORE_SCHEMA) from exc
    except StoreError as exc:
        raise CliError(f"cannot open the store: {exc}", ExitCode.IO_ERROR) from exc
    with store, AuditLog.from_settings(config.audit, root, config.node.resolved_name()) as audit:
        yield store, audit


def _add(args: argparse.Namespace) -> int:
    actor = acting_user()
    with _store(args, create=True) as (store, audit):
        try:
            user = add_user(store, args.name, UserRole(args.role), created_by=actor)
        except UserExistsError as exc:
            raise CliError(str(exc), ExitCode.WRONG_STATE) from exc
        _record(audit, user, actor, "added")
    print(f"user {user.name} added ({user.role})")
    return ExitCode.OK


def _list(args: argparse.Namespace) -> int:
    with _store(args, create=False) as (store, _):
        users = list_users(store)
    for user in users:
        flag = "disabled" if user.disabled else "enabled"
        print(f"{user.name:<30} {user.role:<9} {flag:<9} added by {user.created_by}")
    return ExitCode.OK


def _change(args: argparse.Namespace) -> int:
    actor = acting_user()
    with _store(args, create=False) as (store, audit):
        try:
            user = change_user(store, args.name, disabled=args.disabled)
        except UnknownUserError as exc:
            raise CliError(str(exc), ExitCode.NOT_FOUND) from exc
        _record(audit, user, actor, "disabled" if user.disabled else "enabled")
    print(f"user {user.name} {'disabled' if user.disabled else 'enabled'}")
    return ExitCode.OK


def _record(audit: AuditLog, user: User, actor: str, outcome: str) -> None:
    audit.write(
        {
            "event": AuditEvent.USER,
            "user": user.name,
            "role": user.role,
            "actor": actor,
            "outcome": outcome,
        }
    )
