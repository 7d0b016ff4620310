"""``mukaika user add|list|disable|enable|totp|password``: the users of the held-mail
workflow and the web console.

A user is a name (the login of the person, as :mod:`gateway.service.identity` finds it), a
role (:class:`~sanitizers.vocabulary.UserRole`: ``recipient`` sees the held mail of their
addresses in the console; ``operator`` releases and requests; ``approver`` also approves or
denies another user's request; ``auditor`` reads the audit trail; ``admin`` manages users), the
addresses whose mail they see (``--address``, repeatable; several users may share one), a
console password and, for approvers and admins, a TOTP secret. With tenants, ``--tenant NAME``
makes a user of that tenant only (its mail, its audit lines, its users); without it a user sees
every tenant's (the cluster's own). Users are never deleted: the
decisions they made name them. Whoever can run commands as the service's user manages them;
each change is an audit line (event ``user``) naming who made it.

The password is read from the terminal (twice, not echoed) or, when standard input is not a
terminal, from its first line; never from the command line, where other users see it.
``user totp NAME`` makes a new secret and prints it once with its ``otpauth://`` URI for an
authenticator app. ``user password NAME`` sets a new console password, read the same way (an
imported user has none until then), and ends the user's console sessions.

``user import --csv FILE`` or ``user import --ldap`` makes the users, their addresses and
groups (課) what a CSV file or the ``[directory]`` server lists, in one transaction
(:mod:`gateway.store.directory` says what an import adds, updates and disables;
:mod:`gateway.directory.csvfile` the file's columns); ``--dry-run`` shows what would change and
changes nothing; ``--tenant NAME`` makes it an import for that tenant's users only (the other
tenants' users are never taken over, changed or disabled by it), and with ``[[tenants]]`` an
import without it is refused. ``user groups`` lists the
groups with their members and approvers.

Exit codes: 0 done; 2 usage (a bad name, address or password); 4 no such user; 5 the user exists
already, or an import names users the other import or another tenant has; 12 the import's rows
or entries are invalid (nothing imported); 66 the CSV file cannot be read; 69 the directory
server cannot be read (down, timeout, bind refused, TLS); 74 the store cannot be written; 78 an
unknown tenant (or a bad configuration); 79 the store's schema is not this program's.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_group, data_dir, load
from gateway.directory.csvfile import read_csv
from gateway.directory.records import ImportRefused
from gateway.evidence.audit import AuditLog
from gateway.service.access import SECOND_FACTOR_ROLES
from gateway.service.identity import acting_user
from gateway.service.totp import new_secret
from gateway.store import Store, StoreError, StoreSchemaError, migrate_store, open_store
from gateway.store.directory import DirectoryConflictError, apply_import, list_groups
from gateway.store.sessions import delete_sessions_of
from gateway.store.users import (
    UnknownUserError,
    User,
    UserExistsError,
    add_user,
    addresses_of,
    change_user,
    check_address,
    check_name,
    find_user,
    list_users,
    login_of,
    set_login,
)
from sanitizers.vocabulary import AuditEvent, UserRole


def register(subparsers: Any) -> None:
    """Add ``user`` and its actions to the ``mukaika`` parser."""
    add_action = add_group(
        subparsers,
        "user",
        help="the users of the held-mail workflow and the web console",
        description="Users of the held-mail workflow: who may release, request and approve.",
    )
    add = add_action("add", help="add a user")
    add.add_argument("name", type=_name, help="the person's login name")
    add.add_argument("--role", required=True, choices=[str(role) for role in UserRole])
    add.add_argument(
        "--address",
        action="append",
        default=[],
        type=_address,
        metavar="ADDR",
        help="a mail address whose held mail the user sees in the console (repeatable)",
    )
    add.add_argument(
        "--tenant",
        default="",
        metavar="NAME",
        help="the tenant ([[tenants]] name) whose mail alone the user sees and acts on; "
        "without it, every tenant's (the cluster's own users)",
    )
    add.add_argument(
        "--no-password",
        action="store_true",
        help="no console login (the user acts on the command line only)",
    )
    add.set_defaults(func=_add)
    listing = add_action("list", help="list the users")
    listing.set_defaults(func=_list)
    totp = add_action("totp", help="make a new TOTP secret (printed once) for the console")
    totp.add_argument("name", type=_name)
    totp.set_defaults(func=_totp)
    password = add_action(
        "password", help="set a new console password (read from stdin) and end the sessions"
    )
    password.add_argument("name", type=_name)
    password.set_defaults(func=_password)
    importing = add_action(
        "import",
        help="make the users, addresses and groups what a CSV file or the LDAP server lists",
    )
    source = importing.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--csv", type=Path, metavar="FILE", help="UTF-8 CSV: name,role,addresses,group"
    )
    source.add_argument("--ldap", action="store_true", help="the server of [directory]")
    importing.add_argument(
        "--tenant",
        default="",
        metavar="NAME",
        help="the tenant ([[tenants]] name) every user of this import belongs to; the import "
        "takes over, changes and disables only that tenant's users",
    )
    importing.add_argument(
        "--dry-run", action="store_true", help="show what would change; change nothing"
    )
    importing.set_defaults(func=_import)
    groups = add_action("groups", help="list the directory's groups, members and approvers")
    groups.set_defaults(func=_groups)
    for action, disabled in (("disable", True), ("enable", False)):
        parser = add_action(action, help=f"{action} a user")
        parser.add_argument("name", type=_name)
        parser.set_defaults(func=_change, disabled=disabled)


def _name(text: str) -> str:
    try:
        return check_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _address(text: str) -> str:
    try:
        return check_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def read_password() -> str:
    """The new password: typed twice on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass("password for the console: ")
        if getpass.getpass("again: ") != first:
            raise CliError("the two passwords differ", ExitCode.USAGE)
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _hashed(password: str) -> str:
    from gateway.console.passwords import WeakPasswordError, hash_password

    try:
        return hash_password(password)
    except WeakPasswordError as exc:
        raise CliError(f"password refused: {exc}", ExitCode.USAGE) from exc


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


