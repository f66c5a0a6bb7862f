"""rounds of a reopened ticket kept: ticket_round holds each finished round's clocks and outcome

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 13:00:00

Before this revision a 重办 overwrote the ticket's 办结 deadline and cleared its 先行联系, and a second 办结 replaced
the first. The earlier rounds of tickets reopened before now are rebuilt from their timelines: when each was
contacted, resolved (with its result and note), rated and supervised, and whether the contact and the 办结 were on
time. Their deadlines were overwritten and are not in the events, so each is set to the instant that gives the
recorded verdict (the act itself when on time, one second before it when late), and the round is marked
`reconstructed`. The ticket keeps only its current round's outcome.
"""

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import service.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = service.db.UTCDateTime(timezone=True)
_OUTCOME = (
    "first_contact_at",
    "resolved_at",
    "resolve_result",
    "resolve_note",
    "supervised_at",
    "supervise_due",
    "satisfaction",
    "followed_up_at",
    "closed_at",
)
_OPEN = ("reopened", "accepted", "contacted")


def upgrade() -> None:
    op.create_table(
        "ticket_round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("office", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("started_at", _UTC, nullable=False),
        sa.Column("first_contact_due", _UTC, nullable=True),
        sa.Column("first_contact_at", _UTC, nullable=True),
        sa.Column("resolve_due", _UTC, nullable=True),
        sa.Column("resolved_at", _UTC, nullable=True),
        sa.Column("resolve_result", sa.String(length=16), nullable=True),
        sa.Column("resolve_note", sa.String(length=2000), nullable=True),
        sa.Column("supervised_at", _UTC, nullable=True),
        sa.Column("supervise_due", _UTC, nullable=True),
        sa.Column("satisfaction", sa.String(length=16), nullable=True),
        sa.Column("followed_up_at", _UTC, nullable=True),
        sa.Column("ended_at", _UTC, nullable=False),
        sa.Column("reconstructed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", "round", name="uq_ticket_round"),
    )
    for column in ("resolved_at", "resolve_due", "first_contact_due", "followed_up_at", "ended_at"):
        op.create_index(f"ix_ticket_round_{column}", "ticket_round", [column], unique=False)
    _rebuild_rounds()


def _verdict(at: dt.datetime | None, on_time: Any) -> dt.datetime | None:
    if at is None:
        return None
    return at if on_time is not False else at - dt.timedelta(seconds=1)


def _rebuild_rounds() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    ticket = sa.Table("ticket", meta, autoload_with=bind)
    event = sa.Table("ticket_event", meta, autoload_with=bind)
    rounds = sa.Table("ticket_round", meta, autoload_with=bind)
    reopened = bind.execute(sa.select(ticket).where(ticket.c.reopen_count > 0)).mappings().all()
    for row in reopened:
        events = (
            bind.execute(sa.select(event).where(event.c.ticket_id == row["id"]).order_by(event.c.id)).mappings().all()
        )
        current: dict[str, Any] = dict.fromkeys(_OUTCOME)
        verdicts: dict[str, Any] = {}
        started, number = row["clock_start"] or row["created_at"], 0
        for e in events:
            data = e["data"] or {}
            if e["action"] == "contact":
                current["first_contact_at"], verdicts["contact"] = e["at"], data.get("on_time")
            elif e["action"] == "resolve":
                current.update(resolved_at=e["at"], resolve_result=data.get("result"), resolve_note=e["note"])
                verdicts["resolve"] = data.get("on_time")
            elif e["action"] == "follow-up":
                current.update(satisfaction=data.get("satisfaction"), followed_up_at=e["at"])
            elif e["action"] == "supervise" and data.get("supervise_due"):
                current.update(supervised_at=e["at"], supervise_due=dt.datetime.fromisoformat(data["supervise_due"]))
            if e["to_state"] != "reopened":
                continue
            record = {k: v for k, v in current.items() if k != "closed_at"}
            bind.execute(
                rounds.insert().values(
                    ticket_id=row["id"],
                    round=number,
                    office=e["office"],
                    category=e["category"],
                    started_at=started,
                    first_contact_due=_verdict(current["first_contact_at"], verdicts.get("contact")),
                    resolve_due=_verdict(current["resolved_at"], verdicts.get("resolve")),
                    ended_at=e["at"],
                    reconstructed=True,
                    **record,
                )
            )
            current, verdicts, started, number = dict.fromkeys(_OUTCOME), {}, e["at"], number + 1
        if row["state"] == "closed":
            current["closed_at"] = row["closed_at"]
        changes: dict[str, Any] = dict(current)
        if row["state"] in _OPEN and current["first_contact_at"] is None:
            # the old 重办 kept the original 先行联系 deadline; the round's own is owed by its 办结 deadline
            changes["first_contact_due"] = row["resolve_due"]
        bind.execute(ticket.update().where(ticket.c.id == row["id"]).values(**changes))


def downgrade() -> None:
    for column in ("resolved_at", "resolve_due", "first_contact_due", "followed_up_at", "ended_at"):
        op.drop_index(f"ix_ticket_round_{column}", table_name="ticket_round")
    op.drop_table("ticket_round")
