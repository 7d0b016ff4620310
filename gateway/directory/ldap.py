"""``mukaika user import --ldap``: the staff from an LDAP or Active Directory server
(``[directory]``), through ldap3.

Read-only: one connection, STARTTLS (or ldaps://) before the bind, a simple bind as
``directory.bind_dn`` with the password of ``directory.bind_password_file`` (or anonymous),
then a paged subtree search below ``directory.base_dn`` with ``directory.user_filter`` for the
login, mail, group and role attributes; the connection is opened ``read_only``, so ldap3
refuses any change request before it leaves. Every entry becomes a checked person
(:mod:`.records`), the DN naming where a problem was found; any problem refuses the import
whole, and the store is written only after the whole search succeeded (nothing
half-imported).

Threat model: the server's answers are bounded (``directory.max_users`` entries, each
``directory.timeout_seconds`` per network step) and decoded strictly as UTF-8. The bind
password never appears on the command line or in the configuration, only in its file, and is
never printed. An empty password file is refused: LDAP treats a simple bind with a DN and an
empty password as an unauthenticated bind that "succeeds" (RFC 4513 5.1.2). Over ldap:// the
password travels only after STARTTLS, with the server's certificate verified; ``tls = "none"``
is allowed to a loopback address only (checked in the settings).
"""

from __future__ import annotations

import contextlib
import math
import ssl
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from ldap3 import ANONYMOUS, NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPBindError,
    LDAPException,
    LDAPInvalidCredentialsResult,
    LDAPInvalidFilterError,
    LDAPNoSuchObjectResult,
    LDAPOperationResult,
    LDAPResponseTimeoutError,
    LDAPSocketOpenError,
    LDAPSocketReceiveError,
    LDAPStartTLSError,
)
from ldap3.utils.dn import parse_dn

from gateway.configuration.settings import DirectorySettings
from gateway.directory.records import ImportRefused, checked_people, person, shown
from gateway.store.directory import Person
from sanitizers.vocabulary import UserRole

PAGE_SIZE: Final = 500
# A password file larger than this is not a password file (a wrong path).
MAX_PASSWORD_BYTES: Final = 1024


class DirectoryUnavailable(Exception):
    """The server could not be read (unreachable, TLS, bind refused, timeout, search
    refused); the message says which, never the password."""


