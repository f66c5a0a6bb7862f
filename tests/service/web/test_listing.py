"""The all-tickets page (filters, pages, export) and the queue's background poll."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from service.state import AppState
from service.web import listing
from tests.conftest import auth, payload, post_ticket, token_for
from tests.service.web.test_sessions import login

TEXTS = [
    "上南二村45号302室被二房东隔成小间群租，住了十几个人。",
    "洪山花苑12号一楼私自搭建彩钢板房。",
    "菜场门口有人占道经营卖水果，堵住人行道。",
    "小区垃圾桶满了没人清运，味道很大。",
    "楼道里有人飞线充电，很危险 100_% 要处理。",
]


def _seed(client: TestClient) -> list[dict[str, object]]:
    start = dt.datetime(2026, 11, 30, 15, 30, tzinfo=dt.UTC)  # 23:30 in Shanghai: still the 30th there
    out = []
    for i, text in enumerate(TEXTS):
        received = (start + dt.timedelta(hours=i)).isoformat()
        out.append(post_ticket(client, payload(external_id=f"LIST-{i}", content=text, received_at=received)).json())
    return out


def _ids(page: str) -> list[int]:
    return [int(part.split('"')[0]) for part in page.split('<tr data-id="')[1:]]


def test_filters_search_dates_and_the_office_view(client: TestClient, state: AppState) -> None:
    tickets = _seed(client)
    login(client, token_for(state, "dispatcher"))
    everything = client.get("/ui/tickets").text
    assert set(_ids(everything)) == {int(str(t["id"])) for t in tickets} and "共 5 件" in everything
    # newest first
    assert _ids(everything)[0] == tickets[-1]["id"]
    category = str(tickets[0]["category"])
    same = [t["id"] for t in tickets if t["category"] == category]
    assert sorted(_ids(client.get(f"/ui/tickets?category={category}").text)) == sorted(same)
    # "_" and "%" are searched literally, not as wildcards
    assert _ids(client.get("/ui/tickets", params={"q": "_%"}).text) == [tickets[4]["id"]]
    assert _ids(client.get("/ui/tickets", params={"q": "二房东"}).text) == [tickets[0]["id"]]
    # dates are the service's days (Asia/Shanghai): 15:30 UTC on the 30th is still 30 Nov there, 16:30 is 1 Dec
    nov30 = _ids(client.get("/ui/tickets", params={"from": "2026-11-30", "to": "2026-11-30"}).text)
    assert nov30 == [tickets[0]["id"]]
    assert len(_ids(client.get("/ui/tickets", params={"from": "2026-12-01"}).text)) == 4
    # an office sees only its own tickets
    office = str(tickets[0]["office"])
    client.cookies.clear()
    login(client, token_for(state, "office", office=office))
    own = [t["id"] for t in tickets if t["office"] == office]
    assert sorted(_ids(client.get("/ui/tickets").text)) == sorted(own)


def test_bad_filters_say_which_and_why(client: TestClient, state: AppState) -> None:
    _seed(client)
    login(client, token_for(state, "dispatcher"))
    r = client.get("/ui/tickets", params={"category": "no-such", "from": "2026-13-01", "page": "x"})
    page = html.unescape(r.text)
    assert r.url.path == "/ui/tickets" and "筛选条件无效" in page
    assert "没有这个分类「no-such」" in page and "开始日期「2026-13-01」" in page and "页码「x」无效" in page
    assert "队列已清空" not in page


def test_pages(client: TestClient, state: AppState, monkeypatch: pytest.MonkeyPatch) -> None:
    tickets = _seed(client)
    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    login(client, token_for(state, "dispatcher"))
    seen = []
    for number in (1, 2, 3):
        page = client.get("/ui/tickets", params={"page": number}).text
        assert f"第 {number} / 3 页" in page
        seen += _ids(page)
    assert sorted(seen) == sorted(int(str(t["id"])) for t in tickets)
    assert "下一页" not in client.get("/ui/tickets", params={"page": 3}).text


def test_export_is_the_filtered_list_redacted_for_the_reader(client: TestClient, state: AppState) -> None:
    tickets = _seed(client)
    login(client, token_for(state, "dispatcher"))
    r = client.get("/ui/export/tickets", params={"format": "csv", "from": "2026-12-01"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["序号", "工单编号", "接收时间"]
    assert sorted(int(row[0]) for row in rows[1:]) == sorted(int(str(t["id"])) for t in tickets[1:])
    r = client.get("/ui/export/tickets", params={"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None and sheet.max_row == 6
    # a viewer's export has no phone numbers or names in free text
    client.cookies.clear()
    post_ticket(client, payload(external_id="LIST-P", content="来电人张三，电话13812345678，楼上群租。"))
    login(client, token_for(state, "viewer"))
    text = client.get("/ui/export/tickets", params={"format": "csv"}).content.decode("utf-8-sig")
    assert "13812345678" not in text and "张三" not in text
    bad = client.get("/ui/export/tickets", params={"format": "pdf"})
    assert "导出格式只能是 xlsx 或 csv" in html.unescape(bad.text)


def test_an_export_streams_every_row_in_batches_and_leaves_no_file(
    client: TestClient, state: AppState, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tickets = _seed(client)
    monkeypatch.setattr("service.tickets.service.EXPORT_BATCH", 2)  # five tickets: three batches
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    login(client, token_for(state, "dispatcher"))
    newest_first = [int(str(t["id"])) for t in reversed(tickets)]
    r = client.get("/ui/export/tickets", params={"format": "csv"})
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [int(row[0]) for row in rows[1:]] == newest_first
    r = client.get("/ui/export/tickets", params={"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(r.content)).worksheets[0]
    assert [c.value for c in sheet[1]][:2] == ["序号", "工单编号"] and sheet.freeze_panes == "A2"
    assert [int(sheet.cell(row=i, column=1).value) for i in range(2, 7)] == newest_first
    assert not list(spool.iterdir())  # the temporary XLSX is gone once sent
    monkeypatch.setattr(listing, "EXPORT_LIMIT", 4)
    refused = client.get("/ui/export/tickets", params={"format": "csv"}, follow_redirects=True)
    assert "超过 4 件" in html.unescape(refused.text)


def test_queue_poll_lists_ids_and_does_not_keep_the_session_alive(client: TestClient, state: AppState) -> None:
    first = post_ticket(client, payload(external_id="POLL-1")).json()
    dispatcher = token_for(state, "dispatcher")
    login(client, dispatcher)
    start = state.clock()
    summary = client.get("/ui/queue/summary").json()
    queued = summary["ids"]
    assert summary["count"] == len(queued)
    second = post_ticket(client, payload(external_id="POLL-2", content="楼下饭店油烟很大，晚上排风机很吵。")).json()
    after = client.get("/ui/queue/summary").json()["ids"]
    assert (second["id"] in after) == (second["state"] == "pending_review")
    assert (first["id"] in queued) == (first["id"] in after)
    # polls every few minutes for the whole idle limit: the session still times out
    for minutes in range(5, state.settings.session_idle_minutes + 5, 5):
        state.clock = lambda m=minutes: start + dt.timedelta(minutes=m)  # type: ignore[misc]
        r = client.get("/ui/queue/summary")
    assert r.status_code == 401 and r.json()["expired"] is True
    assert client.get("/api/v1/tickets", headers=auth(dispatcher)).status_code == 200  # the API token is unaffected
