"""The dispatcher queue (派单审核队列): which open tickets wait for the dispatcher, the most pressing first.

A ticket waits when it needs a dispatcher's decision (待审核, 退回, 办结审核, a 延期 request, a 冒头 hotspot) or
one of its clocks is 临期 (yellow) or 超期 (red); under 待定位 every open unplaced ticket waits. The most pressing
come first: urgent, then red, yellow, green, none, then the nearest 办结 due.

Red is a plain comparison with a due date. Yellow is not: it turns when a share of the clock's *working* time has
passed. So each ticket keeps the instant its lights turn yellow (`contact_warn_at`, `resolve_warn_at`), worked out
by the sweep job under the calendar named by `warn_basis` (docs/SCALING.md#派单审核队列). Tickets stamped under
today's calendar are selected, ordered, cut and counted by one query; the few not yet stamped (new, or a clock
just moved) have their lights worked out here, and the two are merged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from sqlalchemy import and_, case, func, or_, true
from sqlmodel import Session, col, select

from service.deadlines.lights import CONTACT_OWED, lights
from service.deadlines.service import DeadlinePolicy
from service.tickets.models import State, Ticket
from service.tickets.service import Actor, TicketFilter, matching_statement

# what a dispatcher must decide
REVIEW_STATES = (State.pending_review, State.returned, State.resolution_review)
_ORDER = {"red": 0, "yellow": 1, "green": 2, "none": 3}
_FAR = dt.datetime.max.replace(tzinfo=dt.UTC)

Waiting = tuple[Ticket, dict[str, str]]


def worst(light: dict[str, str]) -> str:
    if not light:
        return "none"
    return "red" if "red" in light.values() else "yellow" if "yellow" in light.values() else "green"


def _needs_review(ticket: Ticket) -> bool:
    return ticket.state in REVIEW_STATES or ticket.extension_state == "requested" or ticket.hotspot


def _key(item: Waiting) -> tuple[Any, ...]:
    ticket, light = item
    return (not ticket.is_urgent, _ORDER[worst(light)], ticket.resolve_due or _FAR, ticket.id)


def _light_key(item: Waiting) -> tuple[Any, ...]:
    return _key(item)[1:]


def _conditions(now: dt.datetime) -> tuple[Any, Any, Any, Any]:
    """SQL for a stamped ticket: some light red, some light yellow or red, some light at all, a decision due."""
    t = Ticket
    owed = and_(
        col(t.first_contact_due).is_not(None),
        col(t.first_contact_at).is_(None),
        col(t.state).in_([str(s) for s in CONTACT_OWED]),
    )
    red = or_(col(t.resolve_due) < now, and_(owed, col(t.first_contact_due) < now))
    warned = or_(col(t.resolve_warn_at) <= now, and_(owed, col(t.contact_warn_at) <= now))
    lit = or_(col(t.resolve_due).is_not(None), owed)
    review = or_(
        col(t.state).in_([str(s) for s in REVIEW_STATES]), col(t.extension_state) == "requested", col(t.hotspot)
    )
    return red, warned, lit, review


def dispatcher_queue(
    *, session: Session, actor: Actor, filters: TicketFilter, policy: DeadlinePolicy, now: dt.datetime, shown: int
) -> tuple[list[Waiting], int]:
    """The `shown` most pressing waiting tickets with their lights, and how many wait in all."""
    filters = replace(filters, open_only=True)
    return _pressing(session, actor, filters, policy, now, shown, waiting_only=not filters.unplaced, urgent_first=True)


def workbench(
    *, session: Session, actor: Actor, states: tuple[str, ...], policy: DeadlinePolicy, now: dt.datetime, shown: int
) -> tuple[list[Waiting], int]:
    """An office's tickets in `states`, the `shown` most pressing (red, yellow, green, none; then by due), and how many
    there are."""
    filters = TicketFilter(states=states, open_only=True)
    return _pressing(session, actor, filters, policy, now, shown, waiting_only=False, urgent_first=False)


def statements(
    base: Any, *, basis: str, now: dt.datetime, waiting_only: bool, urgent_first: bool
) -> tuple[Any, Any, tuple[Any, ...]]:
    """From the matching open tickets: the stamped ones' ids most pressing first, their count, and the unstamped
    tickets (in three parts). Each is a range of ix_ticket_queue; only the rows shown are loaded."""
    red, warned, lit, review = _conditions(now)
    rank = case((red, 0), (warned, 1), (lit, 2), else_=3)
    stamped = base.where(col(Ticket.warn_basis) == basis, or_(review, red, warned) if waiting_only else true())
    order = [rank, col(Ticket.resolve_due).asc().nulls_last(), col(Ticket.id)]
    if urgent_first:
        order.insert(0, col(Ticket.is_urgent).desc())
    # not stamped under today's calendar: new tickets and moved clocks until the sweep job runs, every open ticket
    # for one run after the calendar or the warning share changed. Three range queries, not one "IS NULL OR !=":
    # the planner answers that by walking the whole index
    basis_column = col(Ticket.warn_basis)
    others = (basis_column.is_(None), basis_column < basis, basis_column > basis)
    return (
        stamped.with_only_columns(col(Ticket.id)).order_by(*order),
        stamped.with_only_columns(func.count()),
        tuple(base.where(other) for other in others),
    )


def _pressing(
    session: Session,
    actor: Actor,
    filters: TicketFilter,
    policy: DeadlinePolicy,
    now: dt.datetime,
    shown: int,
    *,
    waiting_only: bool,
    urgent_first: bool,
) -> tuple[list[Waiting], int]:
    base = matching_statement(session=session, actor=actor, filters=filters, now=now)
    pick, count, unstamped_parts = statements(
        base, basis=policy.warn_basis, now=now, waiting_only=waiting_only, urgent_first=urgent_first
    )
    picked = list(session.exec(pick.limit(shown)))
    total = len(picked) if len(picked) < shown else session.exec(count).one()
    rows = {t.id: t for t in session.exec(select(Ticket).where(col(Ticket.id).in_(picked)))}
    known = [(rows[i], lights(rows[i], policy, now)) for i in picked]
    unstamped = [ticket for part in unstamped_parts for ticket in session.exec(part)]
    fresh = []
    for ticket in unstamped:
        light = lights(ticket, policy, now)
        if not waiting_only or _needs_review(ticket) or worst(light) in ("yellow", "red"):
            fresh.append((ticket, light))
    key = _key if urgent_first else _light_key
    return sorted(known + fresh, key=key)[:shown], total + len(fresh)
