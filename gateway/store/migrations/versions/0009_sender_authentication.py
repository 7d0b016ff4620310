"""Sender authentication kept: each quarantined message's outcome (so a release rebuilds with
the same Authentication-Results and the console shows it), and the DMARC aggregate rows every
node hands in for the one report job of the cluster.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("auth", sa.Text()))
    op.create_table(
        "dmarc_rows",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=False, server_default=""),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(100), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("handed_in_at", sa.String(27), nullable=False),
        sa.Column("reported_at", sa.String(27)),
    )
    op.create_index("dmarc_rows_pending", "dmarc_rows", ["reported_at", "day", "domain"])
    op.create_index("dmarc_rows_source", "dmarc_rows", ["source"])


def downgrade() -> None:
    op.drop_index("dmarc_rows_source", table_name="dmarc_rows")
    op.drop_index("dmarc_rows_pending", table_name="dmarc_rows")
    op.drop_table("dmarc_rows")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("auth")
