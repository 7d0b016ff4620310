"""Nodes (several share one store): the node that quarantined each message, the node that
carried out each decision, and the node carrying one out now (a lease, so no two nodes carry
out the same decision).

Rows written before this revision were written by the only node there was; their node is ""
(unknown), never guessed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("node", sa.String(100), nullable=False, server_default=""))
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("carried_out_by", sa.String(100)))
        batch.add_column(sa.Column("claimed_by", sa.String(100)))
        batch.add_column(sa.Column("claimed_until", sa.String(27)))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
        batch.drop_column("carried_out_by")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("node")
