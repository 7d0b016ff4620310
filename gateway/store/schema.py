"""The store's tables as the code of this version reads and writes them (SQLAlchemy Core).

The migrations in :mod:`gateway.store.migrations` build exactly this schema (a test compares
the two), so the code and every database it runs on agree. Later versions add tables and
columns through new migrations; nothing here is ever changed in place.

Times are stored as fixed-width RFC 3339 UTC text (``2026-11-22T01:08:34.123456Z``): text order
is time order on SQLite and PostgreSQL alike, and today's quarantine index used the same form,
so its rows move over unchanged.

Threat model: every text column that names mail (envelope, subject, reasons given by operators)
holds untrusted text, bounded and cleaned by the code that writes it; the database is private to
the service's user (the SQLite file is created mode 0600).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
)

TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_utc(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``; fixed width, so text order is time order."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("store times must be timezone-aware (got a naive datetime)")
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


class UtcTime(TypeDecorator[datetime]):
    """An aware datetime stored as :func:`format_utc` text."""

    impl = String(27)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        return None if value is None else format_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else parse_utc(str(value))


metadata = MetaData()

# One row per quarantined original (the index that lived in quarantine/index.sqlite3 before
# the store existed; same columns). ``state`` is a MessageState of the vocabulary.
messages = Table(
    "messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("queue_id", Text, nullable=False),
    Column("received_at", UtcTime, nullable=False),
    Column("stored_at", UtcTime, nullable=False),
    Column("updated_at", UtcTime, nullable=False),
    Column("client", Text, nullable=False),
    Column("helo", Text, nullable=False),
    Column("mail_from", Text, nullable=False),
    Column("rcpt_to", Text, nullable=False),  # a JSON list
    Column("size", Integer, nullable=False),
    Column("stored_size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("verdict", String(20)),
    Column("reasons", Text, nullable=False, server_default="[]"),  # a JSON list
    Column("message_id", Text),
    Column("from_", Text),
    Column("subject", Text),
    Column("state", String(30), nullable=False, server_default="queued"),
    # Unlock attempts made (PPAP, migration 0002): how many, never which password.
    Column("unlock_attempts", Integer, nullable=False, server_default="0"),
    # The node that quarantined it (migration 0003; "" before: the only node there was). Its
    # original is on that node's disk.
    Column("node", String(100), nullable=False, server_default=""),
    # The tenant whose recipients it carries (migration 0005; "" without tenants).
    Column("tenant", String(63), nullable=False, server_default=""),
    # Where its original is kept (migration 0007): "database" (the table original_chunks,
    # readable on every node) or "directory" (a file on ``node``'s disk; every row before
    # 0007, when the originals were only files).
    Column("kept_in", String(10), nullable=False, server_default="directory"),
    # What sender authentication found before the 250 (AuthOutcome.to_dict() as JSON; NULL
    # when it was off; migration 0009): a release rebuilds with it, the console shows it.
    Column("auth", Text),
    Index("messages_queue_id", "queue_id"),
    Index("messages_tenant", "tenant", "received_at"),
    Index("messages_received_at", "received_at"),
    Index("messages_state", "state", "received_at"),
    Index("messages_verdict", "verdict", "received_at"),
)

# The people who act on held mail. ``role`` is a UserRole of the vocabulary. The command line
# acts as the operating-system account that runs it (gateway.service.identity); the web console
# will add logins to this table.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", UtcTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    # The web console's login (migration 0004): a password hash (the console's hasher, argon2),
    # the TOTP secret of approvers and admins, and the last time step a code was used for (a
    # code is never accepted twice).
    Column("password_hash", Text),
    Column("totp_secret", String(64)),
    Column("totp_last_step", Integer),
    # The tenant whose mail the user sees and acts on (migration 0005); "" = every tenant's
    # (the cluster's own users, and every user of a single installation).
    Column("tenant", String(63), nullable=False, server_default=""),
    # The import that manages the user (migration 0006): "csv", "ldap", or NULL (added by hand).
    Column("directory", String(10)),
)

# The addresses whose mail a user sees in the console (a recipient); several users may share
# one address (a 課's shared mailbox). Addresses are stored lower-cased.
user_addresses = Table(
    "user_addresses",
    metadata,
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="CASCADE", name="user_addresses_user_fk"),
        nullable=False,
    ),
    Column("address", String(320), nullable=False),
    PrimaryKeyConstraint("user_id", "address", name="user_addresses_pk"),
    Index("user_addresses_address", "address"),
)

# The web console's sessions: the key (generated by the framework), the signed session data,
# when it expires, and whose it is (so a user's sessions can be ended together). A logout
# deletes its row: the session is revoked on the server, whatever the browser keeps.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("data", Text, nullable=False),
    Column("expires_at", UtcTime, nullable=False),
    Column("user_name", String(100)),
    Index("console_sessions_expires_at", "expires_at"),
    Index("console_sessions_user_name", "user_name"),
)

# Failed sign-ins counted per ``scope`` (``user``: a user name; ``address``: a client address),
# each with its own limit, so one person's mistakes lock out that person and not everyone
# behind the same proxy. A row is deleted when its window has passed.
login_limits = Table(
    "login_limits",
    metadata,
    Column("scope", String(10), nullable=False),
    Column("subject", String(320), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("window_start", UtcTime, nullable=False),
    Column("locked_until", UtcTime),
    PrimaryKeyConstraint("scope", "subject", name="login_limits_pk"),
)

# Every decision on a held message: a release, or an exception (例外措置) that lets original
# parts cross, with who asked, who decided, why, until when, and what serve did with it.
# ``kind`` is a ReleaseKind and ``state`` a RequestState of the vocabulary. Rows are never
# deleted while their message exists: they are the record of the decision.
requests = Table(
    "requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "message",
        String(40),
        ForeignKey("messages.id", ondelete="CASCADE", name="requests_message_fk"),
        nullable=False,
    ),
    Column("kind", String(20), nullable=False),
    Column("state", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_by", String(100), nullable=False),
    Column("requested_at", UtcTime, nullable=False),
    Column("decided_by", String(100)),
    Column("decided_at", UtcTime),
    Column("decision_reason", Text),
    Column("expires_at", UtcTime),
    Column("parts", Text, nullable=False, server_default="[]"),  # a JSON list of part paths
    Column("raised_limits", Text, nullable=False, server_default="{}"),  # JSON: name -> value
    Column("previous_state", String(30), nullable=False),
    Column("carried_out_at", UtcTime),
    Column("queue_ids", Text, nullable=False, server_default="[]"),  # JSON: the copies spooled
    Column("outcome", Text),
    # The node that carried it out (migration 0003).
    Column("carried_out_by", String(100)),
    # The node carrying it out now, and until when no other node may take it (migration 0003).
    Column("claimed_by", String(100)),
    Column("claimed_until", UtcTime),
    # The tenant of its message, copied when the decision is opened (migration 0005).
    Column("tenant", String(63), nullable=False, server_default=""),
    Index("requests_message", "message", "id"),
    Index("requests_state", "state", "id"),
)

# The directory (migration 0006): the groups (課) of the staff, from `mukaika user import`
# (a CSV file or LDAP). A member whose role is approver approves the held outbound mail of
# the group's other members (上長承認). ``directory`` on a user names the import that manages
# it ("csv" or "ldap"); users added by hand have none and an import never touches them.
directory_groups = Table(
    "directory_groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
)

group_members = Table(
    "group_members",
    metadata,
    Column(
        "group_id",
        Integer,
        ForeignKey("directory_groups.id", ondelete="CASCADE", name="group_members_group_fk"),
        nullable=False,
    ),
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="CASCADE", name="group_members_user_fk"),
        nullable=False,
    ),
    PrimaryKeyConstraint("group_id", "user_id", name="group_members_pk"),
    Index("group_members_user", "user_id"),
)

# The originals kept in the database (migration 0007): the gzip stream of each original cut
# into pieces of at most gateway.evidence.quarantine.stored.CHUNK_BYTES, in order of ``seq``
# (concatenated they are the same .gz an on-disk original is). Written before the index row
# (like a file), so there is no foreign key: a crash between the two leaves chunks without a
# row, which the purge removes once past retention.
original_chunks = Table(
    "original_chunks",
    metadata,
    Column("id", String(40), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("id", "seq", name="original_chunks_pk"),
)

# Each approval of a decision that needs several (k of n approval of held outbound mail,
# migration 0008): one row per approver, never two; the decision is approved when its
# group's approvals_required are in, and one denial denies it.
approvals = Table(
    "approvals",
    metadata,
    Column(
        "request",
        Integer,
        ForeignKey("requests.id", ondelete="CASCADE", name="approvals_request_fk"),
        nullable=False,
    ),
    Column("approver", String(100), nullable=False),
    Column("approved_at", UtcTime, nullable=False),
    Column("comment", Text),
    PrimaryKeyConstraint("request", "approver", name="approvals_pk"),
)

# DMARC aggregate rows (migration 0009): each node hands in its day's evaluations, counted by
# row (source, identifiers, results); the cluster's one report job reports the rows of past
# days and marks them. ``policy`` and ``row`` are JSON (gateway.senderauth.reports).
dmarc_rows = Table(
    "dmarc_rows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", String(10), nullable=False),  # YYYY-MM-DD, UTC
    Column("domain", String(253), nullable=False),  # the policy domain
    # The tenant whose mail it counts ("" without tenants): reported with its own settings.
    Column("tenant", String(63), nullable=False, server_default=""),
    Column("policy", Text, nullable=False),
    Column("row", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("node", String(100), nullable=False),
    # The file the row was counted from ("node:file"): a file is never handed in twice.
    Column("source", String(300), nullable=False),
    Column("handed_in_at", UtcTime, nullable=False),
    Column("reported_at", UtcTime),
    Index("dmarc_rows_pending", "reported_at", "day", "domain"),
    Index("dmarc_rows_source", "source"),
)