def read_password(path: str) -> str:
    """The bind password: the first line of ``path``; DirectoryUnavailable when it cannot be
    read or is empty."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_PASSWORD_BYTES + 1)
    except OSError as exc:
        raise DirectoryUnavailable(
            f"directory.bind_password_file {path}: {exc.strerror or type(exc).__name__}"
        ) from exc
    if len(data) > MAX_PASSWORD_BYTES:
        raise DirectoryUnavailable(
            f"directory.bind_password_file {path}: larger than {MAX_PASSWORD_BYTES} bytes"
        )
    try:
        password = data.decode("utf-8").split("\n", 1)[0].rstrip("\r")
    except UnicodeDecodeError:
        raise DirectoryUnavailable(f"directory.bind_password_file {path}: not UTF-8") from None
    if not password:
        raise DirectoryUnavailable(
            f"directory.bind_password_file {path}: empty (an empty password would be an "
            "unauthenticated bind)"
        )
    return password


def read_ldap(settings: DirectorySettings) -> list[Person]:
    """The people the server lists; :class:`DirectoryUnavailable` when it cannot be read,
    :class:`ImportRefused` when entries are unusable."""
    if not settings.url:
        raise DirectoryUnavailable("no directory server: set directory.url (and base_dn)")
    password = read_password(settings.bind_password_file) if settings.bind_dn else None
    attributes = _wanted(settings)
    found: list[tuple[str, Person]] = []
    problems: list[str] = []
    with _connected(settings, password) as connection:
        for dn, values in _entries(connection, settings, attributes):
            if len(found) + len(problems) >= settings.max_users:
                raise ImportRefused(
                    [
                        f"more than directory.max_users ({settings.max_users}) entries match "
                        "directory.user_filter; nothing imported"
                    ]
                )
            try:
                found.append((f"entry {shown(dn)}", _person(values, settings)))
            except ValueError as exc:
                problems.append(f"entry {shown(dn)}: {exc}")
    if problems:
        raise ImportRefused([*problems, "nothing imported"])
    return checked_people(found, settings.max_users)


def _wanted(settings: DirectorySettings) -> list[str]:
    names = [settings.login_attribute, settings.mail_attribute, settings.group_attribute]
    if settings.role_attribute:
        names.append(settings.role_attribute)
    return list(dict.fromkeys(names))


class _connected:
    """A bound, read-only connection (a context manager that always unbinds)."""

    def __init__(self, settings: DirectorySettings, password: str | None) -> None:
        self.settings = settings
        self.password = password
        self.connection: Connection | None = None

    def __enter__(self) -> Connection:
        settings = self.settings
        tls = Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=settings.tls_ca_file or None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        ldaps = settings.url.startswith("ldaps://")
        server = Server(
            settings.url,
            use_ssl=ldaps,
            tls=tls,
            get_info=NONE,
            connect_timeout=settings.timeout_seconds,
        )
        connection = Connection(
            server,
            user=settings.bind_dn or None,
            password=self.password,
            authentication=SIMPLE if settings.bind_dn else ANONYMOUS,
            read_only=True,
            auto_referrals=False,
            raise_exceptions=True,
            # ldap3 sets the socket's receive timeout in whole seconds.
            receive_timeout=math.ceil(settings.timeout_seconds),
        )
        self.connection = connection
        where = settings.url
        try:
            connection.open()
            if not ldaps and settings.tls == "starttls":
                connection.start_tls()
            connection.bind()
        except LDAPInvalidCredentialsResult:
            self.__exit__()
            raise DirectoryUnavailable(
                f"{where}: the bind as {settings.bind_dn!r} was refused: invalid credentials "
                "(check directory.bind_dn and directory.bind_password_file)"
            ) from None
        except LDAPException as exc:
            self.__exit__()
            raise DirectoryUnavailable(f"{where}: {_why(exc, settings)}") from None
        return connection

    def __exit__(self, *exc_info: object) -> None:
        if self.connection is not None:
            with contextlib.suppress(LDAPException, OSError):  # gone already: nothing to end
                self.connection.unbind()
            if self.connection.socket is not None:  # an unbind that failed leaves it open
                self.connection.socket.close()
            self.connection = None


def _why(exc: LDAPException, settings: DirectorySettings) -> str:
    """What went wrong, for the operator (the exception's own text may be long or vague)."""
    if isinstance(exc, LDAPSocketOpenError):
        return f"cannot connect ({exc})"
    if isinstance(exc, LDAPResponseTimeoutError | LDAPSocketReceiveError):
        return f"no answer within directory.timeout_seconds ({settings.timeout_seconds:g} s)"
    if isinstance(exc, LDAPStartTLSError):
        return f"STARTTLS failed ({exc})"
    if isinstance(exc, LDAPBindError):
        return f"the bind was refused ({exc})"
    if isinstance(exc, LDAPInvalidFilterError):
        return f"directory.user_filter is not an LDAP filter ({exc})"
    if isinstance(exc, LDAPNoSuchObjectResult):
        return f"directory.base_dn {settings.base_dn!r} does not exist"
    if isinstance(exc, LDAPOperationResult):
        return f"the server refused: {exc.description} ({exc.message or exc.result})"
    return f"{type(exc).__name__}: {exc}"


def _entries(
    connection: Connection, settings: DirectorySettings, attributes: list[str]
) -> Iterator[tuple[str, Mapping[str, list[bytes]]]]:
    """(DN, attribute name lower-cased -> raw values) of each matching entry."""
    try:
        pages: Any = connection.extend.standard.paged_search(
            settings.base_dn,
            settings.user_filter,
            search_scope=SUBTREE,
            attributes=attributes,
            paged_size=PAGE_SIZE,
            generator=True,
        )
        for item in pages:
            if item.get("type") != "searchResEntry":
                continue  # a referral: not followed
            raw = item.get("raw_attributes", {})
            yield str(item["dn"]), {str(k).lower(): list(v) for k, v in raw.items()}
    except LDAPException as exc:
        raise DirectoryUnavailable(f"{settings.url}: {_why(exc, settings)}") from None


def _texts(values: Mapping[str, list[bytes]], attribute: str) -> list[str]:
    out: list[str] = []
    for raw in values.get(attribute.lower(), []):
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"a value of {attribute} is not UTF-8") from None
    return out


def group_name(value: str) -> str:
    """A group value as a name: a DN (memberOf) names it by its first RDN's value."""
    if "=" in value:
        try:
            parts = parse_dn(value, escape=False, strip=True)
        except LDAPException:
            return value
        if parts:
            return str(parts[0][1])
    return value


def _person(values: Mapping[str, list[bytes]], settings: DirectorySettings) -> Person:
    logins = _texts(values, settings.login_attribute)
    if len(logins) != 1:
        raise ValueError(
            f"{'no' if not logins else 'several'} {settings.login_attribute} (the login name)"
        )
    role = role_of(
        _texts(values, settings.role_attribute) if settings.role_attribute else [], settings
    )
    groups = [group_name(value) for value in _texts(values, settings.group_attribute)]
    return person(logins[0], str(role), _texts(values, settings.mail_attribute), groups)


def role_of(values: list[str], settings: DirectorySettings) -> UserRole:
    roles = {
        settings.role_map[v.strip().lower()]
        for v in values
        if v.strip().lower() in settings.role_map
    }
    if len(roles) > 1:
        names = ", ".join(sorted(str(role) for role in roles))
        raise ValueError(f"{settings.role_attribute} gives several roles ({names})")
    return roles.pop() if roles else settings.default_role
