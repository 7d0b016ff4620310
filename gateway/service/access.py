"""Who may do what: the one table from roles to permissions, for the command line and the
web console alike.

Threat model: a permission missing here is refused everywhere; nothing else grants one. The
separation of duties of the held-mail workflow (never approving one's own request) is checked
by :mod:`.held_mail` on top of this table.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from sanitizers.vocabulary import UserRole


class Permission(StrEnum):
    """One thing a user may do."""

    SEE_OWN_MAIL = "see_own_mail"  # held mail addressed to one's own addresses
    SEE_ALL_MAIL = "see_all_mail"  # every held and quarantined message
    DOWNLOAD_ORIGINAL = "download_original"  # the original's bytes, as they came in
    RELEASE = "release"  # release, or request a release or an exception
    REQUEST_OWN = "request_own"  # ask for the release of held mail to one's own addresses
    DECIDE = "decide"  # approve or deny another user's request
    READ_AUDIT = "read_audit"  # the audit trail
    SEE_RULES = "see_rules"  # the effective rules and exceptions; the explain page
    MANAGE_USERS = "manage_users"  # the users of the console
    GIVE_PASSWORD = "give_password"  # noqa: S105 - a permission: a held message's password (PPAP)
    SEE_STATISTICS = "see_statistics"  # the statistics of the log review (counts, no content)


PERMISSIONS: Final[dict[UserRole, frozenset[Permission]]] = {
    UserRole.RECIPIENT: frozenset(
        {Permission.SEE_OWN_MAIL, Permission.REQUEST_OWN, Permission.GIVE_PASSWORD}
    ),
    UserRole.OPERATOR: frozenset(
        {
            Permission.SEE_OWN_MAIL,
            Permission.SEE_ALL_MAIL,
            Permission.DOWNLOAD_ORIGINAL,
            Permission.RELEASE,
            Permission.SEE_RULES,
            Permission.GIVE_PASSWORD,
            Permission.SEE_STATISTICS,
        }
    ),
    UserRole.APPROVER: frozenset(
        {
            Permission.SEE_OWN_MAIL,
            Permission.SEE_ALL_MAIL,
            Permission.RELEASE,
            Permission.DECIDE,
            Permission.SEE_RULES,
            Permission.GIVE_PASSWORD,
        }
    ),
    UserRole.AUDITOR: frozenset(
        {
            Permission.SEE_OWN_MAIL,
            Permission.SEE_ALL_MAIL,
            Permission.READ_AUDIT,
            Permission.SEE_STATISTICS,
        }
    ),
    UserRole.ADMIN: frozenset({Permission.SEE_OWN_MAIL, Permission.MANAGE_USERS}),
}

# Roles that must give a one-time code (TOTP) besides their password to sign in.
SECOND_FACTOR_ROLES: Final = frozenset({UserRole.APPROVER, UserRole.ADMIN})


def may(role: UserRole, permission: Permission) -> bool:
    """Whether ``role`` carries ``permission``."""
    return permission in PERMISSIONS[role]
