"""Alerts to people through group-robot webhooks: markdown without personal data; a dead robot blocks nothing."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from sqlmodel import Session, select

from classifier.decision import Classifier
from service.flows.receive import intake
from service.flows.sweep import sweep
from service.notify.models import Alert
from service.notify.people import deliver_alerts, markdown
from service.rules import ServiceRules
from service.state import AppState
from service.tickets.models import Ticket, TicketCreate
from tests.service.notify.receiver import robot as start_robot


def test_alerts_reach_office_and_dispatcher_robots(
    state: AppState, classifier: Classifier, rules: ServiceRules
) -> None:
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


def test_no_robot_configured_marks_no_target(state: AppState, classifier: Classifier, rules: ServiceRules) -> None:
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


def test_alerts_hold_no_personal_data_and_no_codes(
    state: AppState, classifier: Classifier, rules: ServiceRules
) -> None:
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


def test_every_alert_reads_in_chinese(rules: ServiceRules) -> None:
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


SH = dt.timezone(dt.timedelta(hours=8))


def _take_in(state: AppState, classifier: Classifier, rules: ServiceRules, at: dt.datetime, texts: list[str]) -> None:
    with Session(state.engine, expire_on_commit=False) as s:
        for i, text in enumerate(texts):
            intake(
                session=s,
                payload=TicketCreate(external_id=f"QUIET{i}", received_at=at, channel="电话", content=text),
                classifier=classifier,
                policy=state.policy,
                rules=rules,
                now=at + dt.timedelta(minutes=i),
            )


def _pending(state: AppState) -> dict[str, int]:
    with Session(state.engine) as s:
        rows = s.exec(select(Alert, Ticket).join(Ticket, Ticket.id == Alert.ticket_id)).all()  # type: ignore[arg-type]
    return {t.external_id: sum(1 for a, u in rows if u.id == t.id and a.state == "pending") for _, t in rows}


def test_quiet_hours_hold_all_but_urgent_then_one_message_per_robot(
    state: AppState, classifier: Classifier, rules: ServiceRules
) -> None:
    window = rules.notify.alert_window
    assert window is not None and window.start == dt.time(8, 30) and window.working_days_only
    monday = dt.datetime(2026, 11, 2, 9, tzinfo=SH)
    texts = [
        "上南二村有二房东按床位出租，住了十几个人",
        "楼下饭店油烟直接排到我们窗口，熏得没法开窗",
        "小区门口有人占道摆摊卖水果，行人走不过去",
        "楼道里闻到煤气泄漏的味道，很危险",  # urgent: first contact within 2 hours
    ]
    _take_in(state, classifier, rules, monday, texts)
    with Session(state.engine) as s:
        urgent = {t.external_id for t in s.exec(select(Ticket)).all() if t.is_urgent}
        offices = {t.external_id: t.office for t in s.exec(select(Ticket)).all()}
    assert urgent == {"QUIET3"}
    office_box: list[dict[str, Any]] = []
    desk_box: list[dict[str, Any]] = []
    office_robot, desk_robot = start_robot(office_box), start_robot(desk_box)
    hooks = {
        offices["QUIET0"] or "": [f"http://127.0.0.1:{office_robot.server_address[1]}/send"],
        "dispatcher": [f"http://127.0.0.1:{desk_robot.server_address[1]}/send"],
    }
    try:
        night = dt.datetime(2026, 11, 4, 4, 13, tzinfo=SH)  # Wednesday 04:13: every contact clock is overdue
        sweep(state.engine, rules, now=night)
        counts = deliver_alerts(state.engine, rules, hooks, now=night)
        held = {k for k, v in _pending(state).items() if v}
        assert held == {"QUIET0", "QUIET1", "QUIET2"} and counts["held"] >= 3
        assert len(desk_box) == counts["sent"] >= 1  # the urgent ticket's alerts, one message each, at once
        assert all("QUIET3" in json.dumps(m, ensure_ascii=False) for m in desk_box) and not office_box
        assert deliver_alerts(state.engine, rules, hooks, now=night.replace(hour=8, minute=29))["sent"] == 0
        desk_box.clear()
        opening = night.replace(hour=8, minute=30)
        counts = deliver_alerts(state.engine, rules, hooks, now=opening)
        assert counts["failed"] == 0 and counts["sent"] >= 3 and not any(_pending(state).values())
        assert len(desk_box) == 1 and len(office_box) == 1  # one message per robot, not one per ticket
        desk = json.dumps(desk_box[0], ensure_ascii=False)
        assert "提醒汇总" in desk and all(f"QUIET{i}" in desk for i in range(3))
        office = json.dumps(office_box[0], ensure_ascii=False)
        assert "QUIET0" in office and all(
            f"QUIET{i}" not in office for i, _ in enumerate(texts[1:], 1) if offices[f"QUIET{i}"] != offices["QUIET0"]
        )
    finally:
        office_robot.shutdown()
        desk_robot.shutdown()


def test_holidays_and_weekends_hold_alerts_and_big_batches_split(
    state: AppState, classifier: Classifier, rules: ServiceRules
) -> None:
    tuesday = dt.datetime(2026, 9, 22, 9, tzinfo=SH)
    n = rules.notify.batch_max + 3
    _take_in(state, classifier, rules, tuesday, ["楼上的邻居家里群租，住了十几个人，每天吵到半夜"] * n)
    box: list[dict[str, Any]] = []
    robot = start_robot(box)
    hooks = {"dispatcher": [f"http://127.0.0.1:{robot.server_address[1]}/send"]}
    try:
        # 2026: Friday 09-25 is 中秋, 10-01..10-07 国庆 (Saturday 10-03 inside it), Saturday 10-10 a 调休 working day
        sweep(state.engine, rules, now=dt.datetime(2026, 9, 25, 10, tzinfo=SH))
        for held_at in (dt.datetime(2026, 9, 25, 10, tzinfo=SH), dt.datetime(2026, 10, 3, 10, tzinfo=SH)):
            assert deliver_alerts(state.engine, rules, hooks, now=held_at)["sent"] == 0
        assert not box
        workday = dt.datetime(2026, 10, 10, 10, tzinfo=SH)
        counts = deliver_alerts(state.engine, rules, hooks, now=workday)
        assert counts["sent"] >= n and len(box) == 2  # batch_max tickets, then the rest
        listed = [json.dumps(m, ensure_ascii=False).count("工单 QUIET") for m in box]
        assert listed[0] == rules.notify.batch_max and sum(listed) == counts["sent"]
    finally:
        robot.shutdown()
