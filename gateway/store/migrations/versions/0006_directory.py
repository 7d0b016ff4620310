"""The directory: groups (課) and their members, and which import manages each user.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("directory", sa.String(10)))
    op.create_table(
        "directory_groups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
    )
    op.create_table(
        "group_members",
        sa.Column(
            "group_id",
            sa.Integer,
            sa.ForeignKey("directory_groups.id", ondelete="CASCADE", name="group_members_group_fk"),
            nullable=False,
        ),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE", name="group_members_user_fk"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name="group_members_pk"),
    )
    op.create_index("group_members_user", "group_members", ["user_id"])


def downgrade() -> None:
    op.drop_index("group_members_user", "group_members")
    op.drop_table("group_members")
    op.drop_table("directory_groups")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("directory")
