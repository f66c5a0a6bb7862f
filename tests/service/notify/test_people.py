"""Alerts to people through group-robot webhooks: markdown without personal data; a dead robot blocks nothing."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from sqlmodel import Session, select

from classifier.config import Rules
from classifier.decision import Classifier
from service.flows.receive import intake
from service.flows.sweep import sweep
from service.notify.models import Alert
from service.notify.people import deliver_alerts, markdown
from service.state import AppState
from service.tickets.models import Ticket, TicketCreate
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


def test_alerts_hold_no_personal_data_and_no_codes(state: AppState, classifier: Classifier, rules: Rules) -> None:
    start = dt.datetime(2026, 11, 2, 1, tzinfo=dt.UTC)
    caller = "来电人王小明（住上南二村99号1202室），电话 139 1234 5678，身份证310101199001011234，"
    content = caller + "反映楼上群租，住了十几个人。"
    with Session(state.engine, expire_on_commit=False) as s:
        for i in range(rules.hotspots.min_tickets):  # enough at one building for a hotspot (冒头就打)
            intake(
                session=s,
                payload=TicketCreate(
                    external_id=f"PRIV{i}",
                    received_at=start,
                    channel="电话",
                    content=content,
                    address="上南二村99号1202室",
                    caller_name="王小明",
                    caller_phone="13912345678",
                ),
                classifier=classifier,
                policy=state.policy,
                rules=rules,
                now=start + dt.timedelta(minutes=i),
            )
    received: list[dict[str, Any]] = []
    robot = start_robot(received)
    url = f"http://127.0.0.1:{robot.server_address[1]}/cgi-bin/webhook/send"
    later = start + dt.timedelta(days=3)
    sweep(state.engine, rules, now=later)
    deliver_alerts(state.engine, rules, {"dispatcher": [url]}, now=later)
    robot.shutdown()
    text = json.dumps(received, ensure_ascii=False)
    assert "热点预警" in text and "超期" in text  # a hotspot alert and the clocks' alerts, in Chinese
    for leak in ("王小明", "小明", "12345678", "19900101", "1202", "hotspot", "intake", "due_soon", "overdue"):
        assert leak not in text, leak


def test_every_alert_reads_in_chinese(rules: Rules) -> None:
    at = dt.datetime(2026, 11, 2, 1, tzinfo=dt.UTC)
    ticket = Ticket(
        external_id="CN1",
        received_at=at,
        channel="电话",
        content="楼上群租",
        content_hash="-",
        created_at=at,
        updated_at=at,
        category="group_renting",
        office="pingan",
        first_contact_due=at,
        resolve_due=at,
        hotspot_reason="30 天内同楼栋同类工单 3 件",
    )
    kinds = {"due_soon": "临期预警", "overdue": "超期", "escalated": "督办", "hotspot": "热点预警"}
    for kind, clock in (
        ("due_soon", "contact"),
        ("overdue", "resolve"),
        ("escalated", "resolve"),
        ("hotspot", "intake"),
    ):
        title, body = markdown(
            Alert(ticket_id=1, clock=clock, kind=kind, created_at=at, next_attempt_at=at), ticket, rules
        )
        assert kinds[kind] in title and re.fullmatch(r"[^a-z_]*CN1[^a-z_]*", title + body.replace("CN1", "")), body
    assert "原因：30 天内同楼栋同类工单 3 件" in body
