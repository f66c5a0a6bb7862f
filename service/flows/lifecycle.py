"""Every lifecycle action as one transaction: the state machine's check, the ticket's change, its timeline event,
the routing label a correction makes (learning), and the callback to the hotline system (notify)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from service.auth.models import Role
from service.clock import utcnow
from service.deadlines.service import DeadlinePolicy
from service.errors import (
    ConflictError,
    ForbiddenError,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
)
from service.evidence.service import check_after_photo
from service.learning.labels import DEFAULT_MISROUTE, auto_dispatched, label_for
from service.notify.service import enqueue
from service.rules import ServiceRules
from service.tickets.models import (
    ACTION_BODIES,
    OPEN_STATES,
    ActionNote,
    ExtensionBody,
    FollowUpBody,
    MergeBody,
    RejectBody,
    RerouteBody,
    ResolveBody,
    ReturnBody,
    State,
    Ticket,
    TicketEvent,
    TicketRound,
)
from service.tickets.service import Actor, get_ticket
from service.tickets.statemachine import TRANSITIONS, refusal

log = logging.getLogger(__name__)

# what an action says for the timeline: its note, and the event's data (stored as JSON)
Outcome = tuple[str | None, dict[str, Any]]


def _event(
    ticket: Ticket,
    actor: Actor,
    action: str,
    frm: str | None,
    to: str,
    at: dt.datetime,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> TicketEvent:
    assert ticket.id is not None
    return TicketEvent(
        ticket_id=ticket.id,
        at=at,
        actor=actor.name,
        actor_role=actor.role,
        action=action,
        from_state=frm,
        to_state=to,
        office=ticket.office,
        category=ticket.category,
        note=note,
        data=data or {},
    )


# Transitions -------------------------------------------------------------------------------------------------


def _authorize(ticket: Ticket, action: str, actor: Actor) -> None:
    transition = TRANSITIONS[action]
    if actor.role not in transition.roles:
        raise ForbiddenError(f"角色「{actor.role}」无权执行「{transition.label}」")
    if actor.role == Role.office and ticket.office != actor.office:
        # the ticket was visible, so this office assists it (联勤联动): the lead office alone moves it
        raise ForbiddenError(f"本科室是协办科室，不能「{transition.label}」：由主办科室办理和办结")
    reason = refusal(action, ticket.state)
    if reason:
        raise IllegalTransitionError(reason)


def _plain(body: BaseModel | dict[str, Any]) -> dict[str, Any]:
    return body.model_dump(exclude_none=True) if isinstance(body, BaseModel) else body


def _choice(value: str, allowed: tuple[str, ...], field: str, what: str) -> str:
    if value not in allowed:
        raise InvalidInputError(field, f"{what}必须是 {'、'.join(allowed)} 之一")
    return value


# what a round's work produced: kept in its TicketRound, cleared on the ticket when the next round starts
_ROUND_OUTCOME = (
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


def archived_round(ticket: Ticket, *, ended_at: dt.datetime) -> TicketRound:
    """The ticket's current round, frozen as it ends."""
    assert ticket.id is not None
    return TicketRound(
        ticket_id=ticket.id,
        round=ticket.reopen_count,
        office=ticket.office,
        category=ticket.category,
        started_at=ticket.resolve_clock_start or ticket.clock_start or ticket.created_at,
        first_contact_due=ticket.first_contact_due,
        first_contact_at=ticket.first_contact_at,
        resolve_due=ticket.resolve_due,
        resolved_at=ticket.resolved_at,
        resolve_result=ticket.resolve_result,
        resolve_note=ticket.resolve_note,
        supervised_at=ticket.supervised_at,
        supervise_due=ticket.supervise_due,
        satisfaction=ticket.satisfaction,
        followed_up_at=ticket.followed_up_at,
        ended_at=ended_at,
    )


