"""Ticket data access: who is acting, finding tickets, and the filtered lists the API and the pages share.
(State transitions are flows: service/flows/lifecycle.py.)"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, false, func, literal, or_, true, union
from sqlalchemy.exc import CompileError, DBAPIError
from sqlmodel import Session, col, select

from service.areas.models import UNPLACED, Area
from service.auth.models import Role, User
from service.clock import utcnow
from service.errors import InvalidInputError, NotFoundError
from service.tickets import search
from service.tickets.models import OPEN_STATES, Ticket, TicketAssist, TicketEvent, TicketRound
from service.tickets.statemachine import SYSTEM

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    name: str
    role: str
    office: str | None = None
    area_id: int | None = None
    # an office's assisted tickets (联勤联动) when looked up beforehand; None: found by a subquery in each query
    assists: tuple[int, ...] | None = None

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


# up to this many assisted tickets are named in the query itself; more are found by a subquery
_ASSISTS_INLINE = 500


def with_assists(session: Session, actor: Actor) -> Actor:
    """The actor with an office's assisted tickets looked up once: an office that assists nothing gets a plain
    `office = …` condition, which its (office, state, resolve_due) index answers in order."""
    if actor.role != Role.office or actor.assists is not None:
        return actor
    found = tuple(session.exec(assisted_by(actor.office).limit(_ASSISTS_INLINE + 1)))
    if len(found) > _ASSISTS_INLINE:
        return actor
    return replace(actor, assists=found)


def _visible(statement: Any, actor: Actor) -> Any:
    if actor.role == Role.office:
        mine = col(Ticket.office) == actor.office
        if actor.assists is None:
            return statement.where(or_(mine, col(Ticket.id).in_(assisted_by(actor.office))))
        return statement.where(or_(mine, col(Ticket.id).in_(actor.assists)) if actor.assists else mine)
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
    building: str | None = None  # a building_key: the tickets at one building (a key point's)
    open_only: bool = False
    q: str | None = None


def _matching(actor: Actor, f: TicketFilter, now: dt.datetime) -> Any:
    """The visible tickets the filters match (unordered)."""
    statement = _filtered(_visible(select(Ticket), actor), f, now)
    return statement.where(_searched(actor, f.q)) if f.q else statement


def _searched(actor: Actor, query: str) -> Any:
    """The text search's condition. A telephone number is personal data: only readers who may see callers' phones
    find tickets by one (the dispatcher; an office among its own tickets)."""
    wanted = search.query_terms(query)
    if not wanted:
        return true()
    found = search.matches(col(Ticket.id), wanted)
    if not search.has_phone(wanted):
        return found
    if actor.role == Role.dispatcher:
        return found
    if actor.role == Role.office:
        return and_(found, col(Ticket.office) == actor.office)
    return false()


def _filtered(statement: Any, f: TicketFilter, now: dt.datetime) -> Any:
    for column, value in ((Ticket.state, f.state), (Ticket.office, f.office), (Ticket.category, f.category)):
        if value:
            statement = statement.where(column == value)
    if f.states is not None:
        statement = statement.where(col(Ticket.state).in_(f.states))
    for column, value in ((Ticket.grid, f.grid), (Ticket.community, f.community), (Ticket.cell, f.cell)):
        if value:
            statement = statement.where(column == value)
    if f.building:
        statement = statement.where(col(Ticket.building_key) == f.building)
    if f.unplaced:
        statement = statement.where(col(Ticket.placement).in_([str(p) for p in UNPLACED]))
    open_states = [str(s) for s in OPEN_STATES]
    if f.open_only:
        statement = statement.where(col(Ticket.state).in_(open_states))
    if f.overdue is True:
        # an open ticket is never resolved: saying so lets the partial index of unresolved tickets by due date
        # (ix_ticket_open_due) answer, instead of walking every closed ticket in due order
        statement = statement.where(
            col(Ticket.state).in_(open_states), col(Ticket.resolved_at).is_(None), col(Ticket.resolve_due) < now
        )
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
    return statement


# Lists count exactly up to this many matches; beyond it the total is an estimate (docs/WEB.md#大数据量)
EXACT_COUNT_CAP = 10_000
# A page number reaches this many rows deep at most: OFFSET reads every row it skips, a cursor reads none
MAX_OFFSET = 10_000


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended (keyset pagination): the last row's sort key and id, and which order."""

    newest_first: bool
    key: dt.datetime | None
    id: int

    def encode(self) -> str:
        key = self.key.isoformat() if self.key else ""
        raw = f"{'n' if self.newest_first else 'd'}|{key}|{self.id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor a page handed out; InvalidInputError("cursor") for anything else."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            order, key, ident = raw.split("|")
            if order not in ("n", "d"):
                raise ValueError(order)
            when = dt.datetime.fromisoformat(key) if key else None
            if when is not None and when.tzinfo is None:
                raise ValueError(key)
            return cls(newest_first=order == "n", key=when, id=int(ident))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInputError("cursor", "翻页游标无效：请使用上一页返回的 next_cursor") from exc