def _check_tenant(args: argparse.Namespace) -> None:
    """Refuse a ``--tenant`` that the configuration does not name."""
    config, _ = load(args)
    known = [tenant.name for tenant in config.tenants]
    if args.tenant and args.tenant not in known:
        raise CliError(
            f"unknown tenant {args.tenant!r}: the configuration's tenants are "
            f"{', '.join(known) or '(none)'}",
            ExitCode.CONFIG,
        )


def _add(args: argparse.Namespace) -> int:
    actor = acting_user()
    _check_tenant(args)
    password_hash = None if args.no_password else _hashed(read_password())
    with _store(args, create=True) as (store, audit):
        try:
            user = add_user(
                store,
                args.name,
                UserRole(args.role),
                created_by=actor,
                password_hash=password_hash,
                addresses=tuple(args.address),
                tenant=args.tenant,
            )
        except UserExistsError as exc:
            raise CliError(str(exc), ExitCode.WRONG_STATE) from exc
        _record(audit, user, actor, "added")
    print(f"user {user.name} added ({user.role})")
    if user.role in SECOND_FACTOR_ROLES and password_hash is not None:
        print(f"a {user.role} signs in with a one-time code: run mukaika user totp {user.name}")
    return ExitCode.OK


def _totp(args: argparse.Namespace) -> int:
    actor = acting_user()
    with _store(args, create=False) as (store, audit):
        user = find_user(store, args.name)
        if user is None:
            raise CliError(f"no user {args.name!r}", ExitCode.NOT_FOUND)
        secret, uri = new_secret(store, user.name)
        _record(audit, user, actor, "totp_secret_made")
    print(f"TOTP secret of {user.name} (shown once; enter it or the URI in an authenticator app):")
    print(f"  secret: {secret}")
    print(f"  uri:    {uri}")
    return ExitCode.OK


def _password(args: argparse.Namespace) -> int:
    actor = acting_user()
    with _store(args, create=False) as (store, audit):
        user = find_user(store, args.name)
        if user is None:
            raise CliError(f"no user {args.name!r}", ExitCode.NOT_FOUND)
        password_hash = _hashed(read_password())
        try:
            set_login(store, user.name, password_hash=password_hash)
        except UnknownUserError as exc:
            raise CliError(str(exc), ExitCode.NOT_FOUND) from exc
        delete_sessions_of(store, user.name)
        _record(audit, user, actor, "password_set")
        login = login_of(store, user.name)
    print(f"password of {user.name} set; their console sessions were ended")
    if user.disabled:
        print(f"{user.name} is disabled: run mukaika user enable {user.name} to let them sign in")
    if user.role in SECOND_FACTOR_ROLES and (login is None or login.totp_secret is None):
        print(f"a {user.role} signs in with a one-time code: run mukaika user totp {user.name}")
    return ExitCode.OK


