"""indexes for the lists people use at millions of tickets: an office's tickets in a state by due date, a state's by
due date (the queue), a category's newest first, the unresolved by due date (overdue); they replace (state, office)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_NEW = {
    "ix_ticket_office_state_due": ["office", "state", "resolve_due", "id"],
    "ix_ticket_state_due": ["state", "resolve_due", "id"],
    "ix_ticket_category_received": ["category", "received_at", "id"],
}


def upgrade() -> None:
    # on PostgreSQL built CONCURRENTLY, outside the migration's transaction: intake keeps writing to a big table
    with op.get_context().autocommit_block():
        for name, columns in _NEW.items():
            op.create_index(name, "ticket", columns, postgresql_concurrently=True, if_not_exists=True)
        op.create_index(
            "ix_ticket_open_due",
            "ticket",
            ["resolve_due", "id"],
            postgresql_where=sa.text("resolved_at IS NULL"),
            sqlite_where=sa.text("resolved_at IS NULL"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )
    op.drop_index("ix_ticket_state_office", table_name="ticket")


def downgrade() -> None:
    op.create_index("ix_ticket_state_office", "ticket", ["state", "office"])
    op.drop_index("ix_ticket_open_due", table_name="ticket")
    for name in reversed(list(_NEW)):
        op.drop_index(name, table_name="ticket")
