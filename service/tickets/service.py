"""Ticket data access: who is acting, finding tickets, and the filtered lists the API and the pages share.
(State transitions are flows: service/flows/lifecycle.py.)"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, func, literal, or_, union
from sqlmodel import Session, col, select

from service.areas.models import UNPLACED, Area
from service.auth.models import Role, User
from service.clock import utcnow
from service.errors import (
    NotFoundError,
)
from service.tickets.models import OPEN_STATES, Ticket, TicketAssist, TicketEvent, TicketRound
from service.tickets.statemachine import SYSTEM

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    name: str
    role: str
    office: str | None = None
    area_id: int | None = None

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(name=user.name, role=user.role, office=user.office, area_id=user.area_id)


HOTLINE = Actor(name="hotline", role=SYSTEM)
SYSTEM_ACTOR = Actor(name="system", role=SYSTEM)


# Intake ------------------------------------------------------------------------------------------------------


def get_by_external_id(*, session: Session, external_id: str) -> Ticket | None:
    return session.exec(select(Ticket).where(Ticket.external_id == external_id)).first()


# Queries -----------------------------------------------------------------------------------------------------


def area_subtree(root: int | None) -> Any:
    """The ids of an area and of every area under it (a 片区's 居民区 and their 网格): what a patrol may see."""
    if root is None:
        return select(Area.id).where(false())
    children = select(Area.id).where(Area.parent_id == root)
    grandchildren = select(Area.id).where(col(Area.parent_id).in_(children))
    return union(select(literal(root)), children, grandchildren)


def assisted_by(office: str | None) -> Any:
    """The ids of the tickets `office` assists (联勤联动): it sees them as well as its own."""
    return select(TicketAssist.ticket_id).where(TicketAssist.office == office)


def is_assisting(*, session: Session, ticket_id: int, office: str | None) -> bool:
    found = session.exec(
        select(TicketAssist.id).where(TicketAssist.ticket_id == ticket_id, TicketAssist.office == office)
    ).first()
    return found is not None


def _visible(statement: Any, actor: Actor) -> Any:
    if actor.role == Role.office:
        return statement.where(or_(col(Ticket.office) == actor.office, col(Ticket.id).in_(assisted_by(actor.office))))
    if actor.role == Role.patrol:
        return statement.where(col(Ticket.area_id).in_(area_subtree(actor.area_id)))
    return statement


def _hidden(session: Session, ticket: Ticket, actor: Actor) -> bool:
    if actor.role == Role.office:
        if ticket.office == actor.office:
            return False
        assert ticket.id is not None
        return not is_assisting(session=session, ticket_id=ticket.id, office=actor.office)
    if actor.role == Role.patrol:
        return ticket.area_id is None or ticket.area_id not in set(
            session.execute(area_subtree(actor.area_id)).scalars().all()
        )
    return False


def get_ticket(*, session: Session, ticket_id: int, actor: Actor) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or _hidden(session, ticket, actor):
        # another office's ticket is reported as missing, so its existence does not leak
        raise NotFoundError(f"工单 {ticket_id} 不存在")
    return ticket


def timeline(*, session: Session, ticket_id: int) -> list[TicketEvent]:
    statement = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(col(TicketEvent.id))
    return list(session.exec(statement))


def rounds(*, session: Session, ticket_id: int) -> list[TicketRound]:
    """The finished rounds of a reopened ticket, oldest first."""
    statement = select(TicketRound).where(TicketRound.ticket_id == ticket_id).order_by(col(TicketRound.round))
    return list(session.exec(statement))


@dataclass(frozen=True)
class TicketFilter:
    state: str | None = None
    states: tuple[str, ...] | None = None
    office: str | None = None
    category: str | None = None
    grid: str | None = None
    community: str | None = None
    cell: str | None = None
    unplaced: bool = False  # 待定位: the registry matched no area, or more than one
    overdue: bool | None = None
    due_before: dt.datetime | None = None
    received_from: dt.datetime | None = None
    received_before: dt.datetime | None = None
    dispatch: str | None = None  # "auto": routed at intake with no person involved; "manual": by a dispatcher
    open_only: bool = False
    q: str | None = None


def _like(text: str) -> str:
    """A LIKE pattern that finds `text` literally: %, _ and the escape character match only themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(statement: Any, f: TicketFilter, now: dt.datetime) -> Any:
    for column, value in ((Ticket.state, f.state), (Ticket.office, f.office), (Ticket.category, f.category)):
        if value:
            statement = statement.where(column == value)
    if f.states is not None:
        statement = statement.where(col(Ticket.state).in_(f.states))
    for column, value in ((Ticket.grid, f.grid), (Ticket.community, f.community), (Ticket.cell, f.cell)):
        if value:
            statement = statement.where(column == value)
    if f.unplaced:
        statement = statement.where(col(Ticket.placement).in_([str(p) for p in UNPLACED]))
    open_states = [str(s) for s in OPEN_STATES]
    if f.open_only:
        statement = statement.where(col(Ticket.state).in_(open_states))
    if f.overdue is True:
        statement = statement.where(col(Ticket.state).in_(open_states), col(Ticket.resolve_due) < now)
    elif f.overdue is False:
        statement = statement.where(or_(col(Ticket.state).not_in(open_states), col(Ticket.resolve_due) >= now))
    if f.due_before:
        statement = statement.where(col(Ticket.resolve_due) < f.due_before)
    if f.received_from:
        statement = statement.where(col(Ticket.received_at) >= f.received_from)
    if f.received_before:
        statement = statement.where(col(Ticket.received_at) < f.received_before)
    if f.dispatch == "auto":
        statement = statement.where(col(Ticket.dispatched_at) == col(Ticket.created_at))
    elif f.dispatch == "manual":
        statement = statement.where(col(Ticket.dispatched_at) != col(Ticket.created_at))
    if f.q:
        pattern = _like(f.q)
        statement = statement.where(
            or_(
                *(
                    column.like(pattern, escape="\\")
                    for column in (col(Ticket.title), col(Ticket.content), col(Ticket.address), col(Ticket.external_id))
                )
            )
        )
    return statement


def list_tickets(
    *,
    session: Session,
    actor: Actor,
    filters: TicketFilter,
    page: int,
    page_size: int,
    now: dt.datetime | None = None,
    newest_first: bool = False,
) -> tuple[list[Ticket], int]:
    now = now or utcnow()
    base = _filtered(_visible(select(Ticket), actor), filters, now)
    total = session.exec(select(func.count()).select_from(base.subquery())).one()
    order = (
        (col(Ticket.received_at).desc(), col(Ticket.id).desc())
        if newest_first
        else (col(Ticket.resolve_due).asc(), col(Ticket.id))
    )
    rows = session.exec(base.order_by(*order).offset((page - 1) * page_size).limit(page_size))
    return list(rows), int(total)


def matching_tickets(
    *, session: Session, actor: Actor, filters: TicketFilter, now: dt.datetime, limit: int
) -> list[Ticket]:
    """Every visible ticket the filters match, up to `limit` (the queue's candidates, an export)."""
    base = _filtered(_visible(select(Ticket), actor), filters, now)
    return list(session.exec(base.order_by(col(Ticket.received_at).desc(), col(Ticket.id).desc()).limit(limit)))


def system_event(ticket: Ticket, *, action: str, note: str, data: dict[str, Any], now: dt.datetime) -> TicketEvent:
    """An event the system writes without a person (督办, calendar recompute): the state does not change."""
    return note_event(ticket, actor=SYSTEM_ACTOR, action=action, note=note, data=data, now=now)


def note_event(
    ticket: Ticket, *, actor: Actor, action: str, note: str, data: dict[str, Any], now: dt.datetime
) -> TicketEvent:
    """A timeline entry that changes no state (a place corrected, photos added, a problem filed on patrol)."""
    assert ticket.id is not None
    return TicketEvent(
        ticket_id=ticket.id,
        at=now,
        actor=actor.name,
        actor_role=actor.role,
        action=action,
        from_state=ticket.state,
        to_state=ticket.state,
        office=ticket.office,
        category=ticket.category,
        note=note,
        data=data,
    )
