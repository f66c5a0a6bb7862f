"""Alerts to people through group-robot webhooks: markdown without personal data; a dead robot blocks nothing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlmodel import Session, select

from classifier.config import Rules
from classifier.decision import Classifier
from service.deadlines.sweep import sweep
from service.notify.models import Alert
from service.notify.people import deliver_alerts
from service.state import AppState
from service.tickets.intake import intake
from service.tickets.models import TicketCreate
from tests.service.notify.receiver import robot as start_robot


def test_alerts_reach_office_and_dispatcher_robots(state: AppState, classifier: Classifier, rules: Rules) -> None:
    start = dt.datetime(2026, 11, 2, 1, tzinfo=dt.UTC)
    with Session(state.engine, expire_on_commit=False) as s:
        intake(
            session=s,
            payload=TicketCreate(
                external_id="ROBOT1",
                received_at=start,
                channel="电话",
                title="电话13912345678 群租",
                caller_phone="13912345678",
                content="上南二村有二房东按床位出租，住了十几个人，电话13912345678",
            ),
            classifier=classifier,
            policy=state.policy,
            rules=rules,
            now=start,
        )
    received: list[dict[str, Any]] = []
    robot = start_robot(received)
    url = f"http://127.0.0.1:{robot.server_address[1]}/cgi-bin/webhook/send"
    later = start + dt.timedelta(days=2)
    sweep(state.engine, rules, now=later)
    # one robot is down: the other still gets every alert and the sweep goes on
    hooks = {"pingan": [url], "dispatcher": ["http://127.0.0.1:9/down"]}
    counts = deliver_alerts(state.engine, rules, hooks, now=later)
    robot.shutdown()
    assert counts["failed"] >= 1 and received
    text = json.dumps(received, ensure_ascii=False)
    assert "13912345678" not in text and "ROBOT1" in text and "群租" in text
    assert all(r["msgtype"] == "markdown" for r in received)
    with Session(state.engine) as s:
        alerts = s.exec(select(Alert)).all()
        assert all(a.state == "pending" and a.attempts == 1 for a in alerts)


def test_no_robot_configured_marks_no_target(state: AppState, classifier: Classifier, rules: Rules) -> None:
    start = dt.datetime(2026, 11, 2, 1, tzinfo=dt.UTC)
    with Session(state.engine, expire_on_commit=False) as s:
        intake(
            session=s,
            payload=TicketCreate(
                external_id="ROBOT2", received_at=start, channel="电话", content="小区绿化带里的树枝挡住了窗户"
            ),
            classifier=classifier,
            policy=state.policy,
            rules=rules,
            now=start,
        )
    sweep(state.engine, rules, now=start + dt.timedelta(days=10))
    counts = deliver_alerts(state.engine, rules, {}, now=start + dt.timedelta(days=10))
    assert counts["no_target"] >= 1 and counts["sent"] == 0
