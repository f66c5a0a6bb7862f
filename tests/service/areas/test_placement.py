"""Tickets placed in the area registry at intake, corrected by a dispatcher, and kept through re-imports."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.areas.models import Area, Placement
from service.areas.registry import COLUMNS, parse, read_rows
from service.areas.service import AreaIndex, import_registry
from service.routing.service import grid_for
from service.state import AppState
from service.tickets.models import Ticket
from tests.conftest import SECRET, auth, payload, post_ticket, token_for
from tests.service.web.test_sessions import login

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "areas.csv"
NOW = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)


def load_example(state: AppState, path: Path = EXAMPLE) -> Any:
    registry = parse(read_rows(path), zones=state.rules.places.grids)
    with Session(state.engine) as session:
        return import_registry(
            session=session, registry=registry, zone_of=lambda a: grid_for(a, state.rules), now=state.clock()
        )


@pytest.fixture
def index(state: AppState) -> AreaIndex:
    load_example(state)
    with Session(state.engine) as session:
        return AreaIndex.build(session)


@pytest.mark.parametrize(
    ("address", "cell", "community", "zone"),
    [
        ("上南二村45号302室", "上南二村第2网格", "上南二村居民区", "上南片区"),
        ("浦东新区周家渡街道上南二村 12 号 101 室", "上南二村第1网格", "上南二村居民区", "上南片区"),
        ("上海市浦东新区上南路上南二村５号", "上南二村第1网格", "上南二村居民区", "上南片区"),
        ("洪山路 77 号底商", "洪山路单号网格", "洪山居民区", "齐河片区"),
        ("洪山路78号", "洪山路双号网格", "洪山居民区", "齐河片区"),
        ("耀华路 250 弄 3 号", "耀华第2网格", "耀华居民区", "世博片区"),
        ("耀华路与西营路路口", None, "耀华居民区", "世博片区"),
        ("上南路4000号", None, None, "上南片区"),
        ("德韵园7号楼", "德韵园网格", "德韵园居民区", "上南片区"),
    ],
)
def test_an_address_finds_its_finest_area(index: AreaIndex, address: str, cell: str, community: str, zone: str) -> None:
    found = index.place(address)
    assert found.placement == Placement.auto and found.spot is not None
    assert (found.spot.cell, found.spot.community, found.spot.zone) == (cell, community, zone)


def test_an_unknown_or_doubtful_address_is_not_placed(index: AreaIndex) -> None:
    assert index.place("长清路 100 号").placement == Placement.unmatched
    assert index.place("上南二村 300 号").placement == Placement.unmatched  # outside both grids' ranges
    # two estates of equal weight in one address: a guess would put the ticket in the wrong grid
    doubtful = index.place("上南五村和上南七村之间的空地")
    assert doubtful.placement == Placement.ambiguous and doubtful.spot is None


def test_a_signed_ticket_is_placed_and_its_grid_leader_named(client: TestClient, state: AppState) -> None:
    load_example(state)
    created = post_ticket(client, payload(address="上南二村45号302室"))
    assert created.status_code == 201, created.text
    dispatcher = auth(token_for(state, "dispatcher"))
    detail = client.get(f"/api/v1/tickets/{created.json()['id']}", headers=dispatcher).json()
    assert (detail["grid"], detail["community"], detail["cell"]) == ("上南片区", "上南二村居民区", "上南二村第2网格")
    assert detail["placement"] == "auto"
    assert detail["place"]["leader"] == "马丽" and detail["place"]["placement_label"] == "自动定位"
    login(client, token_for(state, "dispatcher"))
    page = client.get(f"/ui/tickets/{created.json()['id']}").text
    assert "上南片区 / 上南二村居民区 / 上南二村第2网格" in page and "自动定位" in page
    assert "<dt>网格长</dt>" in page and "马丽" in page


def test_a_dispatcher_corrects_the_place_on_the_ticket_page(client: TestClient, state: AppState) -> None:
    load_example(state)
    ticket_id = post_ticket(client, payload(address="长清路 100 号")).json()["id"]
    csrf = login(client, token_for(state, "dispatcher"))
    page = client.get(f"/ui/tickets/{ticket_id}").text
    assert "待定位：地址未匹配到网格" in page
    option = page.split(">齐河片区 / 洪山居民区 / 洪山花苑网格<")[0].rsplit('value="', 1)[1].split('"')[0]
    empty = client.post(f"/ui/tickets/{ticket_id}/place", data={"csrf": csrf, "area_id": ""}, follow_redirects=True)
    assert "请选择区域" in empty.text
    done = client.post(
        f"/ui/tickets/{ticket_id}/place",
        data={"csrf": csrf, "area_id": option, "note": "电话核实"},
        follow_redirects=True,
    )
    assert "位置已更正" in done.text and "人工定位" in done.text and "范敏" in done.text
    assert "更正位置" in done.text.split('<table class="grid timeline">')[1]


def test_unplaced_tickets_wait_in_the_filter_until_a_dispatcher_places_them(
    client: TestClient, state: AppState
) -> None:
    load_example(state)
    lost = post_ticket(client, payload(address="长清路 100 号")).json()["id"]
    placed = post_ticket(client, payload(address="德韵园7号楼")).json()["id"]
    dispatcher = auth(token_for(state, "dispatcher"))
    waiting = client.get("/api/v1/tickets?unplaced=true", headers=dispatcher).json()
    assert [t["id"] for t in waiting["items"]] == [lost]
    with Session(state.engine) as session:
        cell = session.exec(select(Area).where(Area.name == "齐河第1网格")).one()
    office = auth(token_for(state, "office", office="pingan"))
    refused = client.post(f"/api/v1/tickets/{lost}/place", json={"area_id": cell.id}, headers=office)
    assert refused.status_code in (403, 404)
    missing = client.post(f"/api/v1/tickets/{lost}/place", json={"area_id": 999_999}, headers=dispatcher)
    assert missing.status_code == 422 and "area_id" in missing.text
    moved = client.post(
        f"/api/v1/tickets/{lost}/place", json={"area_id": cell.id, "note": "实地核实"}, headers=dispatcher
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["cell"], moved.json()["grid"], moved.json()["placement"]) == (
        "齐河第1网格",
        "齐河片区",
        "manual",
    )
    assert client.get("/api/v1/tickets?unplaced=true", headers=dispatcher).json()["items"] == []
    by_cell = client.get("/api/v1/tickets", params={"cell": "德韵园网格"}, headers=dispatcher).json()
    assert [t["id"] for t in by_cell["items"]] == [placed]
    timeline = client.get(f"/api/v1/tickets/{lost}", headers=dispatcher).json()["timeline"]
    event = timeline[-1]
    assert event["action"] == "place" and event["note"] == "实地核实"
    assert event["data"]["before"]["placement"] == "unmatched" and event["data"]["after"]["cell"] == "齐河第1网格"
    # a re-import places open tickets again, but never one a dispatcher placed by hand
    result = load_example(state)
    assert result.replaced == 0
    with Session(state.engine) as session:
        ticket = session.get(Ticket, lost)
        assert ticket is not None and (ticket.cell, ticket.placement) == ("齐河第1网格", "manual")


def test_an_import_places_open_tickets_and_retires_dropped_areas(
    state: AppState, client: TestClient, tmp_path: Path
) -> None:
    before = post_ticket(client, payload(address="上南二村45号302室")).json()["id"]
    with Session(state.engine) as session:
        ticket = session.get(Ticket, before)
        assert ticket is not None and (ticket.placement, ticket.grid) == ("unmatched", "上南片区")
    first = load_example(state)
    assert first.replaced == 1 and (first.zones, first.communities, first.cells) == (4, 11, 18)
    with Session(state.engine) as session:
        ticket = session.get(Ticket, before)
        assert ticket is not None and ticket.cell == "上南二村第2网格" and ticket.version == 1
    smaller = tmp_path / "areas.csv"
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    smaller.write_text("\n".join(line for line in lines if "上南二村第2网格" not in line) + "\n", encoding="utf-8")
    second = load_example(state, smaller)
    assert second.retired == 1 and second.replaced == 1
    with Session(state.engine) as session:
        ticket = session.get(Ticket, before)
        # no grid holds 45 号 any more: 待定位, and the 片区 comes from the rules' road and estate names again
        assert ticket is not None and (ticket.cell, ticket.community, ticket.placement) == (None, None, "unmatched")
        assert ticket.grid == "上南片区" and ticket.area_id is None
        retired = session.exec(select(Area).where(Area.name == "上南二村第2网格")).one()
        assert retired.active is False
    tree = client.get("/api/v1/areas", headers=auth(token_for(state, "viewer"))).json()
    assert [z["name"] for z in tree] == ["世博片区", "上南片区", "云莲片区", "齐河片区"]
    shangnan = tree[1]
    assert "上南二村第2网格" not in json.dumps(shangnan, ensure_ascii=False)


def test_the_cli_imports_and_a_bad_file_changes_nothing(state: AppState, tmp_path: Path) -> None:
    env = {**os.environ, "HOTLINE_DATABASE_URL": state.settings.database_url, "HOTLINE_WEBHOOK_SECRET": SECRET}
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(COLUMNS) + "\n上南片区,,,,,,上南路,9,3,\n火星片区,,,,,,,,,\n", encoding="utf-8")
    refused = subprocess.run(
        [sys.executable, "-m", "service.cli", "areas", "import", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert refused.returncode == 2
    assert "第 2 行 起号/止号：起号 9 大于止号 3" in refused.stderr and "第 3 行 片区" in refused.stderr
    assert "2 处错误，未导入任何内容" in refused.stderr
    with Session(state.engine) as session:
        assert session.exec(select(Area)).first() is None
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "areas", "import", str(EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "已导入 4 个片区、11 个居民区、18 个网格" in done.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "service.cli", "areas", "list"], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert "    洪山路单号网格" in listed.stdout and "洪山路 1–999单号" in listed.stdout
