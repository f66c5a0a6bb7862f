"""Problems found on patrol: filed with photos by a 网格员 bound to an area, routed like hotline tickets with channel
巡查发现, seen by the patrol only within its area, and counted as 主动发现 in the report by area."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.areas.models import Area
from service.auth.service import create_user
from service.evidence.models import TicketPhoto
from service.state import AppState
from service.tickets.models import Ticket
from tests.conftest import ROOT, SECRET, auth, payload, post_ticket, token_for
from tests.service.areas.test_placement import load_example
from tests.service.evidence.test_ticket_photos import HTML, files, phone_photo

RENTING = "3号楼502室被隔成六个小间出租，进出人员多，楼道堆满杂物。"


def area_id(state: AppState, name: str) -> int:
    with Session(state.engine) as session:
        found = session.exec(select(Area.id).where(Area.name == name)).one()
        assert found is not None
        return found


def patrol_token(state: AppState, area: str, name: str = "网格员小陈") -> str:
    with Session(state.engine) as session:
        _, token = create_user(session=session, rules=state.rules, name=name, role="patrol", office=None, area=area)
    return token


def file(client: TestClient, token: str, area: int, **fields: Any) -> Any:
    photos = fields.pop("photos", [("a.jpg", phone_photo(), "image/jpeg")])
    data = {"text": RENTING, "area_id": str(area), "category": "group_renting", **fields}
    return client.post("/api/v1/discoveries", data=data, files=files(*photos) if photos else None, headers=auth(token))


def test_a_patrol_files_a_problem_that_is_routed_like_a_hotline_ticket(client: TestClient, state: AppState) -> None:
    load_example(state)
    token = patrol_token(state, "上南二村居民区")
    cell = area_id(state, "上南二村第2网格")
    filed = file(client, token, cell)
    assert filed.status_code == 201, filed.text
    body = filed.json()
    assert (body["source"], body["channel"], body["office"], body["category"]) == (
        "patrol",
        "巡查发现",
        "pingan",
        "group_renting",
    )
    assert (body["grid"], body["community"], body["cell"], body["placement"]) == (
        "上南片区",
        "上南二村居民区",
        "上南二村第2网格",
        "manual",
    )
    assert body["resolve_due"] is not None
    with Session(state.engine) as session:
        assert [p.stage for p in session.exec(select(TicketPhoto)).all()] == ["found"]
    dispatcher = auth(token_for(state, "dispatcher"))
    timeline = client.get(f"/api/v1/tickets/{body['id']}", headers=dispatcher).json()["timeline"]
    discover = next(e for e in timeline if e["action"] == "discover")
    assert discover["actor"] == "网格员小陈" and discover["actor_role"] == "patrol"
    # the patrol sees tickets of its own area, and no others
    elsewhere = post_ticket(client, payload(address="洪山路77号")).json()["id"]
    seen = client.get("/api/v1/tickets", headers=auth(token)).json()
    assert [t["id"] for t in seen["items"]] == [body["id"]]
    assert client.get(f"/api/v1/tickets/{elsewhere}", headers=auth(token)).status_code == 404
    # a patrol cannot act on tickets
    assert client.post(f"/api/v1/tickets/{body['id']}/accept", json={}, headers=auth(token)).status_code in (403, 409)


def test_a_bad_filing_names_its_field_and_stores_nothing(client: TestClient, state: AppState) -> None:
    load_example(state)
    token = patrol_token(state, "上南二村居民区")
    cell = area_id(state, "上南二村第1网格")
    outside = file(client, token, area_id(state, "齐河第1网格"))
    assert outside.status_code == 422 and outside.json()["detail"][0]["loc"][-1] == "area_id"
    empty = file(client, token, cell, text="   ")
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"][-1] == "text"
    fake = file(client, token, cell, photos=[("x.jpg", HTML, "image/jpeg")])
    assert fake.status_code == 422 and fake.json()["detail"][0]["loc"][-1] == "photos"
    unknown = file(client, token, cell, category="ufo")
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"][-1] == "category"
    viewer = client.post(
        "/api/v1/discoveries", data={"text": RENTING, "area_id": str(cell)}, headers=auth(token_for(state, "viewer"))
    )
    assert viewer.status_code == 403
    with Session(state.engine) as session:
        assert session.exec(select(Ticket)).first() is None and session.exec(select(TicketPhoto)).first() is None


def test_the_report_by_zone_counts_problems_found_before_anyone_called(client: TestClient, state: AppState) -> None:
    load_example(state)
    token = patrol_token(state, "上南片区")
    assert file(client, token, area_id(state, "德韵园网格")).status_code == 201
    post_ticket(client, payload(address="德韵园7号楼"))
    today = dt.datetime.now(ZoneInfo(state.rules.timezone)).date()
    period = {"date": (today - dt.timedelta(days=1)).isoformat(), "end": today.isoformat(), "by": "grid"}
    report = client.get("/api/v1/reports/daily", params=period, headers=auth(token_for(state, "viewer"))).json()
    rows = [r for r in report["rows"] if r["area"] == "上南片区"]
    assert sum(r["received"] for r in rows) == 2 and sum(r["discovered"] for r in rows) == 1
    assert report["totals"]["discovery_rate"] == 0.5


def test_a_patrol_account_is_bound_to_an_area(state: AppState) -> None:
    load_example(state)
    env = {**os.environ, "HOTLINE_DATABASE_URL": state.settings.database_url, "HOTLINE_WEBHOOK_SECRET": SECRET}
    command = [sys.executable, "-m", "service.cli", "users", "create", "--name", "志愿者老周", "--role", "patrol"]
    missing = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 2 and "--area" in missing.stderr
    wrong = subprocess.run([*command, "--area", "火星网格"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert wrong.returncode == 2 and "火星网格" in wrong.stderr
    made = subprocess.run([*command, "--area", "洪山花苑网格"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert made.returncode == 0, made.stderr
    assert "洪山花苑网格" in made.stdout
