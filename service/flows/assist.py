"""联勤联动 (docs/LIFECYCLE.md#联勤联动): a dispatcher asks other offices to help with a ticket; each assisting office
sees the ticket, records its part and its photos, and the lead office alone moves the ticket and closes it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from service.auth.models import DISPATCH_ROLES, Role
from service.errors import ConflictError, ForbiddenError, IllegalTransitionError, InvalidInputError, NotFoundError
from service.rules import ServiceRules
from service.tickets.models import (
    OPEN_STATES,
    AssistBody,
    AssistPartBody,
    AssistPublic,
    State,
    Ticket,
    TicketAssist,
)
from service.tickets.service import Actor, get_ticket, note_event
from service.tickets.statemachine import label


def assists(*, session: Session, ticket_id: int) -> list[TicketAssist]:
    """The ticket's assisting offices, in the order they were asked."""
    statement = select(TicketAssist).where(TicketAssist.ticket_id == ticket_id).order_by(col(TicketAssist.id))
    return list(session.exec(statement))


def assist_view(assist: TicketAssist, rules: ServiceRules) -> AssistPublic:
    name = rules.office_name(assist.office) if assist.office in rules.offices else assist.office
    return AssistPublic.model_validate(assist, from_attributes=True, update={"office_name": name})


def _open(ticket: Ticket, what: str) -> None:
    if State(ticket.state) not in OPEN_STATES:
        raise IllegalTransitionError(f"工单当前状态为「{label(ticket.state)}」，不能{what}")


def _dispatcher(actor: Actor, what: str) -> None:
    if actor.role not in DISPATCH_ROLES:
        raise ForbiddenError(f"只有派单员可以{what}")


def add_assist(
    *, session: Session, rules: ServiceRules, ticket_id: int, actor: Actor, body: AssistBody, now: dt.datetime
) -> TicketAssist:
    """Ask `body.office` to assist; asking an office already assisting changes nothing (a retry is harmless)."""
    _dispatcher(actor, "添加协办科室")
    ticket = get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    _open(ticket, "添加协办科室")
    if body.office not in rules.offices:
        raise InvalidInputError("office", f"未知科室「{body.office}」")
    if body.office == ticket.office:
        raise InvalidInputError("office", "主办科室不能同时是协办科室")
    found = _assist(session, ticket_id, body.office)
    if found is not None:
        return found
    note = (body.note or "").strip() or None
    assist = TicketAssist(ticket_id=ticket_id, office=body.office, asked_by=actor.name, asked_at=now, ask_note=note)
    session.add(assist)
    data = {"office": body.office, "office_name": rules.office_name(body.office)}
    session.add(note_event(ticket, actor=actor, action="assist", note=note or "", data=data, now=now))
    return _commit(session, assist, ticket_id, body.office)


def _assist(session: Session, ticket_id: int, office: str) -> TicketAssist | None:
    statement = select(TicketAssist).where(TicketAssist.ticket_id == ticket_id, TicketAssist.office == office)
    return session.exec(statement).first()


def _commit(session: Session, assist: TicketAssist, ticket_id: int, office: str) -> TicketAssist:
    try:
        session.commit()
    except IntegrityError:
        # the same request twice at once: the other one added it
        session.rollback()
        found = _assist(session, ticket_id, office)
        if found is None:
            raise
        return found
    session.refresh(assist)
    return assist


def remove_assist(
    *, session: Session, rules: ServiceRules, ticket_id: int, actor: Actor, office: str, now: dt.datetime
) -> None:
    """Take an office off the ticket: only before it recorded a part (what it did stays on the record)."""
    _dispatcher(actor, "移除协办科室")
    ticket = get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    assist = _assist(session, ticket_id, office)
    if assist is None:
        raise NotFoundError(f"「{office}」不是工单 {ticket_id} 的协办科室")
    if assist.part_at is not None:
        raise ConflictError("协办科室已记录协办情况，不能移除")
    session.delete(assist)
    name = rules.office_name(office) if office in rules.offices else office
    session.add(
        note_event(
            ticket, actor=actor, action="unassist", note="", data={"office": office, "office_name": name}, now=now
        )
    )
    session.commit()


def record_part(
    *, session: Session, rules: ServiceRules, ticket_id: int, actor: Actor, body: AssistPartBody, now: dt.datetime
) -> TicketAssist:
    """An assisting office records what it did; a later record replaces the text, and the timeline keeps both."""
    ticket = get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    if actor.role == Role.office:
        if body.office not in (None, actor.office):
            raise ForbiddenError("只能记录本科室的协办情况")
        office = actor.office or ""
    elif actor.role in DISPATCH_ROLES:
        if not body.office:
            raise InvalidInputError("office", "派单员代为记录时须写明协办科室（office）")
        office = body.office
    else:
        raise ForbiddenError("只有协办科室可以记录协办情况")
    _open(ticket, "记录协办情况")
    assist = _assist(session, ticket_id, office)
    if assist is None:
        raise ForbiddenError("本科室不是该工单的协办科室；主办科室请在办理中填写办理情况")
    note = body.note.strip()
    if not note:
        raise InvalidInputError("note", "协办情况不能为空")
    assist.part_note, assist.part_by, assist.part_at = note, actor.name, now
    session.add(assist)
    name = rules.office_name(office) if office in rules.offices else office
    session.add(
        note_event(
            ticket, actor=actor, action="assist-part", note=note, data={"office": office, "office_name": name}, now=now
        )
    )
    session.commit()
    session.refresh(assist)
    return assist
