"""reports from rollups: report_rollup holds each local day's additive report figures per office × category ×
片区, report_rollup_day the days it holds, report_dirty the UTC days a write has touched since (append-only); the
days are built by the scheduler's rollup job or `hotline report rollup`, and until then read live

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_dirty",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_report_dirty_day", "report_dirty", ["day"])
    op.create_table(
        "report_rollup_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("built_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "report_rollup",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("office", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("grid", sa.String(length=32), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("hotspots", sa.Integer(), nullable=False),
        sa.Column("discovered", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.Column("due", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.Column("contact_due", sa.Integer(), nullable=False),
        sa.Column("contact_on_time", sa.Integer(), nullable=False),
        sa.Column("solved", sa.Integer(), nullable=False),
        sa.Column("explained", sa.Integer(), nullable=False),
        sa.Column("rated", sa.Integer(), nullable=False),
        sa.Column("satisfaction_sum", sa.Float(), nullable=False),
        sa.Column("dispatched", sa.Integer(), nullable=False),
        sa.Column("returned", sa.Integer(), nullable=False),
        sa.Column("reopened", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("hours_sum", sa.Float(), nullable=False),
        sa.Column("ledger_new", sa.Integer(), nullable=False),
        sa.Column("ledger_recurrence", sa.Integer(), nullable=False),
        sa.Column("ledger_reopened", sa.Integer(), nullable=False),
        sa.Column("ledger_closed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "office", "category", "grid"),
    )


def downgrade() -> None:
    op.drop_table("report_rollup")
    op.drop_table("report_rollup_day")
    op.drop_index("ix_report_dirty_day", table_name="report_dirty")
    op.drop_table("report_dirty")
