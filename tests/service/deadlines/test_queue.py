"""The dispatcher queue in one query (docs/SCALING.md#派单审核队列): stored 临期 instants give the same queue as the
lights worked out ticket by ticket, at any hour, before the sweep job stamped them, after, and after a clock moved."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from service.auth.models import Role
from service.deadlines.lights import lights, warn_instants
from service.deadlines.queue import REVIEW_STATES, dispatcher_queue, workbench, worst
from service.deadlines.service import DeadlinePolicy
from service.flows.warn_instants import stamp
from service.rules import ServiceRules
from service.state import AppState
from service.tickets.models import OPEN_STATES, State, Ticket
from service.tickets.service import Actor, TicketFilter
from tests.conftest import receive

SH = ZoneInfo("Asia/Shanghai")
DISPATCHER = Actor(name="dispatcher", role=Role.dispatcher)
ORDER = {"red": 0, "yellow": 1, "green": 2, "none": 3}
FAR = dt.datetime.max.replace(tzinfo=dt.UTC)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


def expected(state: AppState, now: dt.datetime, policy: DeadlinePolicy | None = None) -> tuple[list[int], int]:
    """The queue as the lights of every open ticket, worked out one by one, make it."""
    policy = policy or state.policy
    with Session(state.engine) as session:
        tickets = session.exec(select(Ticket).where(col(Ticket.state).in_([str(s) for s in OPEN_STATES]))).all()
        waiting = []
        for t in tickets:
            light = lights(t, policy, now)
            review = t.state in REVIEW_STATES or t.extension_state == "requested" or t.hotspot
            if review or worst(light) in ("yellow", "red"):
                waiting.append((not t.is_urgent, ORDER[worst(light)], t.resolve_due or FAR, t.id))
    waiting.sort()
    return [w[3] for w in waiting], len(waiting)


def queued(state: AppState, now: dt.datetime, shown: int = 200) -> tuple[list[int], int]:
    with Session(state.engine) as session:
        found, total = dispatcher_queue(
            session=session, actor=DISPATCHER, filters=TicketFilter(), policy=state.policy, now=now, shown=shown
        )
        return [t.id for t, _ in found if t.id is not None], total


# the hours the queue is looked at: before anything is due, across the National Day holiday, when most are late
HOURS = ("2026-09-28 10:00", "2026-09-30 17:59", "2026-10-05 12:00", "2026-10-09 08:30", "2026-10-20 16:00")


def _seed(state: AppState) -> list[int]:
    """Tickets on both sides of the 2026 National Day holiday, in every open state the lights treat differently."""
    texts = ("小区有群租，一套房住了十几个人", "楼道里堆满垃圾没人清理", "路边有人占道经营卖水果", "楼顶搭违章建筑")
    ids = []
    for n in range(12):
        when = at("2026-09-24 09:00") + dt.timedelta(hours=19 * n)
        ticket = receive(state, f"Q{n:03d}", when, texts[n % len(texts)], address=f"上南二村{n + 1}号")
        ids.append(ticket.id)
    with Session(state.engine) as session:
        tickets = {t.id: t for t in session.exec(select(Ticket).where(col(Ticket.id).in_(ids)))}
        tickets[ids[1]].first_contact_at = at("2026-09-25 10:00")  # contact recorded: only the 办结 clock runs
        tickets[ids[1]].state = State.contacted
        tickets[ids[2]].is_urgent = True
        tickets[ids[3]].state = State.returned
        tickets[ids[4]].extension_state = "requested"
        tickets[ids[5]].hotspot = True
        tickets[ids[6]].state = State.closed  # no longer open: never queued
        tickets[ids[7]].resolve_basis = "hours"  # plain-time 办结 clock
        session.commit()
    return ids


@pytest.mark.parametrize("hour", HOURS)
def test_stored_instants_give_the_queue_the_lights_give(state: AppState, hour: str) -> None:
    ids = _seed(state)
    now = at(hour)
    want = expected(state, now)
    assert want[1] > 0
    assert queued(state, now) == want  # nothing stamped yet: every light worked out in Python
    assert stamp(state.engine, state.policy) == len(ids) - 1  # the open ones
    assert stamp(state.engine, state.policy) == 0  # idempotent
    assert queued(state, now) == want
    assert queued(state, now, shown=3) == (want[0][:3], want[1])  # cut to the page, counted in full
    with Session(state.engine) as session:
        # a write that moves a clock clears its stamp, so a stale instant is never read
        moved = session.get(Ticket, ids[8])
        assert moved is not None and moved.warn_basis == state.policy.warn_basis and moved.resolve_due is not None
        moved.resolve_due = moved.resolve_due - dt.timedelta(days=6)
        session.commit()
        session.refresh(moved)
        assert moved.warn_basis is None
    assert queued(state, now) == expected(state, now)


def test_warn_at_is_where_the_light_turns_yellow(rules: ServiceRules) -> None:
    policy = DeadlinePolicy(rules)
    second = dt.timedelta(seconds=1)
    cases = [
        (at("2026-09-29 15:00"), at("2026-10-12 15:00"), "working"),  # over the National Day holiday
        (at("2026-11-02 09:00"), at("2026-11-09 09:00"), "working"),
        (at("2026-11-02 09:00"), at("2026-11-03 09:00"), "hours"),
    ]
    for start, due, basis in cases:
        warn = policy.warn_at(start=start, due=due, basis=basis)
        assert start < warn < due
        assert policy.light(start=start, due=due, now=warn - second, basis=basis) == "green"
        assert policy.light(start=start, due=due, now=warn, basis=basis) == "yellow"
    holiday = policy.warn_at(start=cases[0][0], due=cases[0][1], basis="working")
    assert holiday > at("2026-10-08 00:00")  # the holiday's days do not count


def test_a_stamp_made_while_a_person_edits_never_outlives_the_edit(state: AppState) -> None:
    ids = _seed(state)
    with Session(state.engine) as person:
        ticket = person.get(Ticket, ids[0])
        assert ticket is not None and ticket.warn_basis is None and ticket.resolve_due is not None
        stamp(state.engine, state.policy)  # the job stamps the row this person has read unstamped
        ticket.resolve_due = ticket.resolve_due + dt.timedelta(days=2)
        person.commit()  # not a conflict: a stamp does not bump the version
        person.refresh(ticket)
        assert ticket.warn_basis is None
    stamp(state.engine, state.policy)
    with Session(state.engine) as session:
        ticket = session.get(Ticket, ids[0])
        assert ticket is not None and ticket.warn_basis == state.policy.warn_basis
        assert (ticket.contact_warn_at, ticket.resolve_warn_at) == warn_instants(ticket, state.policy)


def test_a_changed_warning_share_restamps_every_open_ticket(state: AppState) -> None:
    ids = _seed(state)
    stamp(state.engine, state.policy)
    deadlines = state.rules.deadlines.model_copy(update={"warn_fraction": 0.5})
    later = DeadlinePolicy(state.rules.model_copy(update={"deadlines": deadlines}))
    assert later.warn_basis != state.policy.warn_basis
    now = at("2026-09-30 17:59")
    with Session(state.engine) as session:
        # stamped under the old share, the tickets are worked out one by one until the job restamps them
        found, total = dispatcher_queue(
            session=session, actor=DISPATCHER, filters=TicketFilter(), policy=later, now=now, shown=200
        )
    assert stamp(state.engine, later) == len(ids) - 1
    with Session(state.engine) as session:
        again, total_again = dispatcher_queue(
            session=session, actor=DISPATCHER, filters=TicketFilter(), policy=later, now=now, shown=200
        )
    want = expected(state, now, later)
    assert ([t.id for t, _ in found], total) == want == ([t.id for t, _ in again], total_again)
    assert total > queued(state, now)[1]  # half the time gone turns more lights yellow than four fifths


def test_the_hours_looked_at_show_every_light(state: AppState) -> None:
    _seed(state)
    seen = set()
    with Session(state.engine) as session:
        for hour in HOURS:
            found, _ = dispatcher_queue(
                session=session, actor=DISPATCHER, filters=TicketFilter(), policy=state.policy, now=at(hour), shown=50
            )
            seen |= {worst(light) for _, light in found}
    assert {"red", "yellow", "green"} <= seen  # so the tests above compare every ordering the queue makes


def test_the_sweep_job_stamps_what_intake_left_unstamped(state: AppState) -> None:
    from service.scheduler import run_sweep

    ids = _seed(state)
    run_sweep(state.engine, state.rules, state.settings, now=lambda: at("2026-09-28 10:00"))
    with Session(state.engine) as session:
        tickets = session.exec(select(Ticket).where(col(Ticket.id).in_(ids))).all()
        stamped = {t.id for t in tickets if t.warn_basis == state.policy.warn_basis}
        assert stamped == {t.id for t in tickets if t.state in OPEN_STATES} and len(stamped) == len(ids) - 1


WORKING = ("dispatched", "accepted", "contacted", "reopened", "resolution_review")


@pytest.mark.parametrize("hour", HOURS[1:4])
def test_an_office_workbench_shows_its_most_pressing_first_stamped_or_not(state: AppState, hour: str) -> None:
    ids = _seed(state)
    now = at(hour)
    office = "pingan"
    with Session(state.engine) as session:
        for ticket in session.exec(select(Ticket).where(col(Ticket.id).in_(ids[::2]))):
            ticket.office = office
            if ticket.state in (State.pending_review, State.returned):
                ticket.state = State.dispatched
        session.commit()
        mine = session.exec(select(Ticket).where(col(Ticket.state).in_(WORKING))).all()
        actor = Actor(name="office", role=Role.office, office=office)
        ordered = sorted(
            (ORDER[worst(lights(t, state.policy, now))], t.resolve_due or FAR, t.id) for t in mine if t.office == office
        )
    want = [o[2] for o in ordered]
    assert len(want) >= 4

    def shown(n: int) -> tuple[list[int | None], int]:
        with Session(state.engine) as session:
            found, total = workbench(
                session=session, actor=actor, states=WORKING, policy=state.policy, now=now, shown=n
            )
            return [t.id for t, _ in found], total

    assert shown(200) == (want, len(want))
    stamp(state.engine, state.policy)
    assert shown(200) == (want, len(want)) and shown(1) == (want[:1], len(want))
