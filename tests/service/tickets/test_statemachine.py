"""Property-based test of the lifecycle: no sequence of actions reaches an undefined state or drops an event."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from classifier.decision import Classifier
from service.db import make_engine, upgrade
from service.deadlines.service import DeadlinePolicy
from service.errors import DomainError
from service.flows.lifecycle import Lifecycle
from service.flows.receive import intake
from service.rules import EvidenceRules, ServiceRules
from service.tickets.models import State, Ticket, TicketCreate, TicketEvent
from service.tickets.service import Actor
from service.tickets.statemachine import PUBLIC_ACTIONS, TRANSITIONS

BODIES: dict[str, dict[str, Any]] = {
    "confirm": {},
    "reroute": {"office": "guanli", "note": "职能不符"},
    "merge": {"into_id": 1},
    "split": {},
    "cancel": {"note": "无效"},
    "approve-extension": {},
    "refuse-extension": {},
    "accept": {},
    "contact": {},
    "resolve": {"result": "实际解决", "note": "已处理"},
    "return": {"reason": "职能不符"},
    "request-extension": {"days": 3, "reason": "需协调"},
    "follow-up": {"satisfaction": "不满意"},
    "reopen": {"note": "复查未整改"},
    "approve-resolution": {},
    "reject-resolution": {"note": "照片不能说明已整改"},
}
ACTORS = [
    Actor("派单员", "dispatcher"),
    Actor("平安办", "office", "pingan"),
    Actor("管理办", "office", "guanli"),
    Actor("管理员", "admin"),
    Actor("访客", "viewer"),
]
_counter = itertools.count()


def test_every_transition_targets_a_defined_state() -> None:
    for name, t in TRANSITIONS.items():
        assert t.sources <= set(State), name
        assert t.target is None or t.target in State, name
    assert set(BODIES) == set(PUBLIC_ACTIONS)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('sm')) / 'sm.db'}"
    upgrade(url)
    return make_engine(url)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(PUBLIC_ACTIONS), st.sampled_from(ACTORS), st.sampled_from([0.0, 1.0, 30.0, 400.0])),
        max_size=25,
    )
)
def test_random_action_sequences(
    engine: Any, rules: ServiceRules, classifier: Classifier, steps: list[tuple[str, Actor, float]]
) -> None:
    # 群租 under 办结审核, so that sequences reach 办结待审 and its two ways out
    rules = rules.model_copy(update={"evidence": EvidenceRules(review_resolution=("group_renting",))})
    classifier = Classifier(classifier.model, rules)
    policy = DeadlinePolicy(rules)
    start = dt.datetime(2026, 9, 28, 2, 0, tzinfo=dt.UTC)
    with Session(engine, expire_on_commit=False) as session:
        payload = TicketCreate(
            external_id=f"SM{next(_counter)}",
            received_at=start,
            channel="电话",
            content="上南二村有二房东按床位出租，住了十几个人",
            caller_phone="13800001111",
        )
        ticket, _ = intake(
            session=session, payload=payload, classifier=classifier, policy=policy, rules=rules, now=start
        )
        tid = ticket.id
        assert tid is not None
        succeeded = 0
        now = start
        for action, actor, hours in steps:
            now = now + dt.timedelta(hours=hours)
            before = session.get(Ticket, tid)
            assert before is not None
            state_before = before.state
            try:
                after = Lifecycle(session=session, rules=rules, policy=policy, now=now).perform(
                    ticket_id=tid, action=action, actor=actor, body=BODIES[action]
                )
            except DomainError:
                session.rollback()
                unchanged = session.get(Ticket, tid)
                assert unchanged is not None and unchanged.state == state_before
                continue
            succeeded += 1
            assert after.state in set(State)
            target = TRANSITIONS[action].target
            if target is not None:
                assert after.state == target
            if action == "resolve":
                assert after.state in (State.resolved, State.resolution_review)
            assert actor.role in TRANSITIONS[action].roles
        events = session.exec(select(func.count()).select_from(TicketEvent).where(TicketEvent.ticket_id == tid)).one()
        assert events == 2 + succeeded
        last = session.exec(
            select(TicketEvent).where(TicketEvent.ticket_id == tid).order_by(TicketEvent.id.desc())
        ).first()  # type: ignore[union-attr]
        final = session.get(Ticket, tid)
        assert last is not None and final is not None and last.to_state == final.state
