"""Report API, CLI-free formats, snapshots that later reads return unchanged, and the daily push."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session, select

from service.reports.models import ReportSnapshot
from service.reports.push import push_yesterday
from service.state import AppState
from tests.conftest import auth, payload, post_ticket, token_for
from tests.service.notify.receiver import robot as start_robot


def test_report_formats_and_roles(client: TestClient, state: AppState) -> None:
    post_ticket(client, payload())
    post_ticket(client, payload(content="成山路人行道上的窨井盖缺了一角，晚上很危险。", title="井盖"))
    # "today" is the report's day in the street's time zone, not the machine's
    today = dt.datetime.now(ZoneInfo(state.rules.timezone)).date().isoformat()
    viewer = auth(token_for(state, "viewer"))
    body = client.get("/api/v1/reports/daily", params={"date": today}, headers=viewer).json()
    assert body["totals"]["received"] >= 2 and {"rows", "ledger", "period"} <= set(body)
    xlsx = client.get("/api/v1/reports/daily", params={"date": today, "format": "xlsx"}, headers=viewer)
    sheet = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    assert sheet.cell(row=1, column=1).value == "承办科室"
    csv = client.get("/api/v1/reports/daily", params={"date": today, "format": "csv"}, headers=viewer)
    assert csv.content.startswith(b"\xef\xbb\xbf") and "text/csv" in csv.headers["content-type"]
    office = auth(token_for(state, "office", "pingan"))
    mine = client.get("/api/v1/reports/daily", params={"date": today}, headers=office).json()
    assert {r["office"] for r in mine["rows"]} == {"pingan"}
    bad = client.get("/api/v1/reports/daily", params={"date": today, "end": "2000-01-01"}, headers=viewer)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "end"]
    assert client.get("/api/v1/reports/daily", params={"date": "2026-02-30"}, headers=viewer).status_code == 422
    ancient = client.get("/api/v1/reports/daily", params={"date": "0001-01-01"}, headers=viewer)
    assert ancient.status_code == 422 and ancient.json()["detail"][0]["loc"] == ["query", "date"]
    assert client.get("/api/v1/reports/daily", params={"date": today}).status_code == 401


def test_daily_push_stores_a_snapshot_that_later_reads_return(client: TestClient, state: AppState) -> None:
    yesterday_ticket = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    post_ticket(client, payload(received_at=yesterday_ticket.isoformat()))
    received: list[dict[str, Any]] = []
    robot = start_robot(received)
    hooks = {"leaders": [f"http://127.0.0.1:{robot.server_address[1]}/send"]}
    now = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    first = push_yesterday(state.engine, state.rules, hooks, now=now)
    again = push_yesterday(state.engine, state.rules, hooks, now=now)
    robot.shutdown()
    assert first.pushed and again.id == first.id and len(received) == 1
    assert "工单日报" in received[0]["markdown"]["content"]
    # new tickets for that day after the snapshot do not change what is read back for it
    post_ticket(client, payload())
    day = first.day.isoformat()
    viewer = auth(token_for(state, "viewer"))
    read = client.get("/api/v1/reports/daily", params={"date": day}, headers=viewer).json()
    assert read == first.report
    with Session(state.engine) as s:
        assert len(s.exec(select(ReportSnapshot)).all()) == 1


def test_one_period_rule_for_the_api_and_the_page(client: TestClient, state: AppState) -> None:
    from tests.service.web.test_sessions import login

    dispatcher = auth(token_for(state, "dispatcher"))
    leap_year = {"date": "2028-01-01", "end": "2028-12-31"}  # 366 days, inclusive
    assert client.get("/api/v1/reports/daily", params=leap_year, headers=dispatcher).status_code == 200
    too_long = client.get(
        "/api/v1/reports/daily", params={"date": "2028-01-01", "end": "2029-01-01"}, headers=dispatcher
    )
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["loc"] == ["query", "end"]
    login(client, token_for(state, "dispatcher", name="网页派单员"))
    assert "办结率报表" in client.get("/ui/reports", params={"start": "2028-01-01", "end": "2028-12-31"}).text
    page = client.get("/ui/reports", params={"start": "2028-01-01", "end": "2029-01-01"})
    assert "跨度不超过 366 天" in page.text
