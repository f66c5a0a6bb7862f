"""area registry: 片区 → 居民区 → 网格 with their people and address patterns; each ticket's place in it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 16:00:00

Existing tickets keep their 片区 (`grid`) and have no placement until a registry is imported: `hotline areas
import` places every open ticket that no dispatcher placed by hand.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "area",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("leader", sa.String(length=32), nullable=False),
        sa.Column("leader_phone", sa.String(length=32), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["area.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("level", "name", name="uq_area_level_name"),
    )
    op.create_table(
        "area_pattern",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("lo", sa.Integer(), nullable=True),
        sa.Column("hi", sa.Integer(), nullable=True),
        sa.Column("parity", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["area_id"], ["area.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_area_pattern_area", "area_pattern", ["area_id"], unique=False)
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.add_column(sa.Column("community", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("cell", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("area_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("placement", sa.String(length=16), nullable=True))
        batch_op.create_foreign_key("fk_ticket_area_id_area", "area", ["area_id"], ["id"])
        batch_op.create_index("ix_ticket_community", ["community"], unique=False)
        batch_op.create_index("ix_ticket_cell", ["cell"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.drop_index("ix_ticket_cell")
        batch_op.drop_index("ix_ticket_community")
        batch_op.drop_constraint("fk_ticket_area_id_area", type_="foreignkey")
        batch_op.drop_column("placement")
        batch_op.drop_column("area_id")
        batch_op.drop_column("cell")
        batch_op.drop_column("community")
    op.drop_index("ix_area_pattern_area", table_name="area_pattern")
    op.drop_table("area_pattern")
    op.drop_table("area")
