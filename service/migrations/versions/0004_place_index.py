"""place index: the intake checks look tickets up by building and category; drop the indexes it makes redundant

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 03:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # without it the duplicate/hotspot queries walk every ticket of a category: fine at a thousand, not at a million
    op.create_index("ix_ticket_place", "ticket", ["building_key", "category", "id"], unique=False)
    # every index is written on every intake: building_key alone is the place index's prefix, state alone the
    # prefix of ix_ticket_state_office
    op.drop_index("ix_ticket_building_key", table_name="ticket")
    op.drop_index("ix_ticket_state", table_name="ticket")


def downgrade() -> None:
    op.create_index("ix_ticket_state", "ticket", ["state"], unique=False)
    op.create_index("ix_ticket_building_key", "ticket", ["building_key"], unique=False)
    op.drop_index("ix_ticket_place", table_name="ticket")