@dataclass(frozen=True)
class TicketList:
    rows: list[Ticket]
    total: int
    # False: more than EXACT_COUNT_CAP matched and `total` is an estimate (the planner's on PostgreSQL, else the cap)
    total_exact: bool
    next_cursor: str | None


def _order(newest_first: bool) -> tuple[Any, ...]:
    if newest_first:
        return (col(Ticket.received_at).desc(), col(Ticket.id).desc())
    # NULLS LAST spelled out: SQLite and PostgreSQL disagree on the default, and a cursor needs one order
    return (col(Ticket.resolve_due).asc().nulls_last(), col(Ticket.id).asc())


def _after(cursor: Cursor) -> Any:
    """Rows after the cursor in its order (the index on the sort key answers it, no OFFSET)."""
    if cursor.newest_first:
        assert cursor.key is not None
        return or_(
            col(Ticket.received_at) < cursor.key,
            and_(col(Ticket.received_at) == cursor.key, col(Ticket.id) < cursor.id),
        )
    if cursor.key is None:
        return and_(col(Ticket.resolve_due).is_(None), col(Ticket.id) > cursor.id)
    return or_(
        col(Ticket.resolve_due) > cursor.key,
        and_(col(Ticket.resolve_due) == cursor.key, col(Ticket.id) > cursor.id),
        col(Ticket.resolve_due).is_(None),
    )


def _count(session: Session, base: Any) -> tuple[int, bool]:
    """The number of matches, exact up to EXACT_COUNT_CAP; beyond it an estimate, so that a list never counts the
    whole table. Where the planner already expects far more than the cap, even the capped count is skipped (it
    would read 10,000 rows to say what the estimate says)."""
    estimate = _planner_estimate(session, base)
    if estimate > 2 * EXACT_COUNT_CAP:
        return estimate, False
    found = _capped_count(session, base, EXACT_COUNT_CAP)
    if found <= EXACT_COUNT_CAP:
        return found, True
    return max(estimate, found), False


