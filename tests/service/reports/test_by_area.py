"""Reports by 片区, 居民区 and 网格: JSON, CSV, XLSX (API and CLI), the by-area ledger and the page's area charts."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from service.state import AppState
from tests.conftest import SECRET, auth, payload, post_ticket, token_for
from tests.service.areas.test_placement import load_example
from tests.service.web.test_sessions import login

ROOT = Path(__file__).resolve().parents[3]
RENTING = "二房东把房子隔成六个小间按床位出租，住了十几个人，要求查处群租。"
BUILDING = "楼下底商在屋顶违章搭建了一间阳光房，还在扩建，要求拆除违建。"


def _tickets(client: TestClient, state: AppState) -> dict[str, int]:
    load_example(state)
    made = {
        "renting_sn2": post_ticket(client, payload(content=RENTING, title="群租", address="上南二村45号302室")),
        "renting_sn2b": post_ticket(client, payload(content=RENTING, title="群租", address="上南二村12号")),
        "building_hs": post_ticket(client, payload(content=BUILDING, title="违建", address="洪山路77号")),
        "renting_lost": post_ticket(client, payload(content=RENTING, title="群租", address="长清路100号")),
    }
    ids = {k: r.json()["id"] for k, r in made.items()}
    dispatcher = auth(token_for(state, "dispatcher"))
    for ticket_id in ids.values():  # the shipped model sends everything to review: confirm routes each as classified
        client.post(f"/api/v1/tickets/{ticket_id}/confirm", json={}, headers=dispatcher)
    office = auth(token_for(state, "office", "pingan"))
    target = ids["renting_sn2"]
    for action, body in (("accept", {}), ("contact", {}), ("resolve", {"result": "实际解决", "note": "已拆除隔断"})):
        answer = client.post(f"/api/v1/tickets/{target}/{action}", json=body, headers=office)
        assert answer.status_code == 200, answer.text
    return ids


def _period(state: AppState) -> dict[str, str]:
    today = dt.datetime.now(ZoneInfo(state.rules.timezone)).date()
    return {"date": (today - dt.timedelta(days=1)).isoformat(), "end": today.isoformat()}


def test_the_report_by_area_counts_the_same_tickets_as_by_office(client: TestClient, state: AppState) -> None:
    _tickets(client, state)
    viewer = auth(token_for(state, "viewer"))
    by_office = client.get("/api/v1/reports/daily", params=_period(state), headers=viewer).json()
    by_cell = client.get("/api/v1/reports/daily", params={**_period(state), "by": "cell"}, headers=viewer).json()
    assert by_cell["by"] == "cell" and by_cell["totals"] == by_office["totals"]
    received = {(r["area"], r["category"]): r["received"] for r in by_cell["rows"]}
    assert received[("上南二村第2网格", "group_renting")] == 1 and received[("上南二村第1网格", "group_renting")] == 1
    assert received[("洪山路单号网格", "illegal_construction")] == 1
    assert received[("未定位", "group_renting")] == 1
    assert by_cell["rows"][-1]["area"] == "未定位"  # the unplaced come last
    by_community = client.get("/api/v1/reports/daily", params={**_period(state), "by": "community"}, headers=viewer)
    rows = {(r["area"], r["category"]): r for r in by_community.json()["rows"]}
    renting = rows[("上南二村居民区", "group_renting")]
    assert (renting["received"], renting["resolved"]) == (2, 1)
    ledger = {(a["category"], a["area"]): a for a in by_community.json()["ledger_areas"]}
    sn2 = ledger[("group_renting", "上南二村居民区")]
    assert (sn2["new"], sn2["closed"], sn2["closing"]) == (2, 1, 1)
    assert ledger[("illegal_construction", "洪山居民区")]["closing"] == 1
    csv = client.get("/api/v1/reports/daily", params={**_period(state), "by": "grid", "format": "csv"}, headers=viewer)
    assert csv.content.decode("utf-8-sig").splitlines()[0].startswith("片区,分类,受理量")
    assert "分类,片区,期初在办,新增,重办,办结,期末在办,回潮" in csv.content.decode("utf-8-sig")
    bad = client.get("/api/v1/reports/daily", params={**_period(state), "by": "street"}, headers=viewer)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "by"]
    office = auth(token_for(state, "office", "guanli"))
    mine = client.get("/api/v1/reports/daily", params={**_period(state), "by": "grid"}, headers=office).json()
    assert {(r["area"], r["category"]) for r in mine["rows"]} == {("齐河片区", "illegal_construction")}


def test_the_cli_writes_an_xlsx_by_residential_area(client: TestClient, state: AppState, tmp_path: Path) -> None:
    _tickets(client, state)
    out = tmp_path / "by-community.xlsx"
    period = _period(state)
    env = {**os.environ, "HOTLINE_DATABASE_URL": state.settings.database_url, "HOTLINE_WEBHOOK_SECRET": SECRET}
    command = [sys.executable, "-m", "service.cli", "report", "--date", period["date"], "--end", period["end"]]
    done = subprocess.run(
        [*command, "--by", "居民区", "--format", "xlsx", "--out", str(out)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    book = load_workbook(io.BytesIO(out.read_bytes()))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["居民区", "分类", "受理量"]
    areas = {row[0] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert {"上南二村居民区", "洪山居民区", "未定位", "合计"} <= areas
    where = book["台账按居民区"]
    assert [c.value for c in where[1]][:3] == ["分类", "居民区", "期初在办"]
    refused = subprocess.run([*command, "--by", "街道"], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "--by 只能是 科室、片区、居民区 或 网格" in refused.stderr


def test_the_page_draws_each_zone_and_residential_area(client: TestClient, state: AppState) -> None:
    _tickets(client, state)
    login(client, token_for(state, "viewer"))
    period = _period(state)
    page = client.get("/ui/reports", params={"start": period["date"], "end": period["end"], "by": "grid"}).text
    assert "分片区、分类明细" in page and "动态清零台账：按片区" in page
    charts = page.split('<section class="card area-charts">')[1].split("</section>")[0]
    assert "<figcaption>上南片区</figcaption>" in charts and "<figcaption>齐河片区</figcaption>" in charts
    shangnan = charts.split("<figcaption>上南片区</figcaption>")[1].split("</figure>")[0]
    bars: dict[str, Any] = {}
    for title in shangnan.split("<title>")[1:]:
        name, label, n = title.split("</title>")[0].rsplit(" ", 2)
        bars[(name, label)] = int(n)
    assert bars[("上南片区", "在办")] == 1 and bars[("上南片区", "办结")] == 1
    assert bars[("上南二村居民区", "在办")] == 1 and bars[("上南二村居民区", "超期")] == 0
    export = client.get(
        "/ui/reports/export", params={"start": period["date"], "end": period["end"], "by": "cell", "format": "xlsx"}
    )
    assert load_workbook(io.BytesIO(export.content)).worksheets[0].cell(row=1, column=1).value == "网格"
    wrong = client.get("/ui/reports", params={"by": "street"}, follow_redirects=True)
    assert "分行方式只能是" in wrong.text


def test_the_hotspot_list_breaks_down_by_area(client: TestClient, state: AppState) -> None:
    load_example(state)
    texts = (
        RENTING,
        "45号302室天天有人搬进搬出，一套房住了十几个租客，晚上很吵，怀疑群租。",
        "隔壁被改成床位房，楼道里堆满行李，消防隐患大，请查处群租。",
    )
    for text in texts:
        post_ticket(client, payload(content=text, title="群租", address="上南二村45号302室"))
    post_ticket(client, payload(content=BUILDING, title="违建", address="洪山路77号"))
    viewer = auth(token_for(state, "viewer"))
    report = client.get("/api/v1/reports/daily", params={**_period(state), "by": "community"}, headers=viewer).json()
    assert [(h["area"], h["building"], h["category"], h["tickets"], h["open"]) for h in report["hotspot_list"]] == [
        ("上南二村居民区", "上南二村45号", "group_renting", 3, 3)
    ]
    line = report["hotspot_list"][0]
    assert (line["zone"], line["cell"]) == ("上南片区", "上南二村第2网格") and line["last_received"]
    by_office = client.get("/api/v1/reports/daily", params=_period(state), headers=viewer).json()
    assert [h["area"] for h in by_office["hotspot_list"]] == ["上南片区"]  # offices' report: by 片区
    book = load_workbook(
        io.BytesIO(
            client.get(
                "/api/v1/reports/daily", params={**_period(state), "by": "cell", "format": "xlsx"}, headers=viewer
            ).content
        )
    )
    sheet = book["热点清单"]
    assert [c.value for c in sheet[1]][:4] == ["热点清单·网格", "楼栋", "分类", "期内工单"]
    assert [c.value for c in sheet[2]][:4] == ["上南二村第2网格", "上南二村45号", "群租", 3]
    login(client, token_for(state, "viewer"))
    page = client.get(
        "/ui/reports", params={"start": _period(state)["date"], "end": _period(state)["end"], "by": "cell"}
    )
    assert "热点清单（按网格）" in page.text and "上南二村45号" in page.text
