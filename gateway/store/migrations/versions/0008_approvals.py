"""k of n approval of held outbound mail: each approver's approval of a decision, recorded
once per approver; the decision is approved when its group's ``approvals_required`` are in.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column(
            "request",
            sa.Integer,
            sa.ForeignKey("requests.id", ondelete="CASCADE", name="approvals_request_fk"),
            nullable=False,
        ),
        sa.Column("approver", sa.String(100), nullable=False),
        sa.Column("approved_at", sa.String(27), nullable=False),
        sa.Column("comment", sa.Text),
        sa.PrimaryKeyConstraint("request", "approver", name="approvals_pk"),
    )


def downgrade() -> None:
    op.drop_table("approvals")
