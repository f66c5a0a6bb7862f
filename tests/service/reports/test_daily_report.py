"""The daily report against a hand-computed fixture, metric by metric, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlmodel import Session

from service.auth.models import Role
from service.flows.lifecycle import Lifecycle
from service.reports.export import to_csv, to_xlsx
from service.reports.models import DailyReport
from service.reports.service import daily_report
from service.state import AppState
from service.tickets.service import Actor
from tests.conftest import receive

SH = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 11, 16)
OFFICE = Actor("平安办", Role.office, "pingan")
DISPATCHER = Actor("派单员", Role.dispatcher)
RENTING = "市民来电反映：{}有二房东按床位出租，住了十几个人，要求查处。"


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SH)


def _new(state: AppState, key: str, when: dt.datetime, text: str, kind: str) -> int:
    t = receive(state, key, when, text, kind=kind)
    assert t.id is not None
    if t.state == "pending_review":  # the model may not auto-dispatch: the dispatcher confirms at once
        with Session(state.engine, expire_on_commit=False) as s:
            t = Lifecycle(session=s, rules=state.rules, policy=state.policy, now=when).perform(
                ticket_id=t.id, action="confirm", actor=DISPATCHER, body={}
            )
    assert t.state == "dispatched", (key, t.state, t.review_reasons)
    return int(t.id)


def _do(state: AppState, tid: int, when: dt.datetime, action: str, actor: Actor = OFFICE, **body: Any) -> None:
    with Session(state.engine, expire_on_commit=False) as s:
        Lifecycle(session=s, rules=state.rules, policy=state.policy, now=when).perform(
            ticket_id=tid, action=action, actor=actor, body=body
        )


@pytest.fixture
def fixture(state: AppState) -> AppState:
    t1 = _new(state, "R1", at(16, 9), RENTING.format("上南二村"), "咨询")
    _do(state, t1, at(16, 9, 10), "accept")
    _do(state, t1, at(16, 9, 30), "contact")
    _do(state, t1, at(16, 15), "resolve", result="实际解决", note="已拆除隔断")
    _do(state, t1, at(16, 16), "follow-up", DISPATCHER, satisfaction="满意")
    t2 = _new(state, "R2", at(13, 10), RENTING.format("上南五村"), "投诉")
    _do(state, t2, at(13, 11), "accept")
    _do(state, t2, at(16, 10), "resolve", result="解释说明", note="已解释")
    _do(state, t2, at(16, 17), "follow-up", DISPATCHER, satisfaction="不满意")
    t3 = _new(state, "R3", at(10, 9), RENTING.format("洪山花苑"), "咨询")
    _do(state, t3, at(10, 10), "accept")
    _do(state, t3, at(16, 12), "resolve", result="实际解决", note="已整改")
    t4 = _new(state, "R4", at(13, 9), RENTING.format("云台大厦"), "咨询")
    t5 = _new(state, "R5", at(16, 11), RENTING.format("德韵园"), "投诉")
    _do(state, t5, at(16, 12), "return", reason="职能不符")
    t6 = _new(state, "R6", at(15, 10), RENTING.format("齐河小区"), "咨询")
    _do(state, t6, at(16, 8), "accept")
    _do(state, t6, at(16, 9), "contact")
    _new(state, "R7", at(16, 13), "成山路人行道上的窨井盖缺了一角，晚上很危险，要求尽快更换。", "求助")
    t8 = _new(state, "R8", at(16, 14), RENTING.format("昌里花园"), "投诉")
    _do(state, t8, at(16, 15), "merge", DISPATCHER, into_id=t4)
    return state


def _report(state: AppState) -> dict[str, Any]:
    with state.engine.connect() as conn:
        return daily_report(conn, state.rules, DAY).model_dump()


def test_every_metric_matches_the_hand_computation(fixture: AppState) -> None:
    report = _report(fixture)
    rows = {(r["office"], r["category"]): r for r in report["rows"]}
    renting = rows[("pingan", "group_renting")]
    expected = {
        "received": 2,
        "resolved": 3,
        "due": 1,
        "on_time": 2,
        "overdue_open": 1,
        "contact_due": 1,
        "contact_on_time": 1,
        "solved": 2,
        "explained": 1,
        "rated": 2,
        "dispatched": 2,
        "returned": 1,
        "reopened": 1,
        "closure_rate": 3.0,
        "on_time_rate": 0.6667,
        "contact_rate": 1.0,
        "solved_rate": 0.6667,
        "satisfaction_rate": 0.5,
        "return_rate": 0.5,
        "reopen_rate": 0.3333,
        "mean_hours": 75.0,
        "median_hours": 72.0,
    }
    for metric, value in expected.items():
        assert renting[metric] == value, (metric, renting[metric], value)
    road = rows[("chengjian", "road_facility")]
    assert road["received"] == 1 and road["dispatched"] == 1 and road["resolved"] == 0
    totals = report["totals"]
    assert totals["received"] == 3 and totals["dispatched"] == 3 and totals["median_hours"] == 72.0
    # the merged duplicate (R8) is counted nowhere
    assert sum(r["received"] for r in report["rows"]) == 3


def test_ledger_counts_open_new_closed(fixture: AppState) -> None:
    with fixture.engine.connect() as conn:
        report = daily_report(conn, fixture.rules, dt.date(2026, 11, 15), DAY).model_dump()
    renting = next(item for item in report["ledger"] if item["category"] == "group_renting")
    day15, day16 = renting["days"]
    # open at the end of 11-15: R2, R3, R4, R6 (R1, R5, R7 not yet received)
    assert day15 == {"date": "2026-11-15", "open": 4, "new": 1, "reopened": 0, "closed": 0, "recurrence": 0}
    # 11-16: R1 and R5 new; R1, R2 and R3 closed, R2 reopened at its follow-up → R2, R4, R5, R6
    assert day16 == {"date": "2026-11-16", "open": 4, "new": 2, "reopened": 1, "closed": 3, "recurrence": 0}


def test_files_hold_the_same_numbers(fixture: AppState) -> None:
    report = _report(fixture)
    typed = DailyReport.model_validate(report)
    book = load_workbook(io.BytesIO(to_xlsx(typed)))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["承办科室", "分类", "受理量", "办结量"] and sheet.freeze_panes == "A2"
    first = {h: c.value for h, c in zip(header, sheet[2], strict=True)}
    row = report["rows"][0]
    assert first["受理量"] == row["received"] and first["办结率"] == row["closure_rate"]
    rate_cell = sheet.cell(row=2, column=header.index("按时办结率") + 1)
    assert rate_cell.number_format == "0.00%"
    last = [c.value for c in sheet[sheet.max_row]]
    assert last[0] == "合计" and last[2] == report["totals"]["received"]
    csv_bytes = to_csv(typed)
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    assert "承办科室,分类,受理量" in csv_bytes.decode("utf-8-sig")