def _planner_estimate(session: Session, base: Any) -> int:
    """PostgreSQL's own estimate of the matching rows (EXPLAIN, no execution); elsewhere 0 (the cap stands)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return 0
    statement = base.with_only_columns(col(Ticket.id)).order_by(None)
    try:
        compiled = statement.compile(dialect=bind.dialect, compile_kwargs={"literal_binds": True})
        # at the driver, not through text(): a filter value such as "a:b" must not read as a bind parameter
        with session.begin_nested():  # a failed EXPLAIN must not abort the request's transaction
            found = session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}").scalar_one()
        return int(found[0]["Plan"]["Plan Rows"])
    except (CompileError, DBAPIError, KeyError, TypeError, ValueError):
        # an estimate is an optimisation: without one the capped count answers
        log.warning("planner_estimate_failed", exc_info=True)
        return 0


def list_statement(
    *, actor: Actor, filters: TicketFilter, now: dt.datetime, newest_first: bool, relevance: bool = False
) -> Any:
    """The list's query in its order, before paging (the indexes in Ticket.__table_args__ are made for it); by
    relevance to the text searched, best first, when asked and there is a search."""
    statement = _matching(actor, filters, now)
    wanted = search.query_terms(filters.q) if filters.q and relevance else []
    if wanted:
        return statement.order_by(search.relevance(col(Ticket.id), wanted).desc(), *_order(newest_first))
    return statement.order_by(*_order(newest_first))


DEEP_PAGE = f"按页码最多翻到第 {MAX_OFFSET:,} 件：更深请用上一页返回的 next_cursor（按相关度排序时请缩小搜索范围）"


def within_offset(page: int, page_size: int) -> bool:
    """Whether a page by number starts within MAX_OFFSET rows."""
    return (page - 1) * page_size < MAX_OFFSET


def list_tickets(
    *,
    session: Session,
    actor: Actor,
    filters: TicketFilter,
    page: int = 1,
    page_size: int,
    now: dt.datetime | None = None,
    newest_first: bool = False,
    cursor: Cursor | None = None,
    relevance: bool = False,
) -> TicketList:
    """One page of the visible tickets the filters match: by page number (OFFSET, for the first pages) or after a
    cursor (keyset, for going deep), with the total (exact while cheap, else an estimate)."""
    now = now or utcnow()
    actor = with_assists(session, actor)
    base = _matching(actor, filters, now)
    total, exact = _count(session, base)
    if cursor is not None and relevance:
        raise InvalidInputError("cursor", "按相关度排序时不能用游标翻页：请用 page")
    statement = list_statement(actor=actor, filters=filters, now=now, newest_first=newest_first, relevance=relevance)
    if cursor is not None:
        if cursor.newest_first != newest_first:
            raise InvalidInputError("cursor", "翻页游标与当前排序不符：请从第一页重新开始")
        statement = statement.where(_after(cursor))
    else:
        if not within_offset(page, page_size):
            raise InvalidInputError("page", DEEP_PAGE)
        statement = statement.offset((page - 1) * page_size)
    rows = list(session.exec(statement.limit(page_size + 1)))
    following = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        last = rows[-1]
        assert last.id is not None
        key = last.received_at if newest_first else last.resolve_due
        # by relevance there is no keyset: the next page is page + 1
        following = None if relevance else Cursor(newest_first=newest_first, key=key, id=last.id).encode()
    return TicketList(rows=rows, total=total, total_exact=exact, next_cursor=following)


EXPORT_BATCH = 2000


def ticket_batches(
    *, session: Session, actor: Actor, filters: TicketFilter, now: dt.datetime, batch: int | None = None
) -> Iterator[list[Ticket]]:
    """Every visible ticket the filters match, newest first, a batch at a time by keyset: an export of any size
    holds one batch in memory, and no batch costs more than the first."""
    batch = batch or EXPORT_BATCH
    actor = with_assists(session, actor)
    statement = list_statement(actor=actor, filters=filters, now=now, newest_first=True)
    cursor: Cursor | None = None
    while True:
        page = statement.where(_after(cursor)) if cursor else statement
        rows = list(session.exec(page.limit(batch)))
        if not rows:
            return
        yield rows
        last = rows[-1]
        assert last.id is not None
        cursor = Cursor(newest_first=True, key=last.received_at, id=last.id)
        # what was yielded is done with: the session must not keep every row it ever loaded
        session.expunge_all()
        if len(rows) < batch:
            return


def count_matching(*, session: Session, actor: Actor, filters: TicketFilter, now: dt.datetime, cap: int) -> int:
    """How many visible tickets match, counting at most cap + 1 (enough to say "too many")."""
    return _capped_count(session, _matching(with_assists(session, actor), filters, now), cap)


def _capped_count(session: Session, base: Any, cap: int) -> int:
    capped = base.with_only_columns(col(Ticket.id)).limit(cap + 1).subquery()
    return int(session.exec(select(func.count()).select_from(capped)).one())


def matching_statement(*, session: Session, actor: Actor, filters: TicketFilter, now: dt.datetime) -> Any:
    """The visible tickets the filters match, as a statement to narrow and order further (unordered)."""
    return _matching(with_assists(session, actor), filters, now)


def matching_tickets(
    *, session: Session, actor: Actor, filters: TicketFilter, now: dt.datetime, limit: int
) -> list[Ticket]:
    """Every visible ticket the filters match, newest first, up to `limit` (a key point's tickets)."""
    base = matching_statement(session=session, actor=actor, filters=filters, now=now)
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
