"""years of tickets stay fast:
- each rollup day keeps the hours to resolve of the rounds resolved that day (sorted doubles), so a period's exact
  办结时长 median reads the rollup instead of sorting every resolution;
- the parts an assisting office recorded in a period are found by an index on part_at;
- the dispatcher queue, the overdue list's count and the report's 超期未办结 read small partial indexes of the open
  tickets alone (on PostgreSQL these carry the columns those queries read);
- the hotspot list finds its flagged places among the flagged tickets, then those places' tickets of its window by
  (building, category, received_at).

The days built before this revision have no hours, so they are marked unbuilt: reports compute those days from the
tickets (as exact, only slower) until the scheduler's rollup job has built them again, 31 days per run, or
`hotline report rollup` builds them all at once.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# as they are at this revision (written out: a migration never imports code that will change)
OPEN = (
    "state IN ('accepted', 'contacted', 'dispatched', 'pending_review', 'received', 'reopened', "
    "'resolution_review', 'returned')"
)
QUEUE_COLUMNS = [
    "state",
    "is_urgent",
    "first_contact_due",
    "first_contact_at",
    "resolve_warn_at",
    "contact_warn_at",
    "extension_state",
    "hotspot",
    "office",
    "category",
    "grid",
]
OPEN_DUE_COLUMNS = [
    "state",
    "office",
    "category",
    "grid",
    "created_at",
    "reopen_count",
    "resolve_clock_start",
    "merged_into_id",
]
UNRESOLVED = "resolved_at IS NULL"

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report_rollup") as batch:
        batch.add_column(sa.Column("hours", sa.LargeBinary(), nullable=True))
    op.execute("DELETE FROM report_rollup_day")
    op.create_index("ix_ticket_assist_part_at", "ticket_assist", ["part_at"])
    # on PostgreSQL built CONCURRENTLY, outside the migration's transaction: intake keeps writing to a big table
    with op.get_context().autocommit_block():
        if op.get_bind().dialect.name == "postgresql":
            # the overdue list goes without its index for the second the small partial index takes to rebuild
            op.drop_index("ix_ticket_open_due", table_name="ticket", postgresql_concurrently=True, if_exists=True)
            op.create_index(
                "ix_ticket_open_due",
                "ticket",
                ["resolve_due", "id"],
                postgresql_include=OPEN_DUE_COLUMNS,
                postgresql_where=sa.text(UNRESOLVED),
                postgresql_concurrently=True,
            )
        op.create_index(
            "ix_ticket_place_received",
            "ticket",
            ["building_key", "category", "received_at"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.create_index(
            "ix_ticket_hotspot",
            "ticket",
            ["received_at"],
            postgresql_include=["building_key", "category", "merged_into_id", "office"],
            postgresql_where=sa.text("hotspot"),
            sqlite_where=sa.text("hotspot"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.create_index(
            "ix_ticket_queue",
            "ticket",
            ["warn_basis", "resolve_due", "id"],
            postgresql_include=QUEUE_COLUMNS,
            postgresql_where=sa.text(OPEN),
            sqlite_where=sa.text(OPEN),
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    op.drop_index("ix_ticket_queue", table_name="ticket")
    op.drop_index("ix_ticket_hotspot", table_name="ticket")
    op.drop_index("ix_ticket_place_received", table_name="ticket")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_ticket_open_due", table_name="ticket")
        op.create_index("ix_ticket_open_due", "ticket", ["resolve_due", "id"], postgresql_where=sa.text(UNRESOLVED))
    op.drop_index("ix_ticket_assist_part_at", table_name="ticket_assist")
    with op.batch_alter_table("report_rollup") as batch:
        batch.drop_column("hours")
