"""Recompute open tickets' deadlines after the calendar changed (e.g. next year's holidays added to rules.yaml).

Deadlines that fell in a year without official data were estimated Monday–Friday and flagged. Once the rules cover
that year, each open ticket's clocks are computed again from their own starts, by the same rules as when they were
set (docs/DEADLINES.md); a ticket whose deadlines move gets a `recalendar` event naming each change. Clocks that are
already over (a recorded 先行联系, a 办结) keep their deadline: their verdict was given. Running it twice changes
nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col, select

from service.deadlines.service import DeadlinePolicy
from service.rules import ServiceRules
from service.tickets.models import OPEN_STATES, Ticket
from service.tickets.service import system_event

BATCH = 200
ACTION = "recalendar"


@dataclass
class Change:
    ticket_id: int
    external_id: str
    moved: dict[str, tuple[dt.datetime, dt.datetime]] = field(default_factory=dict)
    estimated: bool = False


def _recomputed(ticket: Ticket, policy: DeadlinePolicy) -> tuple[dict[str, dt.datetime], bool]:
    """The deadlines this ticket's clocks give under today's calendar, and whether any is still an estimate."""
    rules = policy.rules
    start = ticket.clock_start or ticket.created_at
    years: set[int] = set()
    due: dict[str, dt.datetime] = {}
    if ticket.reopen_count:
        # a 重办 round's clocks run from the round's start (docs/DEADLINES.md#重办); earlier rounds are archived
        reopened = policy.reopened(
            start=ticket.resolve_clock_start or start, category=ticket.category, urgent=ticket.is_urgent
        )
        years.update(reopened.uncovered_years)
        if ticket.first_contact_at is None:
            due["first_contact_due"] = reopened.first_contact_due
        due["resolve_due"] = reopened.resolve_due
    else:
        original = policy.initial(
            start=start, category=ticket.category, kind=ticket.kind, urgent=ticket.is_urgent, upstream=ticket.deadline
        )
        years.update(original.uncovered_years)
        if ticket.first_contact_at is None:
            due["first_contact_due"] = original.first_contact_due
        due["resolve_due"] = original.resolve_due
        if ticket.extension_state == "approved" and ticket.extension_days:
            extended = policy.extended(start=start, current_due=original.resolve_due, days=ticket.extension_days)
            years.update(extended.uncovered_years)
            due["resolve_due"] = max(extended.due, original.resolve_due)
    if ticket.supervised_at is not None:
        supervised = policy.add(ticket.supervised_at, rules.deadlines.supervise)
        years.update(supervised.uncovered_years)
        due["supervise_due"] = supervised.due
    return due, bool(years)


def _apply(session: Session, ticket: Ticket, policy: DeadlinePolicy, now: dt.datetime, dry_run: bool) -> Change | None:
    assert ticket.id is not None
    due, estimated = _recomputed(ticket, policy)
    change = Change(ticket.id, ticket.external_id, estimated=estimated)
    for name, value in due.items():
        before = getattr(ticket, name)
        if before != value:
            change.moved[name] = (before, value)
    if not change.moved and estimated == ticket.calendar_estimated:
        return None
    if dry_run:
        return change
    for name, (_, value) in change.moved.items():
        setattr(ticket, name, value)
    ticket.calendar_estimated = estimated
    ticket.updated_at = now
    session.add(ticket)
    data = {name: {"from": a.isoformat() if a else None, "to": b.isoformat()} for name, (a, b) in change.moved.items()}
    note = "日历更新后重算时限" if change.moved else "日历已覆盖，时限不再是估算"
    session.add(system_event(ticket, action=ACTION, note=note, data={**data, "calendar_estimated": estimated}, now=now))
    return change


def recompute_open(engine: Engine, rules: ServiceRules, *, now: dt.datetime, dry_run: bool = False) -> list[Change]:
    """Recompute every open ticket's deadlines under the rules' calendar; returns the tickets that changed."""
    policy = DeadlinePolicy(rules)
    changes: list[Change] = []
    after = 0
    while True:
        with Session(engine, expire_on_commit=False) as session:
            batch = session.exec(
                select(Ticket)
                .where(col(Ticket.state).in_([str(s) for s in OPEN_STATES]), col(Ticket.id) > after)
                .order_by(col(Ticket.id))
                .limit(BATCH)
            ).all()
            if not batch:
                return changes
            found = [c for t in batch if (c := _apply(session, t, policy, now, dry_run)) is not None]
            try:
                session.commit()
            except StaleDataError:
                # a person changed one of these tickets meanwhile: read the batch again and recompute it
                session.rollback()
                continue
            changes.extend(found)
            after = batch[-1].id or after
