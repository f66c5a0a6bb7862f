"""Clocks that do not overwrite each other (docs/DEADLINES.md), reproduced over the ticket API by a dispatcher and an
office on a simulated clock, with hand-computed deadlines (November 2026 has no holidays)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from service.cli import app
from service.flows.sweep import sweep
from service.notify.models import Alert
from service.state import AppState
from tests.conftest import auth, payload, post_ticket, token_for
from tests.service.web.test_sessions import login

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


def local(value: str) -> str:
    return dt.datetime.fromisoformat(value).astimezone(SH).strftime("%Y-%m-%d %H:%M")


class Desk:
    """A dispatcher and the offices at work on a clock the test moves."""

    def __init__(self, client: TestClient, state: AppState) -> None:
        self.client, self.state = client, state
        self.now = at("2026-11-02 09:00")
        state.clock = lambda: self.now
        self.who = {
            "dispatcher": auth(token_for(state, "dispatcher", name="派单员")),
            "admin": auth(token_for(state, "admin", name="管理员")),
            **{office: auth(token_for(state, "office", office, name=office)) for office in state.rules.offices},
        }

    def take_in(self, when: str, called: str | None = None, **fields: Any) -> dict[str, Any]:
        self.now = at(when)
        body = payload(received_at=at(called or when).isoformat(), **fields)
        created = post_ticket(self.client, body)
        assert created.status_code == 201, created.text
        return self.ticket(created.json()["id"])

    def act(self, when: str, who: str, tid: int, action: str, **body: Any) -> dict[str, Any]:
        self.now = at(when)
        r = self.client.post(f"/api/v1/tickets/{tid}/{action}", json=body, headers=self.who[who])
        assert r.status_code == 200, r.text
        return dict(r.json())

    def ticket(self, tid: int) -> dict[str, Any]:
        return dict(self.client.get(f"/api/v1/tickets/{tid}", headers=self.who["dispatcher"]).json())

    def report(self, day: str) -> dict[str, Any]:
        r = self.client.get("/api/v1/reports/daily", params={"date": day}, headers=self.who["dispatcher"])
        assert r.status_code == 200, r.text
        return dict(r.json()["totals"])

    def sweep(self, when: str) -> None:
        self.now = at(when)
        sweep(self.state.engine, self.state.rules, now=self.now, policy=self.state.policy)


@pytest.fixture
def desk(client: TestClient, state: AppState) -> Desk:
    return Desk(client, state)


def _dispatched(desk: Desk, ticket: dict[str, Any], when: str) -> dict[str, Any]:
    if ticket["state"] == "pending_review":
        return desk.act(when, "dispatcher", ticket["id"], "confirm")
    return ticket


def test_supervision_keeps_the_original_deadline_so_the_report_sees_overdue_and_late(desk: Desk) -> None:
    """Item 1: 督办 is a clock of its own; the ticket stays overdue and its late 办结 counts as late."""
    t = _dispatched(desk, desk.take_in("2026-11-02 09:00", kind="投诉"), "2026-11-02 09:05")
    tid, office = t["id"], t["office"]
    assert local(t["resolve_due"]) == "2026-11-09 09:00"  # 投诉: 5 working days
    desk.act("2026-11-02 10:00", office, tid, "accept")
    desk.act("2026-11-02 11:00", office, tid, "contact")
    desk.sweep("2026-11-11 09:00")  # overdue by more than escalate_after (1 working day): 督办
    t = desk.ticket(tid)
    assert t["supervised_at"] is not None
    assert local(t["supervise_due"]) == "2026-11-16 09:00"  # 3 working days from 11-11 09:00
    assert local(t["resolve_due"]) == "2026-11-09 09:00"  # unchanged
    assert desk.report("2026-11-11")["overdue_open"] == 1
    login(desk.client, token_for(desk.state, "dispatcher"))
    page = desk.client.get(f"/ui/tickets/{tid}").text
    assert "督办时限" in page and "11-16 09:00" in page and "11-09 09:00" in page
    desk.act("2026-11-13 15:00", office, tid, "resolve", result="实际解决", note="已清理")
    late = desk.report("2026-11-13")
    assert late["resolved"] == 1 and late["on_time"] == 0 and late["on_time_rate"] == 0.0
    events = desk.ticket(tid)["timeline"]
    assert [e["data"].get("on_time") for e in events if e["action"] == "resolve"] == [False]


def test_extension_cap_counts_from_the_original_start_after_a_reroute(desk: Desk) -> None:
    """Item 3: taken in 11-02, rerouted 11-05, 30 days asked: capped at 15 working days from 11-02, not 11-05."""
    t = _dispatched(desk, desk.take_in("2026-11-02 09:00", kind="投诉"), "2026-11-02 09:05")
    tid = t["id"]
    moved = desk.act("2026-11-05 10:00", "dispatcher", tid, "reroute", office="chengyun", note="属地调整")
    assert moved["office"] == "chengyun" and local(moved["resolve_due"]) == "2026-11-09 09:00"
    desk.act("2026-11-05 11:00", "chengyun", tid, "accept")
    desk.act("2026-11-05 12:00", "chengyun", tid, "request-extension", days=30, reason="需协调多个部门")
    done = desk.act("2026-11-06 09:00", "dispatcher", tid, "approve-extension", note="同意")
    assert local(done["resolve_due"]) == "2026-11-23 09:00"  # 15 working days from 11-02 09:00 (not 11-26)
    assert local(done["clock_start"]) == "2026-11-02 09:00"


@pytest.mark.parametrize(
    ("to", "contact_due", "resolve_due"),
    [
        # 群租: first action within 24 hours whatever the calendar — Saturday 15:00
        ("group_renting", "2026-11-07 15:00", "2026-11-13 15:00"),
        # a category without its own clocks keeps the common ones: 1 working day → Monday 15:00
        ("parking", "2026-11-09 15:00", "2026-11-13 15:00"),
    ],
)
def test_reroute_recomputes_the_new_categorys_clocks_from_the_original_start(
    desk: Desk, to: str, contact_due: str, resolve_due: str
) -> None:
    """Item 4: a 垃圾 ticket rerouted to 群租 gets the 24-hour first action, counted from when it came in."""
    text = "小区垃圾桶满了好几天没人清运，臭气熏天，苍蝇很多。"
    t = desk.take_in("2026-11-06 15:00", kind="投诉", title="垃圾", content=text, address="上南二村45号")
    tid = t["id"]
    desk.act("2026-11-06 16:00", "dispatcher", tid, "reroute", category="garbage", note="确认为垃圾")
    garbage = desk.ticket(tid)
    assert local(garbage["first_contact_due"]) == "2026-11-09 15:00"
    moved = desk.act("2026-11-06 17:00", "dispatcher", tid, "reroute", category=to, note="现场核实后改派")
    assert local(moved["first_contact_due"]) == contact_due
    assert local(moved["resolve_due"]) == resolve_due
    last = [e for e in desk.ticket(tid)["timeline"] if e["action"] == "reroute"][-1]
    assert local(last["data"]["first_contact_due"]) == contact_due


def test_an_approved_extension_survives_a_return_and_reroute(desk: Desk) -> None:
    t = _dispatched(desk, desk.take_in("2026-11-02 09:00", kind="投诉"), "2026-11-02 09:05")
    tid, office = t["id"], t["office"]
    desk.act("2026-11-02 10:00", office, tid, "accept")
    desk.act("2026-11-02 12:00", office, tid, "request-extension", days=3, reason="等待房东")
    approved = desk.act("2026-11-03 09:00", "dispatcher", tid, "approve-extension", note="同意")
    assert local(approved["resolve_due"]) == "2026-11-12 09:00"  # 11-09 09:00 plus 3 working days
    desk.act("2026-11-03 10:00", office, tid, "return", reason="职能不符", note="不属本科室")
    moved = desk.act("2026-11-03 11:00", "dispatcher", tid, "reroute", category="illegal_construction", note="违建")
    assert local(moved["resolve_due"]) == "2026-11-12 09:00"  # the approved extension stays
    assert local(moved["first_contact_due"]) == "2026-11-03 09:00"  # 违建: 24 hours from 11-02 09:00


def test_resolving_without_a_recorded_contact_counts_as_contact_missed(desk: Desk) -> None:
    """Item 6: 办结 without 先行联系 is allowed, recorded as missed, and the report counts it so."""
    t = _dispatched(desk, desk.take_in("2026-11-02 09:00", kind="投诉"), "2026-11-02 09:05")
    tid, office = t["id"], t["office"]
    assert local(t["first_contact_due"]) == "2026-11-03 09:00"  # 群租: 24 hours
    desk.act("2026-11-02 10:00", office, tid, "accept")
    desk.act("2026-11-02 16:00", office, tid, "resolve", result="实际解决", note="当天处置完毕")
    resolved = [e for e in desk.ticket(tid)["timeline"] if e["action"] == "resolve"]
    assert resolved[0]["data"]["contact_missed"] is True and resolved[0]["data"]["on_time"] is True
    day = desk.report("2026-11-03")
    assert (day["contact_due"], day["contact_on_time"], day["contact_rate"]) == (1, 0, 0.0)


def test_clocks_start_when_the_citizen_called_and_a_late_push_is_marked(desk: Desk) -> None:
    """Item 5: received 11-20 09:30, pushed 12-02 10:00: due from 11-20, flagged, counted on 11-20."""
    t = desk.take_in("2026-12-02 10:00", called="2026-11-20 09:30", kind="投诉")
    assert local(t["clock_start"]) == "2026-11-20 09:30" and t["received_late"] is True
    assert local(t["first_contact_due"]) == "2026-11-21 09:30"  # 群租: 24 hours
    assert local(t["resolve_due"]) == "2026-11-27 09:30"  # 5 working days from Friday 11-20
    assert desk.report("2026-11-20")["received"] == 1 and desk.report("2026-12-02")["received"] == 0
    fresh = desk.take_in("2026-12-02 10:00", called="2026-12-01 17:00", kind="投诉")
    assert fresh["received_late"] is False and local(fresh["clock_start"]) == "2026-12-01 17:00"


@pytest.mark.parametrize(
    ("fields", "field", "why"),
    [
        ({"received_at": "2027-03-01T09:00:00+08:00"}, "received_at", "晚于当前时间超过 10 分钟"),
        ({"received_at": "2026-11-02T09:20:00+08:00"}, "received_at", "晚于当前时间超过 10 分钟"),
        ({"deadline": "2000-01-02T00:00:00+08:00"}, "deadline", "早于热线受理时间"),
    ],
)
def test_impossible_times_are_refused_naming_the_field(
    desk: Desk, fields: dict[str, str], field: str, why: str
) -> None:
    desk.now = at("2026-11-02 09:00")
    body = payload(received_at=desk.now.isoformat())
    body.update(fields)
    r = post_ticket(desk.client, body)
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]
    assert problem["loc"][-1] == field and why in problem["msg"]
    listed = desk.client.get("/api/v1/tickets", headers=desk.who["dispatcher"]).json()
    assert listed["total"] == 0  # nothing stored
    within = dict(body, received_at="2026-11-02T09:09:00+08:00", deadline=None)  # inside the 10-minute skew
    accepted = post_ticket(desk.client, within)
    assert (
        accepted.status_code == 201 and local(desk.ticket(accepted.json()["id"])["clock_start"]) == "2026-11-02 09:00"
    )


def test_the_readme_worked_example_across_national_day(desk: Desk) -> None:
    """README「时限」: 国庆 2026 with the 10-10 调休 Saturday, an approved 延期 and a 督办."""
    text = "小区门口道路两边乱停车，车辆把路堵死了，早上出门开不出去。"
    t = desk.take_in("2026-09-30 10:00", kind="投诉", title="乱停车", content=text, address="上南路100号")
    t = _dispatched(desk, t, "2026-09-30 10:05")
    tid, office = t["id"], t["office"]
    assert desk.state.rules.categories[t["category"]].first_action_hours is None
    assert local(t["first_contact_due"]) == "2026-10-08 10:00" and local(t["resolve_due"]) == "2026-10-13 10:00"
    desk.act("2026-09-30 11:00", office, tid, "accept")
    desk.act("2026-10-08 09:00", office, tid, "contact")
    desk.act("2026-10-09 10:00", office, tid, "request-extension", days=3, reason="需协调物业")
    extended = desk.act("2026-10-09 11:00", "dispatcher", tid, "approve-extension", note="同意")
    assert local(extended["resolve_due"]) == "2026-10-16 10:00"
    desk.sweep("2026-10-19 09:59")  # not yet a full working day overdue
    assert desk.ticket(tid)["supervised_at"] is None
    desk.sweep("2026-10-20 09:00")
    supervised = desk.ticket(tid)
    assert local(supervised["supervise_due"]) == "2026-10-23 09:00"
    assert local(supervised["resolve_due"]) == "2026-10-16 10:00"
    assert desk.report("2026-10-20")["overdue_open"] == 1
    desk.act("2026-10-21 10:00", office, tid, "resolve", result="实际解决", note="已协调物业清理")
    day = desk.report("2026-10-21")
    assert (day["resolved"], day["on_time"]) == (1, 0)


def _alerts(state: AppState, tid: int) -> list[tuple[str, str, int]]:
    with Session(state.engine) as s:
        rows = s.exec(select(Alert.clock, Alert.kind, Alert.round).where(Alert.ticket_id == tid)).all()
    return sorted((str(c), str(k), int(r)) for c, k, r in rows)


def test_reopen_starts_new_clocks_and_keeps_the_first_round(desk: Desk) -> None:
    """Item 2: 重办 starts a 先行联系 and a 办结 clock of its own; the first round stays as it ended."""
    t = _dispatched(desk, desk.take_in("2026-11-02 09:00", kind="投诉"), "2026-11-02 09:05")
    tid, office = t["id"], t["office"]
    desk.act("2026-11-02 10:00", office, tid, "accept")
    desk.act("2026-11-02 11:00", office, tid, "contact")
    desk.act("2026-11-04 15:00", office, tid, "resolve", result="实际解决", note="已拆除隔断")
    before = [desk.report(day) for day in ("2026-11-02", "2026-11-03", "2026-11-04")]
    assert before[1]["contact_rate"] == 1.0 and before[2]["on_time_rate"] == 1.0
    desk.act("2026-11-05 10:00", "dispatcher", tid, "follow-up", satisfaction="不满意")
    again = desk.ticket(tid)
    assert again["state"] == "reopened" and again["reopen_count"] == 1
    assert again["first_contact_at"] is None and again["resolved_at"] is None
    # 群租: first action within 24 hours of the 重办, inside its 3-working-day 办结 clock (Tuesday 11-10 10:00)
    assert local(again["first_contact_due"]) == "2026-11-06 10:00"
    assert local(again["resolve_due"]) == "2026-11-10 10:00"
    (first,) = again["rounds"]
    assert (first["round"], local(first["started_at"]), local(first["ended_at"])) == (
        0,
        "2026-11-02 09:00",
        "2026-11-05 10:00",
    )
    assert local(first["first_contact_due"]) == "2026-11-03 09:00"
    assert local(first["first_contact_at"]) == "2026-11-02 11:00"
    assert local(first["resolve_due"]) == "2026-11-09 09:00" and local(first["resolved_at"]) == "2026-11-04 15:00"
    assert first["satisfaction"] == "不满意" and first["resolve_note"] == "已拆除隔断"
    login(desk.client, token_for(desk.state, "dispatcher"))
    page = desk.client.get(f"/ui/tickets/{tid}").text
    assert "历次办理" in page and "11-02 09:00 — 11-05 10:00" in page
    assert "11-03 09:00（按时）" in page and "11-09 09:00（按时）" in page and "实际解决：已拆除隔断" in page
    desk.sweep("2026-11-05 10:05")  # the new contact clock is green: no alert fires at once
    assert _alerts(desk.state, tid) == []
    assert [desk.report(day) | {"generated_at": None} for day in ("2026-11-02", "2026-11-03", "2026-11-04")] == [
        b | {"generated_at": None} for b in before
    ]
    desk.sweep("2026-11-06 10:01")  # the round's own contact clock runs out
    assert _alerts(desk.state, tid) == [("contact", "overdue", 1)]
    desk.act("2026-11-06 11:00", office, tid, "accept")
    desk.act("2026-11-06 14:00", office, tid, "contact")
    desk.act("2026-11-09 16:00", office, tid, "resolve", result="实际解决", note="复查已整改")
    nov6, nov9 = desk.report("2026-11-06"), desk.report("2026-11-09")
    assert (nov6["contact_due"], nov6["contact_on_time"]) == (1, 0)  # the second round's contact was late
    # 11-09: the second 办结, on time against 11-10; the first round's deadline (11-09 09:00) falls due that day
    assert (nov9["resolved"], nov9["on_time"], nov9["due"], nov9["overdue_open"]) == (1, 1, 1, 0)
    assert desk.report("2026-11-04") | {"generated_at": None} == before[2] | {"generated_at": None}


def test_a_past_days_report_is_the_same_after_a_later_reopen(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Item 7: `hotline report --date` for a past period gives the same figures before and after a later 重办 and
    a second 办结 (the old code turned the late 办结 on time, dropped 应办结 and moved 办结量)."""
    t = _dispatched(desk, desk.take_in("2026-11-02 09:00", kind="投诉"), "2026-11-02 09:05")
    tid, office = t["id"], t["office"]
    desk.act("2026-11-02 10:00", office, tid, "accept")
    desk.act("2026-11-02 11:00", office, tid, "contact")
    desk.act("2026-11-10 15:00", office, tid, "resolve", result="解释说明", note="已告知处理进度")  # late
    monkeypatch.setenv("HOTLINE_DATABASE_URL", desk.state.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("HOTLINE_RULES", str(desk.state.settings.rules))
    runner = CliRunner()

    def cli_report() -> dict[str, Any]:
        out = tmp_path / "report.json"
        r = runner.invoke(app, ["report", "--date", "2026-11-09", "--end", "2026-11-10", "--out", str(out)])
        assert r.exit_code == 0, r.output
        data = json.loads(out.read_text(encoding="utf-8"))
        return {"rows": data["rows"], "totals": data["totals"], "ledger": data["ledger"]}

    before = cli_report()
    totals = before["totals"]
    assert (totals["resolved"], totals["on_time"], totals["due"], totals["overdue_open"]) == (1, 0, 1, 0)
    assert desk.report("2026-11-09")["overdue_open"] == 1
    desk.act("2026-11-12 10:00", "dispatcher", tid, "reopen", note="市民反映问题仍在")
    assert cli_report() == before
    desk.act("2026-11-12 11:00", office, tid, "accept")
    desk.act("2026-11-12 14:00", office, tid, "contact")
    desk.act("2026-11-13 16:00", office, tid, "resolve", result="实际解决", note="已清退")
    assert cli_report() == before
    assert desk.report("2026-11-09")["overdue_open"] == 1
    later = desk.report("2026-11-13")
    assert (later["resolved"], later["on_time"]) == (1, 1)
