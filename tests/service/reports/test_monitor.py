"""新增违建（群租）动态监测: new tickets by 片区 and week, hand-computed, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlmodel import Session

from service.state import AppState
from service.tickets.models import Ticket
from tests.conftest import auth, receive, token_for
from tests.service.web.test_sessions import login

SH = ZoneInfo("Asia/Shanghai")
BUILT = "{}楼顶有人私搭乱建违章建筑，加盖了一层彩钢板房，要求城管拆除违章搭建。"
RENTED = "{}有二房东按床位出租，隔成小间住了十几个人，要求查处群租。"


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SH)


def _take(state: AppState, key: str, when: dt.datetime, text: str, place: str, category: str) -> Ticket:
    ticket = receive(state, key, when, text.format(place), address=place + "1号")
    assert ticket.category == category, (key, ticket.category)
    return ticket


def test_new_tickets_by_area_and_week(client: TestClient, state: AppState) -> None:
    _take(state, "F", at(11, 1, 23), BUILT, "上南二村", "illegal_construction")  # the Sunday before: not counted
    _take(state, "A", at(11, 3, 10), BUILT, "上南二村", "illegal_construction")
    _take(state, "B", at(11, 10, 9), BUILT, "上南五村", "illegal_construction")
    again = _take(state, "C", at(11, 11, 9), BUILT, "云台大厦", "illegal_construction")
    _take(state, "D", at(11, 17, 9), BUILT, "某某路", "illegal_construction")
    _take(state, "G", at(11, 16, 0, 30), BUILT, "齐河小区", "illegal_construction")  # 11-15 16:30 UTC: local Monday
    _take(state, "E", at(11, 19, 9), BUILT, "上南二村", "illegal_construction")  # after the end
    _take(state, "R", at(11, 10, 9), RENTED, "上南二村", "group_renting")
    with Session(state.engine) as s:
        row = s.get(Ticket, again.id)
        assert row is not None
        row.recurrence = True  # what intake marks when a 违建 comes back (tested in places/test_hotspots.py)
        s.add(row)
        s.commit()
    dispatcher = token_for(state, "dispatcher")
    r = client.get("/api/v1/reports/monitor", params={"end": "2026-11-18", "weeks": 3}, headers=auth(dispatcher))
    assert r.status_code == 200, r.text
    built, rented = r.json()["lines"]
    assert built["name"] == "违法建筑" and built["weeks"] == ["2026-11-02", "2026-11-09", "2026-11-16"]
    rows = {row["grid"]: (row["new"], row["recurrence"]) for row in built["rows"]}
    assert rows == {
        "上南片区": ([1, 1, 0], [0, 0, 0]),
        "云莲片区": ([0, 1, 0], [0, 1, 0]),
        "未定位": ([0, 0, 1], [0, 0, 0]),
        "齐河片区": ([0, 0, 1], [0, 0, 0]),
    }
    assert [row["grid"] for row in built["rows"]] == ["上南片区", "云莲片区", "未定位", "齐河片区"] and built[
        "totals"
    ] == [1, 2, 2]
    assert rented["name"] == "群租" and rented["totals"] == [0, 1, 0]
    office = client.get(
        "/api/v1/reports/monitor",
        params={"end": "2026-11-18", "weeks": 3},
        headers=auth(token_for(state, "office", "pingan")),
    ).json()
    assert office["lines"][0]["rows"] == [] and office["lines"][1]["totals"] == [0, 1, 0]  # 违建 is 管理办's
    login(client, dispatcher)
    page = client.get("/ui/reports", params={"start": "2026-11-18"}).text
    assert "新增违法建筑动态监测" in page and "新增群租动态监测" in page
    for params, field in (({"end": "2026-11-18", "weeks": 0}, "weeks"), ({"end": "0001-01-01"}, "end")):
        bad = client.get("/api/v1/reports/monitor", params=params, headers=auth(dispatcher))
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == field, bad.text
