"""clocks that do not overwrite each other: the original start kept, 督办 with a deadline of its own, tickets pushed
late marked, 受理量 by received_at

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00

Tickets escalated before this revision had their 办结 deadline replaced by the 督办 deadline; the original is in
the `supervise` event (`overdue_due`), so it is put back and the 督办 deadline moves to `supervise_due`. A returned
ticket now waits in the dispatcher's review (`pending_review`): tickets still in the old `returned` state move there.
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.add_column(sa.Column("clock_start", service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("supervise_due", service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("received_late", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index("ix_ticket_received_at", ["received_at"], unique=False)
    ticket = sa.table(
        "ticket",
        sa.column("id", sa.Integer),
        sa.column("created_at", service.db.UTCDateTime(timezone=True)),
        sa.column("clock_start", service.db.UTCDateTime(timezone=True)),
        sa.column("resolve_due", service.db.UTCDateTime(timezone=True)),
        sa.column("supervise_due", service.db.UTCDateTime(timezone=True)),
        sa.column("state", sa.String),
        sa.column("needs_review", sa.Boolean),
    )
    event = sa.table(
        "ticket_event",
        sa.column("id", sa.Integer),
        sa.column("ticket_id", sa.Integer),
        sa.column("action", sa.String),
        sa.column("data", sa.JSON),
    )
    bind = op.get_bind()
    bind.execute(ticket.update().values(clock_start=ticket.c.created_at))
    bind.execute(ticket.update().where(ticket.c.state == "returned").values(state="pending_review", needs_review=True))
    rows = bind.execute(
        sa.select(event.c.ticket_id, event.c.data).where(event.c.action == "supervise").order_by(event.c.id)
    )
    for ticket_id, data in rows.all():
        if not data or "overdue_due" not in data or "supervise_due" not in data:
            continue
        bind.execute(
            ticket.update()
            .where(ticket.c.id == ticket_id)
            .values(
                resolve_due=dt.datetime.fromisoformat(data["overdue_due"]),
                supervise_due=dt.datetime.fromisoformat(data["supervise_due"]),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.drop_index("ix_ticket_received_at")
        batch_op.drop_column("received_late")
        batch_op.drop_column("supervise_due")
        batch_op.drop_column("clock_start")
