"""hotspots duplicates reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:46:15.203834
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "report_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("created_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("pushed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day", name="uq_report_day"),
    )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("building_key", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("hotspot", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("hotspot_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("recurrence", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("duplicate_of_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("followed_up_at", service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_ticket_building_key"), ["building_key"], unique=False)
        batch_op.create_foreign_key("fk_ticket_duplicate_of", "ticket", ["duplicate_of_id"], ["id"])

    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("office", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("category", sa.String(length=64), nullable=True))
    op.create_index("ix_ticket_event_at", "ticket_event", ["at", "action"])
    op.create_index("ix_ticket_resolved_at", "ticket", ["resolved_at"])
    op.create_index("ix_ticket_first_contact_due", "ticket", ["first_contact_due"])
    op.create_index("ix_ticket_followed_up_at", "ticket", ["followed_up_at"])
    op.create_index("ix_ticket_merged_into", "ticket", ["merged_into_id"])
    op.create_index(
        "ix_ticket_unresolved",
        "ticket",
        ["category", "resolve_due"],
        postgresql_where=sa.text("resolved_at IS NULL"),
        sqlite_where=sa.text("resolved_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_unresolved", "ticket")
    op.drop_index("ix_ticket_merged_into", "ticket")
    op.drop_index("ix_ticket_followed_up_at", "ticket")
    op.drop_index("ix_ticket_first_contact_due", "ticket")
    op.drop_index("ix_ticket_resolved_at", "ticket")
    op.drop_index("ix_ticket_event_at", "ticket_event")
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.drop_column("category")
        batch_op.drop_column("office")

    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_constraint("fk_ticket_duplicate_of", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_ticket_building_key"))
        batch_op.drop_column("followed_up_at")
        batch_op.drop_column("duplicate_of_id")
        batch_op.drop_column("recurrence")
        batch_op.drop_column("hotspot_reason")
        batch_op.drop_column("hotspot")
        batch_op.drop_column("building_key")

    op.drop_table("report_snapshot")
