"""The web console: logins of the workflow's users (password hash, TOTP secret), the
addresses each user reads mail for, the console's sessions and its sign-in limits.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIME = sa.String(27)  # RFC 3339 UTC text, fixed width (gateway.store.schema.UtcTime)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_hash", sa.Text))
        batch.add_column(sa.Column("totp_secret", sa.String(64)))
        batch.add_column(sa.Column("totp_last_step", sa.Integer))
    op.create_table(
        "user_addresses",
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE", name="user_addresses_user_fk"),
            nullable=False,
        ),
        sa.Column("address", sa.String(320), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "address", name="user_addresses_pk"),
    )
    op.create_index("user_addresses_address", "user_addresses", ["address"])
    op.create_table(
        "console_sessions",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("user_name", sa.String(100)),
    )
    op.create_index("console_sessions_expires_at", "console_sessions", ["expires_at"])
    op.create_index("console_sessions_user_name", "console_sessions", ["user_name"])
    op.create_table(
        "login_limits",
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(320), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start", TIME, nullable=False),
        sa.Column("locked_until", TIME),
        sa.PrimaryKeyConstraint("scope", "subject", name="login_limits_pk"),
    )


def downgrade() -> None:
    op.drop_table("login_limits")
    op.drop_index("console_sessions_user_name", "console_sessions")
    op.drop_index("console_sessions_expires_at", "console_sessions")
    op.drop_table("console_sessions")
    op.drop_index("user_addresses_address", "user_addresses")
    op.drop_table("user_addresses")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_secret")
        batch.drop_column("password_hash")
