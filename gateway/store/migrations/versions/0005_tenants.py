"""Tenants (one municipality each on a shared gateway): the tenant of each quarantined
message, of each decision on one, and of each user (whose console then shows that tenant's
mail only).

Rows written before this revision belong to no tenant: "" (a single installation), which is
what they were.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("tenant", sa.String(63), nullable=False, server_default=""))
        batch.create_index("messages_tenant", ["tenant", "received_at"])
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("tenant", sa.String(63), nullable=False, server_default=""))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("tenant", sa.String(63), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("tenant")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("tenant")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("messages_tenant")
        batch.drop_column("tenant")