def _list(args: argparse.Namespace) -> int:
    with _store(args, create=False) as (store, _):
        users = list_users(store)
        addresses = {user.name: addresses_of(store, user.name) for user in users}
    for user in users:
        flag = "disabled" if user.disabled else "enabled"
        tenant = f" tenant {user.tenant}" if user.tenant else ""
        print(
            f"{user.name:<30} {user.role:<9} {flag:<9} added by {user.created_by:<20} "
            f"{' '.join(addresses[user.name])}{tenant}"
        )
    return ExitCode.OK


def _change(args: argparse.Namespace) -> int:
    actor = acting_user()
    with _store(args, create=False) as (store, audit):
        try:
            user = change_user(store, args.name, disabled=args.disabled)
        except UnknownUserError as exc:
            raise CliError(str(exc), ExitCode.NOT_FOUND) from exc
        if user.disabled:
            delete_sessions_of(store, user.name)
        _record(audit, user, actor, "disabled" if user.disabled else "enabled")
    print(f"user {user.name} {'disabled' if user.disabled else 'enabled'}")
    return ExitCode.OK


def _import(args: argparse.Namespace) -> int:
    from gateway.directory.ldap import DirectoryUnavailable, read_ldap  # only here: ldap3

    actor = acting_user()
    _check_tenant(args)
    config, _ = load(args)
    if config.tenants and not args.tenant:
        # Users without a tenant would each see every tenant's mail. Fail closed.
        raise CliError(
            "user import without --tenant is refused with [[tenants]]: imported users would "
            "belong to no tenant and see every tenant's mail; import each tenant's staff with "
            "--tenant NAME",
            ExitCode.CONFIG,
        )
    source = "ldap" if args.ldap else "csv"
    try:
        if args.ldap:
            people = read_ldap(config.directory)
        else:
            people = read_csv(args.csv, config.directory.max_users)
    except ImportRefused as exc:
        raise CliError(exc.problems, ExitCode.IMPORT_REFUSED) from exc
    except DirectoryUnavailable as exc:
        raise CliError(f"{exc}; nothing imported", ExitCode.UNAVAILABLE) from exc
    except OSError as exc:
        raise CliError(
            f"cannot read {args.csv}: {exc.strerror or type(exc).__name__}", ExitCode.INPUT
        ) from exc
    with _store(args, create=True) as (store, audit):
        try:
            result = apply_import(
                store,
                people,
                source=source,
                actor=actor,
                tenant=args.tenant,
                dry_run=args.dry_run,
            )
        except DirectoryConflictError as exc:
            raise CliError(f"{exc}; nothing imported", ExitCode.WRONG_STATE) from exc
        if not args.dry_run:
            for outcome, names in (
                ("imported_added", result.added),
                ("imported_updated", result.updated),
                ("import_disabled", result.disabled),
            ):
                for name in names:
                    audit.write(
                        {
                            "event": AuditEvent.USER,
                            "user": name,
                            "actor": actor,
                            "outcome": outcome,
                            "kind": source,
                            **({"tenant": args.tenant} if args.tenant else {}),
                        }
                    )
    verb = "would be" if args.dry_run else "were"
    for label, names in (
        ("added", result.added),
        ("updated", result.updated),
        ("disabled", result.disabled),
    ):
        for name in names:
            print(f"{label:<9} {name}")
    print(
        f"{source} import{' (dry run)' if args.dry_run else ''}: {len(people)} users listed; "
        f"{len(result.added)} {verb} added, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged, {len(result.disabled)} disabled; "
        f"{len(result.groups)} groups"
    )
    return ExitCode.OK


def _groups(args: argparse.Namespace) -> int:
    with _store(args, create=False) as (store, _):
        groups = list_groups(store)
    if not groups:
        print("no groups in the directory (mukaika user import)", file=sys.stderr)
    for group in groups:
        print(f"{group.name} (tenant {group.tenant})" if group.tenant else group.name)
        print(f"  approvers: {' '.join(group.approvers) or '-'}")
        print(f"  members:   {' '.join(group.members)}")
    return ExitCode.OK


def _record(audit: AuditLog, user: User, actor: str, outcome: str) -> None:
    audit.write(
        {
            "event": AuditEvent.USER,
            "user": user.name,
            "role": user.role,
            "actor": actor,
            "outcome": outcome,
            **({"tenant": user.tenant} if user.tenant else {}),
        }
    )
