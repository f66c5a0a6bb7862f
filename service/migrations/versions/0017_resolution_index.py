"""the 办结时长 median reads a year of resolutions from an index alone: on PostgreSQL ix_ticket_resolved_at also
carries the columns it needs (INCLUDE), so no ticket row is visited; SQLite keeps its plain index

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 00:00:00
"""

from collections.abc import Sequence

from alembic import op

from service.tickets.models import RESOLUTION_COLUMNS

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_ticket_resolved_at", table_name="ticket")
    op.create_index("ix_ticket_resolved_at", "ticket", ["resolved_at"], postgresql_include=list(RESOLUTION_COLUMNS))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_ticket_resolved_at", table_name="ticket")
    op.create_index("ix_ticket_resolved_at", "ticket", ["resolved_at"])
