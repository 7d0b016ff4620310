"""The first schema: the quarantine index (as it was in quarantine/index.sqlite3), the users
of the held-mail workflow, and its recorded decisions.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIME = sa.String(27)  # RFC 3339 UTC text, fixed width (gateway.store.schema.UtcTime)


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("queue_id", sa.Text, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("stored_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("client", sa.Text, nullable=False),
        sa.Column("helo", sa.Text, nullable=False),
        sa.Column("mail_from", sa.Text, nullable=False),
        sa.Column("rcpt_to", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("stored_size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("verdict", sa.String(20)),
        sa.Column("reasons", sa.Text, nullable=False, server_default="[]"),
        sa.Column("message_id", sa.Text),
        sa.Column("from_", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("state", sa.String(30), nullable=False, server_default="queued"),
    )
    op.create_index("messages_queue_id", "messages", ["queue_id"])
    op.create_index("messages_received_at", "messages", ["received_at"])
    op.create_index("messages_state", "messages", ["state", "received_at"])
    op.create_index("messages_verdict", "messages", ["verdict", "received_at"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "message",
            sa.String(40),
            sa.ForeignKey("messages.id", ondelete="CASCADE", name="requests_message_fk"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("requested_at", TIME, nullable=False),
        sa.Column("decided_by", sa.String(100)),
        sa.Column("decided_at", TIME),
        sa.Column("decision_reason", sa.Text),
        sa.Column("expires_at", TIME),
        sa.Column("parts", sa.Text, nullable=False, server_default="[]"),
        sa.Column("raised_limits", sa.Text, nullable=False, server_default="{}"),
        sa.Column("previous_state", sa.String(30), nullable=False),
        sa.Column("carried_out_at", TIME),
        sa.Column("queue_ids", sa.Text, nullable=False, server_default="[]"),
        sa.Column("outcome", sa.Text),
    )
    op.create_index("requests_message", "requests", ["message", "id"])
    op.create_index("requests_state", "requests", ["state", "id"])


def downgrade() -> None:
    op.drop_table("requests")
    op.drop_table("users")
    op.drop_table("messages")
