"""photo evidence and patrols: ticket_photo holds each cleaned photo's place in the photo store, its step and who
took it; a patrol user (role patrol) is bound to an area of the registry

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_photo",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_role", sa.String(length=16), nullable=False),
        sa.Column("uploaded_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", "stage", "sha256", name="uq_ticket_photo"),
    )
    op.create_index("ix_ticket_photo_ticket", "ticket_photo", ["ticket_id", "id"], unique=False)
    with op.batch_alter_table("app_user") as batch_op:
        batch_op.add_column(sa.Column("area_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_app_user_area_id_area", "area", ["area_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("app_user") as batch_op:
        batch_op.drop_constraint("fk_app_user_area_id_area", type_="foreignkey")
        batch_op.drop_column("area_id")
    op.drop_index("ix_ticket_photo_ticket", table_name="ticket_photo")
    op.drop_table("ticket_photo")
