"""learning from corrections: routing labels, the model that routed each ticket, the active model's history

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "routing_label",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=6000), nullable=False),
        sa.Column("model_version", sa.String(length=120), nullable=True),
        sa.Column("model_category", sa.String(length=64), nullable=True),
        sa.Column("model_office", sa.String(length=64), nullable=True),
        sa.Column("model_confidence", sa.Float(), nullable=True),
        sa.Column("auto_dispatched", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("office", sa.String(length=64), nullable=True),
        sa.Column("trainable", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_routing_label_at", "routing_label", ["at"], unique=False)
    op.create_index("ix_routing_label_ticket", "routing_label", ["ticket_id", "id"], unique=False)
    op.create_table(
        "model_activation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=120), nullable=False),
        sa.Column("at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_version", sa.String(length=120), nullable=True))
    # the version was always recorded inside the decision: copy it out where there is one
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "UPDATE ticket SET model_version = LEFT(classification::jsonb ->> 'model_version', 120) "
            "WHERE classification::jsonb ? 'model_version'"
        )
    else:
        op.execute(
            "UPDATE ticket SET model_version = substr(json_extract(classification, '$.model_version'), 1, 120) "
            "WHERE json_type(classification, '$.model_version') = 'text'"
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("model_version")
    op.drop_table("model_activation")
    op.drop_index("ix_routing_label_ticket", table_name="routing_label")
    op.drop_index("ix_routing_label_at", table_name="routing_label")
    op.drop_table("routing_label")
