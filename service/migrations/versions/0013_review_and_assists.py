"""办结审核 and 联勤联动: a ticket counts the dispatcher's rejections of its 办结 (with the last one's time and
reason); ticket_assist holds the offices assisting a ticket's lead office and the part each recorded

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db

revision: str = "0013"
down_revision: str | None = "0012_key_points"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("rejections", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("rejected_at", service.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("rejection_note", sa.String(length=2000), nullable=True))
    op.create_table(
        "ticket_assist",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("office", sa.String(length=64), nullable=False),
        sa.Column("asked_by", sa.String(length=64), nullable=False),
        sa.Column("asked_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ask_note", sa.String(length=2000), nullable=True),
        sa.Column("part_note", sa.String(length=2000), nullable=True),
        sa.Column("part_by", sa.String(length=64), nullable=True),
        sa.Column("part_at", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", "office", name="uq_ticket_assist"),
    )
    op.create_index("ix_ticket_assist_office", "ticket_assist", ["office", "ticket_id"])
    op.create_index("ix_ticket_assist_asked_at", "ticket_assist", ["asked_at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_assist_asked_at", table_name="ticket_assist")
    op.drop_index("ix_ticket_assist_office", table_name="ticket_assist")
    op.drop_table("ticket_assist")
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("rejection_note")
        batch.drop_column("rejected_at")
        batch.drop_column("rejections")
