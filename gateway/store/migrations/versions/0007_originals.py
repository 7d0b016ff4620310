"""Originals in the database: each original's gzip stream in pieces (``original_chunks``), and
on each quarantine entry where its original is kept (``kept_in``).

Rows written before this revision have their original in a file on their node's disk: their
``kept_in`` is "directory", so an installation that upgrades reads them where they are.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("kept_in", sa.String(10), nullable=False, server_default="directory")
        )
    op.create_table(
        "original_chunks",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", "seq", name="original_chunks_pk"),
    )


def downgrade() -> None:
    op.drop_table("original_chunks")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("kept_in")