class Lifecycle:
    """Performs actions on tickets: authorization, validation, state change and its event, in one transaction."""

    def __init__(
        self,
        *,
        session: Session,
        rules: ServiceRules,
        policy: DeadlinePolicy,
        now: dt.datetime | None = None,
        misroute_reasons: Sequence[str] = DEFAULT_MISROUTE,
    ):
        self.session = session
        self.rules = rules
        self.policy = policy
        self.now = now or utcnow()
        self.misroute_reasons = misroute_reasons

    def perform(self, *, ticket_id: int, action: str, actor: Actor, body: BaseModel | dict[str, Any]) -> Ticket:
        """Do `action` with its typed body (ACTION_BODIES; a plain dict is validated into it first)."""
        if action not in TRANSITIONS or action == "classify":
            raise NotFoundError(f"未知操作「{action}」")
        model = ACTION_BODIES[action]
        typed = body if isinstance(body, model) else model.model_validate(_plain(body))
        ticket = get_ticket(session=self.session, ticket_id=ticket_id, actor=actor)
        _authorize(ticket, action, actor)
        before, office_before = ticket.state, ticket.office
        was_auto = auto_dispatched(ticket)
        handler = getattr(self, "_" + action.replace("-", "_"))
        note, data = handler(ticket, typed, actor)
        ticket.updated_at = self.now
        self.session.add(ticket)
        event = _event(ticket, actor, action, before, ticket.state, self.now, note=note, data=data)
        if action == "return":
            event.office = office_before
        self.session.add(event)
        # what a person said about the routing is a training label: stored with the action, or not at all
        label = label_for(
            ticket=ticket,
            action=action,
            body=typed.model_dump(),
            actor_name=actor.name,
            actor_role=actor.role,
            now=self.now,
            was_auto=was_auto,
            misroute_reasons=self.misroute_reasons,
        )
        if label is not None:
            self.session.add(label)
        try:
            self.session.flush()
            # the callback is stored in the same transaction as the change: both happen or neither
            enqueue(session=self.session, ticket=ticket, event=event, now=self.now)
            self.session.commit()
        except (StaleDataError, IntegrityError) as exc:
            self.session.rollback()
            raise ConflictError("工单已被他人修改，请刷新后重试") from exc
        self.session.refresh(ticket)
        log.info(
            "ticket_transition",
            extra={"ticket_id": ticket.id, "action": action, "from": before, "to": ticket.state, "actor": actor.name},
        )
        return ticket

    # dispatcher ------------------------------------------------------------------------------------------------

    def _dispatch(self, ticket: Ticket) -> None:
        ticket.state = State.dispatched
        ticket.dispatched_at = self.now
        ticket.needs_review = False

    def _confirm(self, ticket: Ticket, body: ActionNote, actor: Actor) -> Outcome:
        self._dispatch(ticket)
        return body.note, {"category": ticket.category, "office": ticket.office}

    def _reroute(self, ticket: Ticket, body: RerouteBody, actor: Actor) -> Outcome:
        category, office = body.category, body.office
        if not category and not office:
            raise InvalidInputError("office", "改派需要给出新的承办科室（office）或分类（category）")
        if not (body.note or "").strip():
            # the reason is what the next reader of the timeline (and the model's trainer) needs
            raise InvalidInputError("note", "改派需要说明理由（note）")
        if category and category not in self.rules.categories:
            raise InvalidInputError("category", f"未知分类「{category}」")
        if office and office not in self.rules.offices:
            raise InvalidInputError("office", f"未知承办科室「{office}」")
        data = {"from_category": ticket.category, "from_office": ticket.office}
        changed = bool(category) and category != ticket.category
        ticket.category = category or ticket.category
        ticket.office = office or (self.rules.category_office(category) if category else ticket.office)
        ticket.return_reason = None
        self._dispatch(ticket)
        clocks = self._recompute_clocks(ticket) if changed else {}
        return body.note, {**data, "category": ticket.category, "office": ticket.office, **clocks}

    def _recompute_clocks(self, ticket: Ticket) -> dict[str, str]:
        """The new category's clocks (e.g. 群租's 24-hour first action) from the original start.

        A 先行联系 already recorded, a 重办 round and an approved 延期 keep their clocks."""
        start = ticket.clock_start or ticket.created_at
        clocks = self.policy.initial(
            start=start, category=ticket.category, kind=ticket.kind, urgent=ticket.is_urgent, upstream=ticket.deadline
        )
        changed: dict[str, str] = {}
        if ticket.first_contact_at is None and ticket.reopen_count == 0:
            ticket.first_contact_due, ticket.contact_basis = clocks.first_contact_due, clocks.contact_basis
            changed["first_contact_due"] = clocks.first_contact_due.isoformat()
        if ticket.reopen_count == 0 and ticket.extension_state != "approved":
            ticket.resolve_due, ticket.resolve_basis = clocks.resolve_due, clocks.resolve_basis
            changed["resolve_due"] = clocks.resolve_due.isoformat()
        ticket.calendar_estimated = ticket.calendar_estimated or bool(clocks.uncovered_years)
        return changed

    def _merge(self, ticket: Ticket, body: MergeBody, actor: Actor) -> Outcome:
        into_id = body.into_id
        if into_id == ticket.id:
            raise InvalidInputError("into_id", "不能合并到自身")
        main = self.session.get(Ticket, into_id)
        if main is None:
            raise InvalidInputError("into_id", f"主工单 {into_id} 不存在")
        if State(main.state) not in OPEN_STATES and main.state != State.resolved:
            raise InvalidInputError("into_id", f"主工单 {into_id} 已「{main.state}」，不能作为合并目标")
        if main.merged_into_id is not None:
            raise InvalidInputError("into_id", f"主工单 {into_id} 本身已被合并")
        ticket.state = State.cancelled
        ticket.merged_into_id = into_id
        return body.note, {"into_id": into_id}

    def _split(self, ticket: Ticket, body: ActionNote, actor: Actor) -> Outcome:
        if ticket.duplicate_of_id is None:
            raise IllegalTransitionError("该工单不是疑似重复工单，无需拆分")
        data = {"was_duplicate_of": ticket.duplicate_of_id}
        ticket.duplicate_of_id = None
        self._dispatch(ticket)
        return body.note, data

    def _cancel(self, ticket: Ticket, body: ActionNote, actor: Actor) -> Outcome:
        if not body.note:
            raise InvalidInputError("note", "作废需要说明原因（note）")
        ticket.state = State.cancelled
        return body.note, {}

    def _approve_extension(self, ticket: Ticket, body: ActionNote, actor: Actor) -> Outcome:
        if ticket.extension_state != "requested" or ticket.extension_days is None:
            raise IllegalTransitionError("该工单没有待审批的延期申请")
        assert ticket.resolve_due is not None
        # the cap counts from the original start: a confirm or reroute since then does not move it
        start = ticket.clock_start or ticket.created_at
        extended = self.policy.extended(start=start, current_due=ticket.resolve_due, days=ticket.extension_days)
        before = ticket.resolve_due
        ticket.resolve_due = max(extended.due, ticket.resolve_due)
        ticket.calendar_estimated = ticket.calendar_estimated or bool(extended.uncovered_years)
        ticket.extension_state = "approved"
        return body.note, {"from_due": before.isoformat(), "to_due": ticket.resolve_due.isoformat()}

    def _refuse_extension(self, ticket: Ticket, body: ActionNote, actor: Actor) -> Outcome:
        if ticket.extension_state != "requested":
            raise IllegalTransitionError("该工单没有待审批的延期申请")
        ticket.extension_state = "refused"
        return body.note, {}

    def _follow_up(self, ticket: Ticket, body: FollowUpBody, actor: Actor) -> Outcome:
        levels = tuple(self.rules.lifecycle.satisfaction)
        satisfaction = _choice(body.satisfaction, levels, "satisfaction", "满意度")
        ticket.satisfaction = satisfaction
        ticket.followed_up_at = self.now
        if satisfaction in self.rules.lifecycle.reopen_on:
            self._reopen_clock(ticket)
            return body.note, {"satisfaction": satisfaction, **self._round_data(ticket)}
        ticket.state = State.closed
        ticket.closed_at = self.now
        return body.note, {"satisfaction": satisfaction}

    def _reopen_clock(self, ticket: Ticket) -> None:
        """End the round: archive its clocks and outcome unchanged (they count in their own periods' reports), and
        start the next with a 先行联系 and a 办结 clock of its own from now (docs/DEADLINES.md#重办)."""
        self.session.add(archived_round(ticket, ended_at=self.now))
        clocks = self.policy.reopened(start=self.now, category=ticket.category, urgent=ticket.is_urgent)
        ticket.state = State.reopened
        ticket.reopen_count += 1
        ticket.resolve_clock_start = self.now
        ticket.first_contact_due, ticket.contact_basis = clocks.first_contact_due, clocks.contact_basis
        ticket.resolve_due, ticket.resolve_basis = clocks.resolve_due, clocks.resolve_basis
        for name in _ROUND_OUTCOME:
            setattr(ticket, name, None)
        ticket.calendar_estimated = ticket.calendar_estimated or bool(clocks.uncovered_years)

    def _reopen(self, ticket: Ticket, body: ActionNote, actor: Actor) -> Outcome:
        if not body.note:
            raise InvalidInputError("note", "重办需要说明原因（note）")
        self._reopen_clock(ticket)
        return body.note, self._round_data(ticket)

    @staticmethod
    def _round_data(ticket: Ticket) -> dict[str, Any]:
        assert ticket.resolve_due is not None and ticket.first_contact_due is not None
        return {
            "round": ticket.reopen_count,
            "first_contact_due": ticket.first_contact_due.isoformat(),
            "resolve_due": ticket.resolve_due.isoformat(),
        }

    # office ----------------------------------------------------------------------------------------------------

    def _accept(self, ticket: Ticket, body: ActionNote, actor: Actor) -> Outcome:
        ticket.state = State.accepted
        ticket.accepted_at = self.now
        return body.note, {}

    def _contact(self, ticket: Ticket, body: ActionNote, actor: Actor) -> Outcome:
        ticket.state = State.contacted
        ticket.first_contact_at = self.now
        on_time = ticket.first_contact_due is None or self.now <= ticket.first_contact_due
        return body.note, {"on_time": on_time}

    def _resolve(self, ticket: Ticket, body: ResolveBody, actor: Actor) -> Outcome:
        result = _choice(body.result, self.rules.lifecycle.resolve_results, "result", "办结结果")
        note = str(body.note or "").strip()
        if not note:
            raise InvalidInputError("note", "办结需要填写办理情况（note）")
        check_after_photo(session=self.session, rules=self.rules, ticket=ticket)
        ticket.resolve_result = result
        ticket.resolve_note = note
        if ticket.category in self.rules.evidence.review_resolution:
            # a proposal: it counts (resolved_at) and reaches the hotline only when the dispatcher approves it
            ticket.state = State.resolution_review
            return note, {"result": result, "review": True}
        return note, self._resolved(ticket, result)

    def _resolved(self, ticket: Ticket, result: str) -> dict[str, Any]:
        ticket.state = State.resolved
        ticket.resolved_at = self.now
        on_time = ticket.resolve_due is None or self.now <= ticket.resolve_due
        data: dict[str, Any] = {"result": result, "on_time": on_time}
        if ticket.first_contact_at is None:
            data["contact_missed"] = True  # allowed, and counted as 先行联系 not on time
        return data

    def _approve_resolution(self, ticket: Ticket, body: ActionNote, actor: Actor) -> Outcome:
        assert ticket.resolve_result is not None
        # the callback carries the office's 办结 note: that is what the citizen is told; the reviewer's note is kept
        data = self._resolved(ticket, ticket.resolve_result)
        if body.note:
            data["review_note"] = body.note
        return ticket.resolve_note, data

    def _reject_resolution(self, ticket: Ticket, body: RejectBody, actor: Actor) -> Outcome:
        reason = body.note.strip()
        if not reason:
            raise InvalidInputError("note", "驳回办结需要说明理由（note）：照片或办理情况哪里不能说明已整改")
        data = {"result": ticket.resolve_result, "resolve_note": ticket.resolve_note}
        ticket.state = State.contacted if ticket.first_contact_at is not None else State.accepted
        ticket.resolve_result = ticket.resolve_note = None
        ticket.rejections += 1
        ticket.rejected_at = self.now
        ticket.rejection_note = reason
        return reason, data

    def _return(self, ticket: Ticket, body: ReturnBody, actor: Actor) -> Outcome:
        reason = _choice(body.reason, self.rules.lifecycle.return_reasons, "reason", "退单理由")
        dispatched = ticket.dispatched_at or ticket.created_at
        window_end = self.policy.return_window_end(dispatched)
        if self.now > window_end:
            raise IllegalTransitionError(f"已超过退单时限（派单后 {self._window_text()}），不能退单")
        # back to the dispatcher's review queue (docs/LIFECYCLE.md), with the office's reason among the review reasons
        ticket.state = State.pending_review
        ticket.needs_review = True
        mark = f"退单：{reason}"
        ticket.review_reasons = [r for r in ticket.review_reasons if not r.startswith("退单：")] + [mark]
        ticket.return_reason = reason
        ticket.returned_at = self.now
        return body.note, {"reason": reason, "from_office": ticket.office}

    def _window_text(self) -> str:
        clock = self.rules.deadlines.return_window
        return f"{clock.working_days:g} 个工作日" if clock.working_days else f"{clock.hours:g} 小时"

    def _request_extension(self, ticket: Ticket, body: ExtensionBody, actor: Actor) -> Outcome:
        if ticket.extension_state == "requested":
            raise IllegalTransitionError("已有待审批的延期申请")
        if ticket.extension_state == "approved":
            raise IllegalTransitionError("该工单已延期过一次，不能再次申请")
        days = body.days
        ticket.extension_state = "requested"
        ticket.extension_days = days
        ticket.extension_reason = body.reason
        return ticket.extension_reason, {"days": days}
