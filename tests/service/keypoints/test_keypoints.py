"""Key points imported and placed in the area registry, re-imported by 编号, linked to the tickets at their building
(hotline tickets included, with their photos), updated by dispatchers only, and counted in the 违建 ledger."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.keypoints.models import KeyPoint, KeyPointUpdate
from service.keypoints.registry import parse, read_rows
from service.keypoints.service import (
    import_key_points,
    key_point_for_ticket,
    key_point_tickets,
    ledger,
    update_key_point,
)
from service.routing.service import grid_for
from service.state import AppState
from service.tickets.models import Ticket
from service.tickets.service import Actor
from tests.conftest import ROOT, SECRET, auth, payload, post_ticket, receive, token_for
from tests.service.areas.test_placement import load_example
from tests.service.evidence.test_ticket_photos import files, phone_photo

EXAMPLE = ROOT / "examples" / "keypoints.csv"
# a fixed moment (10:00 in Shanghai, 2026-07-01): nothing here depends on the machine's clock or time zone
NOW = dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.UTC)
ZONE = ZoneInfo("Asia/Shanghai")
DISPATCHER = Actor(name="派单员", role="dispatcher")
BUILDING = "院子里私自违章搭建了一间彩钢板房，已经快封顶了，要求拆除。"


def import_file(state: AppState, path: Path = EXAMPLE, now: dt.datetime = NOW) -> Any:
    rules = state.rules
    types = {code: rules.categories[code].name for code in rules.key_points.types}
    points = parse(read_rows(path), types=types, construction=rules.key_points.construction_type)
    with Session(state.engine) as session:
        return import_key_points(
            session=session, points=points, zone_of=lambda a: grid_for(a, rules), zone=ZONE, now=now
        )


def point(state: AppState, code: str) -> KeyPoint:
    with Session(state.engine) as session:
        return session.exec(select(KeyPoint).where(KeyPoint.code == code)).one()


def test_key_points_are_placed_in_the_area_registry(state: AppState) -> None:
    load_example(state)
    done = import_file(state)
    assert (done.created, done.updated, done.unlinked) == (8, 0, [])
    assert done.unplaced == ["3", "15"]  # on roads the registry knows only as a 片区 / 居民区
    twelve = point(state, "12")
    assert (twelve.zone, twelve.community, twelve.cell, twelve.placement) == (
        "上南片区",
        "上南二村居民区",
        "上南二村第2网格",
        "auto",
    )
    assert twelve.area_id is not None and twelve.building_key == "上南二村45号"
    assert (point(state, "8").cell, point(state, "22").cell) == ("洪山路单号网格", "云台大厦网格")
    three = point(state, "3")
    assert (three.zone, three.cell, three.status) == ("上南片区", None, "cleared")
    assert three.cleared_at == dt.datetime(2026, 5, 19, 16, 0, tzinfo=dt.UTC)  # 2026-05-20 00:00 in Shanghai


def test_without_a_registry_a_point_still_gets_its_zone_from_the_rules(state: AppState) -> None:
    import_file(state)
    twelve = point(state, "12")
    assert (twelve.zone, twelve.cell, twelve.placement) == ("上南片区", None, "unmatched")


def test_a_reimport_updates_by_number_and_keeps_the_progress_made_in_the_app(state: AppState, tmp_path: Path) -> None:
    import_file(state)
    before = point(state, "21")
    with Session(state.engine) as session:
        change = KeyPointUpdate(status="working", note="已约谈")
        update_key_point(
            session=session,
            key_point_id=before.id or 0,
            change=change,
            actor=DISPATCHER,
            rules=state.rules.key_points,
            now=NOW,
        )
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "21,德韵园7号楼,违法建筑,新增,18", "21,德韵园8号楼,违法建筑,新增,25"
    )
    text += "30,昌里路100号,违法建筑,存量,75,2025-05-05,2026-10-31,,,,（演示数据）\n"
    changed = tmp_path / "points.csv"
    changed.write_text(text, encoding="utf-8")
    done = import_file(state, changed, now=NOW + dt.timedelta(days=1))
    assert (done.created, done.updated) == (1, 8)
    after = point(state, "21")
    assert after.id == before.id and (after.address, after.building_key, after.area_m2) == (
        "德韵园8号楼",
        "德韵园8号",
        25,
    )
    assert after.status == "working"  # the file's 状态 is blank: what the dispatcher set stays
    assert after.note == "(演示数据)新发现:露台搭建"  # the file's 备注 (NFKC, as every cell) is the street's list
    with Session(state.engine) as session:
        assert len(session.exec(select(KeyPoint)).all()) == 9


def test_a_hotline_ticket_at_the_address_links_to_the_point_with_its_photos(
    client: TestClient, state: AppState
) -> None:
    load_example(state)
    import_file(state)
    twelve = point(state, "12")
    created = post_ticket(client, payload(address="上南二村 45 号 1 楼院内", content="一楼住户院子里违章搭建阳光房。"))
    assert created.status_code == 201, created.text
    ticket_id = created.json()["id"]
    elsewhere = post_ticket(client, payload(address="上南二村46号")).json()["id"]
    dispatcher = auth(token_for(state, "dispatcher"))
    photo = phone_photo(3)
    uploaded = client.post(
        f"/api/v1/tickets/{ticket_id}/photos",
        data={"stage": "contact"},
        files=files(("a.jpg", photo, "image/jpeg")),
        headers=dispatcher,
    )
    assert uploaded.status_code == 201, uploaded.text
    detail = client.get(f"/api/v1/keypoints/{twelve.id}", headers=dispatcher)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert [t["id"] for t in body["tickets"]] == [ticket_id] and elsewhere not in [t["id"] for t in body["tickets"]]
    (shown,) = body["photos"]
    assert shown["url"] == f"/api/v1/tickets/{ticket_id}/photos/{uploaded.json()[0]['id']}"
    assert client.get(shown["url"], headers=dispatcher).status_code == 200
    with Session(state.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        brief = key_point_for_ticket(session=session, ticket=ticket)
        other = session.get(Ticket, elsewhere)
        assert other is not None and key_point_for_ticket(session=session, ticket=other) is None
    assert brief is not None
    assert (brief.id, brief.code, brief.status_label, brief.page) == (
        twelve.id,
        "12",
        "整治中",
        f"/ui/keypoints/{twelve.id}",
    )


def test_an_office_sees_the_point_but_only_its_own_tickets(client: TestClient, state: AppState) -> None:
    import_file(state)
    twelve = point(state, "12")
    renting = post_ticket(client, payload(address="上南二村45号302室")).json()["id"]
    with Session(state.engine) as session:
        ticket = session.get(Ticket, renting)
        assert ticket is not None
        office = ticket.office or "pingan"
        other = next(code for code in state.rules.offices if code != office)
        mine = key_point_tickets(session=session, key_point_id=twelve.id or 0, actor=Actor("o", "office", office))
        theirs = key_point_tickets(session=session, key_point_id=twelve.id or 0, actor=Actor("o", "office", other))
    assert [t.id for t in mine] == [renting] and theirs == []
    viewer = auth(token_for(state, "viewer"))
    assert client.get(f"/api/v1/keypoints/{twelve.id}", headers=viewer).json()["tickets"][0]["id"] == renting
    assert client.get("/api/v1/keypoints/999999", headers=viewer).status_code == 404


def test_list_filters(client: TestClient, state: AppState) -> None:
    load_example(state)
    import_file(state)
    viewer = auth(token_for(state, "viewer"))

    def codes(query: str) -> list[str]:
        answer = client.get(f"/api/v1/keypoints{query}", headers=viewer)
        assert answer.status_code == 200, answer.text
        return [p["code"] for p in answer.json()]

    assert codes("") == ["3", "5", "7", "8", "12", "15", "21", "22"]
    assert codes("?status=cleared") == ["3", "15"]
    assert codes("?type=illegal_construction&zone=上南片区") == ["3", "5", "12", "21"]
    assert codes("?cell=上南二村第2网格") == ["12"]
    assert codes("?community=洪山居民区&kind=existing") == ["8"]
    assert client.get("/api/v1/keypoints").status_code == 401


def test_patch_checks_every_field_and_changes_nothing_when_refused(client: TestClient, state: AppState) -> None:
    import_file(state)
    state.clock = lambda: NOW
    twelve = point(state, "12")
    url = f"/api/v1/keypoints/{twelve.id}"
    dispatcher = auth(token_for(state, "dispatcher"))
    office = auth(token_for(state, "office", "guanli"))
    refused = client.patch(url, json={"status": "cleared", "demolished_m2": 46}, headers=office)
    assert refused.status_code == 403 and "派单员" in refused.json()["detail"]
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"status": "cleared"}, "demolished_m2", "实际拆除面积"),
        ({"status": "done"}, "status", "状态只能是"),
        ({"demolished_m2": -1}, "demolished_m2", "greater than or equal"),
        ({"target_date": "1999-12-31"}, "target_date", "整治期限超出合理范围"),
        ({"note": "a\x00b"}, "note", "控制字符"),
        ({"status": None}, "status", "状态只能是"),
        ({"area_m2": 1}, "area_m2", "Extra inputs"),
    ]
    for body, field, why in cases:
        answer = client.patch(url, json=body, headers=dispatcher)
        assert answer.status_code == 422, (body, answer.text)
        (problem,) = [p for p in answer.json()["detail"] if field in p["loc"]]
        assert why in problem["msg"], (body, problem)
    unchanged = point(state, "12")
    assert (unchanged.status, unchanged.demolished_m2, unchanged.cleared_at, unchanged.updated_at) == (
        twelve.status,
        twelve.demolished_m2,
        None,
        twelve.updated_at,
    )
    done = client.patch(url, json={"status": "已整治", "demolished_m2": 46.5, "note": "已拆除"}, headers=dispatcher)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["status_label"], done.json()["demolished_m2"]) == (
        "cleared",
        "已整治",
        46.5,
    )
    assert point(state, "12").cleared_at == NOW
    # a point of another type clears without m²; reopening forgets when it was cleared
    eight = point(state, "8")
    assert (
        client.patch(f"/api/v1/keypoints/{eight.id}", json={"status": "cleared"}, headers=dispatcher).status_code == 200
    )
    back = client.patch(url, json={"status": "working", "target_date": None}, headers=dispatcher).json()
    assert (back["cleared_at"], back["target_date"], back["demolished_m2"]) == (None, None, 46.5)
    # who changed what is kept, newest first; the import that created the point is the oldest entry
    history = client.get(url, headers=dispatcher).json()["history"]
    assert [h["source"] for h in history] == ["update", "update", "import"]
    assert history[1]["changes"]["status"] == [twelve.status, "cleared"]
    assert history[1]["changes"]["demolished_m2"] == [None, 46.5] and history[1]["actor_role"] == "dispatcher"
    assert history[0]["changes"]["status"] == ["cleared", "working"]
    # a PATCH that changes nothing leaves no entry
    client.patch(url, json={"status": "working"}, headers=dispatcher)
    assert len(client.get(url, headers=dispatcher).json()["history"]) == 3


def test_the_ledger_counts_the_local_year(state: AppState) -> None:
    """Shanghai's year: a point cleared at 01:00 on 1 January (17:00 UTC the day before) is the new year's."""
    import_file(state)
    rules = state.rules.key_points
    with Session(state.engine) as session:
        five, seven = point(state, "5"), point(state, "7")
        for p, m2, when in ((five, 80.0, dt.datetime(2025, 12, 31, 17, 0, tzinfo=dt.UTC)), (seven, 200.0, NOW)):
            update_key_point(
                session=session,
                key_point_id=p.id or 0,
                change=KeyPointUpdate(status="cleared", demolished_m2=m2),
                actor=DISPATCHER,
                rules=rules,
                now=when,
            )
    # 违建 tickets: at point 12 (not a clue), at an unknown building (a clue), in the next local year, and another type
    receive(state, "LC1", dt.datetime(2026, 3, 1, 2, tzinfo=dt.UTC), BUILDING, address="上南二村45号")
    receive(state, "LC2", dt.datetime(2026, 3, 2, 2, tzinfo=dt.UTC), BUILDING, address="洪山花苑3号楼")
    receive(state, "LC3", dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC), BUILDING, address="昌里花园9号")
    receive(
        state, "LC4", dt.datetime(2026, 3, 3, 2, tzinfo=dt.UTC), "上南路上有流动摊贩占道经营。", address="上南路1号"
    )
    with Session(state.engine) as session:
        categories = dict(session.exec(select(Ticket.external_id, Ticket.category)).all())
        assert categories["LC1"] == categories["LC2"] == categories["LC3"] == "illegal_construction"
        year = ledger(session=session, rules=rules, zone=ZONE, year=2026, now=NOW)
        last = ledger(session=session, rules=rules, zone=ZONE, year=2025, now=NOW)
        next_year = ledger(session=session, rules=rules, zone=ZONE, year=2027, now=NOW)
    # existing 违建 m² cleared in 2026: point 3 (120, file), point 5 (80, 01:00 on 1 January), point 7 (200)
    assert (year.target_m2, year.demolished_m2, year.progress) == (3000, 400, round(400 / 3000, 4))
    assert (year.new_found, year.new_demolished_m2, year.new_clues) == (1, 0, 1)  # point 21; the 洪山花苑 ticket
    assert (year.cleared, year.open) == (4, 4)  # 3, 5, 7 and 15 (群租); 8, 12, 21, 22 open
    # open and past their target date on 1 July 2026: 8 (30 April), 21 (31 May), 22 (30 June)
    assert [(p.code, p.days_overdue) for p in year.overdue] == [("8", 62), ("21", 31), ("22", 1)]
    assert (last.demolished_m2, last.cleared, last.new_found, last.new_clues) == (0, 0, 0, 0)
    assert (next_year.new_clues, next_year.demolished_m2) == (1, 0)


def test_the_ledger_api_and_the_pages(client: TestClient, state: AppState) -> None:
    from tests.service.web.test_sessions import login

    load_example(state)
    import_file(state)
    state.clock = lambda: NOW
    viewer = auth(token_for(state, "viewer"))
    body = client.get("/api/v1/keypoints/ledger?year=2026", headers=viewer).json()
    assert (body["year"], body["demolished_m2"], body["new_found"]) == (2026, 120, 1)
    assert client.get("/api/v1/keypoints/ledger", headers=viewer).json()["year"] == 2026  # the clock's local year
    assert client.get("/api/v1/keypoints/ledger?year=1999", headers=viewer).status_code == 422
    twelve = point(state, "12")
    csrf = login(client, token_for(state, "office", "guanli"))
    listing = client.get("/ui/keypoints").text
    assert "五违四必" in listing and "120</b> / 3000 平方米" in listing and "上南二村45号" in listing
    page = client.get(f"/ui/keypoints/{twelve.id}").text
    assert "上南片区 / 上南二村居民区 / 上南二村第2网格" in page and "更新整治情况" not in page  # an office reads only
    refused = client.post(f"/ui/keypoints/{twelve.id}", data={"csrf": csrf, "status": "cleared"}, follow_redirects=True)
    assert "只有派单员和管理员可以更新点位" in refused.text
    csrf = login(client, token_for(state, "dispatcher"))
    form = {"csrf": csrf, "status": "cleared", "demolished_m2": "", "target_date": "2026-08-31", "note": ""}
    missing = client.post(f"/ui/keypoints/{twelve.id}", data=form, follow_redirects=True)
    assert "未保存：拆除面积（demolished_m2）" in missing.text and point(state, "12").status == "working"
    done = client.post(f"/ui/keypoints/{twelve.id}", data=form | {"demolished_m2": "46"}, follow_redirects=True)
    assert "点位已更新" in done.text and point(state, "12").status == "cleared"
    assert "166</b> / 3000 平方米" in client.get("/ui/keypoints").text
    assert "点位 abc 不存在" in client.get("/ui/keypoints/abc", follow_redirects=True).text


def test_the_cli_imports_lists_and_prints_the_ledger(db_url: str, tmp_path: Path) -> None:
    if not db_url.startswith("sqlite"):
        return  # the commands run the same data-access code as above; once is enough
    env = {**os.environ, "HOTLINE_DATABASE_URL": db_url, "HOTLINE_WEBHOOK_SECRET": SECRET}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "service.cli", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)

    bad = tmp_path / "bad.csv"
    bad.write_text("编号,地址,问题类型,性质\n1,上南二村45号,违建,老的\n", encoding="utf-8")
    refused = run("keypoints", "import", str(bad))
    assert refused.returncode == 2 and "第 2 行 问题类型" in refused.stderr and "第 2 行 性质" in refused.stderr
    assert "检查通过：8 个点位" in run("keypoints", "import", str(EXAMPLE), "--dry-run").stdout
    done = run("keypoints", "import", str(EXAMPLE))
    assert done.returncode == 0 and "新增 8 个" in done.stdout, done.stderr
    assert "上南二村45号" in run("keypoints", "list").stdout
    data = json.loads(run("keypoints", "ledger", "--year", "2026", "--format", "json").stdout)
    assert (data["demolished_m2"], data["target_m2"]) == (120, 3000)
    assert "2026 年违建台账" in run("keypoints", "ledger", "--year", "2026").stdout
