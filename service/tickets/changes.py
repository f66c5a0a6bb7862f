"""Which days a write touches, for the report rollup (docs/SCALING.md#报表汇总).

Every ORM flush that adds or changes a ticket or a finished round, or adds an event, records in the same transaction
the UTC days of the times its report figures hang on, the old values and the new, so the rollup rebuilds exactly
those days and a rolled-up day is never stale without saying so. Writes that bypass the ORM (intake's bulk insert,
the area re-placement, retention) call mark() themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, insert, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from service.tickets.models import ChangedDay, State, Ticket, TicketEvent, TicketRound

# the times a ticket's or a finished round's figures are counted on (docs/METRICS.md), and the ledger's
TICKET_TIMES = ("received_at", "created_at", "resolved_at", "resolve_due", "first_contact_due", "followed_up_at")
ROUND_TIMES = ("started_at", "ended_at", "resolved_at", "resolve_due", "first_contact_due", "followed_up_at")
# a ticket's events and finished rounds are counted under its 片区, and only while it is not merged away; the
# ledger files its finished rounds under its current office and category, and drops a cancelled ticket's
MOVING_KEYS = ("grid", "merged_into_id", "office", "category")


def days_of(values: Iterable[Any]) -> set[dt.date]:
    """The UTC dates of the datetimes among `values` (naive ones are UTC, as stored)."""
    days = set()
    for value in values:
        if isinstance(value, dt.datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            days.add(aware.astimezone(dt.UTC).date())
    return days


def mark(conn: Connection, days: Iterable[dt.date]) -> None:
    """Record `days` (UTC) as touched, in the caller's transaction."""
    rows = [{"day": day} for day in sorted(set(days))]
    if rows:
        conn.execute(insert(ChangedDay.__table__), rows)  # type: ignore[attr-defined]


def attached_days(conn: Connection, ticket_ids: Iterable[int]) -> set[dt.date]:
    """The days of these tickets' events and finished rounds, whose counts move with the ticket's 片区 or merge."""
    ids = sorted(set(ticket_ids))
    e, r = TicketEvent.__table__.c, TicketRound.__table__.c  # type: ignore[attr-defined]
    days: set[dt.date] = set()
    # a re-placement can move thousands of tickets: a bounded IN list per query
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        days |= days_of(conn.execute(select(e.at).where(e.ticket_id.in_(chunk))).scalars())
        rounds = conn.execute(select(*[r[name] for name in ROUND_TIMES]).where(r.ticket_id.in_(chunk)))
        days |= days_of(value for row in rounds for value in row)
    return days


def _touched(obj: Any, names: Iterable[str]) -> set[dt.date]:
    """The old and new values of `names` on a pending or changed object."""
    state = inspect(obj)
    values: list[Any] = []
    for name in names:
        getattr(obj, name)  # an expired attribute is loaded, so its current value is known
        history = state.attrs[name].history
        values += [*history.added, *history.unchanged, *history.deleted]
    return days_of(values)


def _moved(obj: Any) -> bool:
    state = inspect(obj)
    if not state.persistent:
        return False
    if any(state.attrs[name].history.has_changes() for name in MOVING_KEYS):
        return True
    history = state.attrs["state"].history
    return State.cancelled in (*history.added, *history.deleted)


@event.listens_for(Session, "before_flush")
def _track(session: Session, flush_context: Any, instances: Any) -> None:
    days: set[dt.date] = set()
    moved: list[int] = []
    for obj in (*session.new, *session.dirty):
        if obj in session.dirty and not session.is_modified(obj):
            continue
        if isinstance(obj, Ticket):
            days |= _touched(obj, TICKET_TIMES)
            if obj.id is not None and _moved(obj):
                moved.append(obj.id)
        elif isinstance(obj, TicketRound):
            days |= _touched(obj, ROUND_TIMES)
        elif isinstance(obj, TicketEvent) and obj in session.new:
            days |= days_of([obj.at])
    if days or moved:
        conn = session.connection()
        mark(conn, days | attached_days(conn, moved))
