"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 01:08:19.311061
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("office", sa.String(length=64), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_user_name"),
        sa.UniqueConstraint("token_hash", name="uq_user_token"),
    )
    op.create_table(
        "ticket",
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", sa.String(length=5000), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("caller_name", sa.String(length=64), nullable=False),
        sa.Column("caller_phone", sa.String(length=32), nullable=False),
        sa.Column("urgency", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=True),
        sa.Column("deadline", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("office", sa.String(length=64), nullable=True),
        sa.Column("grid", sa.String(length=32), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("review_reasons", sa.JSON(), nullable=False),
        sa.Column("classification", sa.JSON(), nullable=False),
        sa.Column("classification_error", sa.String(length=500), nullable=True),
        sa.Column("is_urgent", sa.Boolean(), nullable=False),
        sa.Column("dispatched_at", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_contact_due", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolve_due", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("calendar_estimated", sa.Boolean(), nullable=False),
        sa.Column("accepted_at", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_contact_at", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolve_result", sa.String(length=16), nullable=True),
        sa.Column("resolve_note", sa.String(length=2000), nullable=True),
        sa.Column("satisfaction", sa.String(length=16), nullable=True),
        sa.Column("return_reason", sa.String(length=32), nullable=True),
        sa.Column("returned_at", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("extension_state", sa.String(length=16), nullable=True),
        sa.Column("extension_days", sa.Float(), nullable=True),
        sa.Column("extension_reason", sa.String(length=500), nullable=True),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["ticket.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id", name="uq_ticket_external_id"),
    )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_category"), ["category"], unique=False)
        batch_op.create_index("ix_ticket_created_at", ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_office"), ["office"], unique=False)
        batch_op.create_index("ix_ticket_resolve_due", ["resolve_due"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_state"), ["state"], unique=False)
        batch_op.create_index("ix_ticket_state_office", ["state", "office"], unique=False)

    op.create_table(
        "ticket_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_event_ticket", ["ticket_id", "id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_event_ticket")

    op.drop_table("ticket_event")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_state_office")
        batch_op.drop_index(batch_op.f("ix_ticket_state"))
        batch_op.drop_index("ix_ticket_resolve_due")
        batch_op.drop_index(batch_op.f("ix_ticket_office"))
        batch_op.drop_index("ix_ticket_created_at")
        batch_op.drop_index(batch_op.f("ix_ticket_category"))

    op.drop_table("ticket")
    op.drop_table("app_user")
