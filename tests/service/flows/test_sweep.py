"""A walk through time with the injectable clock: lights, alerts and escalation, idempotent sweeps."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from classifier.decision import Classifier
from service.deadlines.lights import lights
from service.deadlines.service import DeadlinePolicy
from service.flows.receive import intake
from service.flows.sweep import sweep
from service.notify.models import Alert
from service.rules import ServiceRules
from service.state import AppState
from service.tickets.models import Ticket, TicketCreate, TicketEvent

SH = ZoneInfo("Asia/Shanghai")


def _ticket(state: AppState, classifier: Classifier, start: dt.datetime, text: str, kind: str = "投诉") -> int:
    with Session(state.engine, expire_on_commit=False) as s:
        t, _ = intake(
            session=s,
            payload=TicketCreate(
                external_id=f"T{start:%Y%m%d%H}{len(text)}", received_at=start, channel="电话", content=text, kind=kind
            ),
            classifier=classifier,
            policy=state.policy,
            rules=state.rules,
            now=start,
        )
        assert t.id is not None
        return t.id


def _lights(state: AppState, tid: int, at: dt.datetime) -> dict[str, str]:
    with Session(state.engine) as s:
        ticket = s.get(Ticket, tid)
        assert ticket is not None
        return lights(ticket, state.policy, at)


def test_national_day_walk(state: AppState, classifier: Classifier) -> None:
    start = dt.datetime(2026, 9, 30, 10, tzinfo=SH)
    tid = _ticket(state, classifier, start, "小区门口的路灯坏了好几天，晚上一片漆黑，老人走路摔跤。")
    walk = {
        dt.datetime(2026, 9, 30, 18, tzinfo=SH): {"contact": "green", "resolve": "green"},
        # 国庆: rest days add no working time, so the lights stand still through the holiday
        dt.datetime(2026, 10, 5, 12, tzinfo=SH): {"contact": "green", "resolve": "green"},
        dt.datetime(2026, 10, 8, 6, tzinfo=SH): {"contact": "yellow", "resolve": "green"},
        dt.datetime(2026, 10, 8, 11, tzinfo=SH): {"contact": "red", "resolve": "green"},
        # 10-10 is a 调休 Saturday and counts (86 of 120 working hours by Sunday noon); Sunday 10-11 does not
        dt.datetime(2026, 10, 11, 12, tzinfo=SH): {"contact": "red", "resolve": "green"},
        dt.datetime(2026, 10, 12, 12, tzinfo=SH): {"contact": "red", "resolve": "yellow"},
        dt.datetime(2026, 10, 13, 11, tzinfo=SH): {"contact": "red", "resolve": "red"},
    }
    for at, expected in walk.items():
        assert _lights(state, tid, at) == expected, at


def test_sweep_alerts_once_and_escalates_once(state: AppState, classifier: Classifier, rules: ServiceRules) -> None:
    start = dt.datetime(2026, 11, 2, 9, tzinfo=SH)
    tid = _ticket(state, classifier, start, "上南路人行道地砖翘起来一大片，绊倒过好几个人。")
    soon = dt.datetime(2026, 11, 6, 12, tzinfo=SH)
    first = sweep(state.engine, rules, now=soon)
    again = sweep(state.engine, rules, now=soon)
    assert first["alert:due_soon"] >= 1 and again["alert:due_soon"] == 0
    late = dt.datetime(2026, 11, 12, 9, tzinfo=SH)  # due 11-09 09:00, escalated one working day later
    done = sweep(state.engine, rules, now=late)
    assert done["escalated"] == 1 and sweep(state.engine, rules, now=late)["escalated"] == 0
    with Session(state.engine) as s:
        ticket = s.get(Ticket, tid)
        assert ticket is not None and ticket.supervised_at is not None
        # 督办 is a clock of its own: the original 办结 deadline stays, against which lateness is judged
        assert ticket.supervise_due == DeadlinePolicy(rules).add(late, rules.deadlines.supervise).due
        assert ticket.resolve_due == dt.datetime(2026, 11, 9, 9, tzinfo=SH)
        kinds = sorted((a.clock, a.kind) for a in s.exec(select(Alert).where(Alert.ticket_id == tid)))
        assert ("resolve", "escalated") in kinds and ("resolve", "overdue") in kinds
        assert len(kinds) == len(set(kinds))
        events = [e.action for e in s.exec(select(TicketEvent).where(TicketEvent.ticket_id == tid))]
        assert events.count("supervise") == 1


def test_crossing_into_2027_is_flagged_not_an_error(
    state: AppState, classifier: Classifier, rules: ServiceRules
) -> None:
    start = dt.datetime(2026, 12, 28, 9, tzinfo=SH)
    tid = _ticket(state, classifier, start, "楼下饭店的油烟直接排到我们窗口，熏得没法开窗。")
    for day in range(0, 12):
        sweep(state.engine, rules, now=start + dt.timedelta(days=day))
    with Session(state.engine) as s:
        ticket = s.get(Ticket, tid)
        assert ticket is not None and ticket.calendar_estimated
        assert ticket.resolve_due is not None and ticket.resolve_due.astimezone(SH).year == 2027
    assert _lights(state, tid, dt.datetime(2026, 12, 30, 9, tzinfo=SH))["resolve"] == "green"
