"""五违四必 key points (库内重点点位): the street's numbered places to clear, placed in the area registry, with their
违建 area, status and m² demolished; tickets link to a point by building, so nothing is added to ticket

Revision ID: 0012_key_points
Revises: 0011
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db

revision: str = "0012_key_points"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "key_point",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("found_at", sa.Date(), nullable=True),
        sa.Column("target_date", sa.Date(), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("building_key", sa.String(length=120), nullable=True),
        sa.Column("zone", sa.String(length=32), nullable=True),
        sa.Column("community", sa.String(length=64), nullable=True),
        sa.Column("cell", sa.String(length=64), nullable=True),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("placement", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cleared_at", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("demolished_m2", sa.Float(), nullable=True),
        sa.Column("created_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["area_id"], ["area.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code", name="uq_key_point_code"),
    )
    op.create_index("ix_key_point_building", "key_point", ["building_key"], unique=False)
    op.create_table(
        "key_point_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_point_id", sa.Integer(), nullable=False),
        sa.Column("at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["key_point_id"], ["key_point.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_key_point_change_point", "key_point_change", ["key_point_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_key_point_change_point", table_name="key_point_change")
    op.drop_table("key_point_change")
    op.drop_index("ix_key_point_building", table_name="key_point")
    op.drop_table("key_point")
