"""Pages without rough edges: export with the page's session, friendly 404s, filters that say what is wrong."""

from __future__ import annotations

import io
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from service.state import AppState
from tests.conftest import auth, payload, post_ticket, token_for
from tests.service.web.test_sessions import login


def test_report_export_uses_the_page_session(client: TestClient, state: AppState) -> None:
    post_ticket(client, payload())
    assert client.get("/ui/reports/export", follow_redirects=False).status_code == 303  # no session: login page
    login(client, token_for(state, "office", "pingan"))
    page = client.get("/ui/reports")
    assert "/ui/reports/export?" in page.text and "/api/v1/reports/daily" not in page.text
    xlsx = client.get("/ui/reports/export", params={"start": "2026-11-01", "end": "2026-11-30", "format": "xlsx"})
    assert xlsx.status_code == 200 and "attachment" in xlsx.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    assert sheet.cell(row=1, column=1).value == "承办科室"
    offices = {sheet.cell(row=r, column=1).value for r in range(2, sheet.max_row + 1)} - {None, "合计"}
    assert offices <= {"平安办"}  # an office exports its own rows only
    csv = client.get("/ui/reports/export", params={"start": "2026-11-01", "end": "2026-11-30", "format": "csv"})
    assert csv.content.startswith(b"\xef\xbb\xbf")
    bad = client.get("/ui/reports/export", params={"start": "2026-11-30", "end": "2026-11-01"}, follow_redirects=False)
    assert bad.status_code == 303 and "跨度" in client.get(bad.headers["location"]).text


def test_a_ticket_address_that_is_not_a_number_gets_the_chinese_page(client: TestClient, state: AppState) -> None:
    login(client, token_for(state, "dispatcher"))
    for ref in ("abc", "99999", "1e5", "-1", "９"):
        r = client.get(f"/ui/tickets/{ref}")
        assert r.status_code == 404 and "不存在或无权查看" in r.text and "detail" not in r.text, ref


def test_an_unknown_filter_says_so(client: TestClient, state: AppState) -> None:
    dispatcher = token_for(state, "dispatcher")
    ticket = post_ticket(client, payload()).json()
    if ticket["state"] != "pending_review":  # the queue must hold something, or "队列已清空" would be true
        client.post(
            f"/api/v1/tickets/{ticket['id']}/reroute",
            json={"office": "pingan", "note": "属平安办"},
            headers=auth(dispatcher),
        )
        client.post(
            f"/api/v1/tickets/{ticket['id']}/return",
            json={"reason": "职能不符"},
            headers=auth(token_for(state, "office", "pingan")),
        )
    login(client, dispatcher)
    r = client.get("/ui/queue", params={"category": "no_such"}, follow_redirects=False)
    assert r.status_code == 303
    text = client.get(r.headers["location"]).text
    assert "筛选条件无效：没有这个分类" in text and "队列已清空" not in text


def test_a_long_queue_shows_its_most_pressing_page_and_counts_the_rest(
    client: TestClient, state: AppState, monkeypatch: Any
) -> None:
    from service.web import routes

    monkeypatch.setattr(routes, "QUEUE_SHOWN", 2)
    dispatcher, office = token_for(state, "dispatcher"), token_for(state, "office", "pingan")
    ids = []
    for n in range(3):
        ticket = post_ticket(client, payload(address=f"上南二村{n + 1}号")).json()
        ids.append(ticket["id"])
        if ticket["state"] != "pending_review":  # put each in the queue: returned by the office
            client.post(f"/api/v1/tickets/{ticket['id']}/reroute", json={"office": "pingan"}, headers=auth(dispatcher))
            client.post(f"/api/v1/tickets/{ticket['id']}/return", json={"reason": "职能不符"}, headers=auth(office))
    login(client, dispatcher)
    page = client.get("/ui/queue").text
    assert ">3 件<" in page and "显示最急的 2 件" in page
    summary = client.get("/ui/queue/summary").json()
    assert summary["count"] == 3 and len(summary["ids"]) == 2 and set(summary["ids"]) <= set(ids)
