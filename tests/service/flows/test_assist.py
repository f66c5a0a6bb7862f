"""联勤联动 over real HTTP, on SQLite and PostgreSQL: a dispatcher adds an assisting office; it sees the ticket (the
place in full, the caller masked), records its part and its photos, but cannot move the ticket; the lead office
closes it; the report counts the ticket for the lead office and lists the assist apart."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from service.state import AppState
from tests.conftest import auth, payload, post_ticket, token_for
from tests.service.evidence.test_ticket_photos import files, phone_photo
from tests.service.web.test_sessions import login

DONE = {"result": "实际解决", "note": "已拆除隔断"}


def test_an_assisting_office_records_its_part_and_the_lead_closes(client: TestClient, state: AppState) -> None:
    ticket_id = post_ticket(client, payload()).json()["id"]
    url = f"/api/v1/tickets/{ticket_id}"
    desk = auth(token_for(state, "dispatcher"))
    lead = auth(token_for(state, "office", "pingan"))
    helper = auth(token_for(state, "office", "guanli"))
    other = auth(token_for(state, "office", "chengguan"))
    client.post(f"{url}/confirm", json={}, headers=desk)
    assert client.get(url, headers=helper).status_code == 404  # not yet asked: not visible
    # only a dispatcher adds; the office must be known and not the lead itself; refusals change nothing
    assert client.post(f"{url}/assists", json={"office": "guanli"}, headers=lead).status_code == 403
    unknown = client.post(f"{url}/assists", json={"office": "nobody"}, headers=desk)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"][-1] == "office"
    itself = client.post(f"{url}/assists", json={"office": "pingan"}, headers=desk)
    assert itself.status_code == 422 and "主办科室" in itself.text
    assert client.get(url, headers=desk).json()["assists"] == []
    added = client.post(f"{url}/assists", json={"office": "guanli", "note": "配合拆除隔断"}, headers=desk)
    assert added.status_code == 200, added.text
    assert [(a["office"], a["ask_note"]) for a in added.json()] == [("guanli", "配合拆除隔断")]
    # asking again (a retry) adds nothing
    assert len(client.post(f"{url}/assists", json={"office": "guanli"}, headers=desk).json()) == 1
    seen = client.get(url, headers=helper)
    assert seen.status_code == 200
    ticket = seen.json()
    assert ticket["address"] == "上南二村45号302室"  # the assisting office must find the place
    assert ticket["caller_phone"] == "138****5678"  # calling the citizen is the lead office's job
    listed = client.get("/api/v1/tickets", headers=helper).json()
    assert [t["id"] for t in listed["items"]] == [ticket_id]
    assert client.get(url, headers=other).status_code == 404
    # it cannot move the ticket: the lead office does
    refused = client.post(f"{url}/accept", json={}, headers=helper)
    assert refused.status_code == 403 and "协办" in refused.text
    # its photos are 协办 photos; a lead's stage is refused
    wrong = client.post(
        f"{url}/photos", data={"stage": "resolve"}, files=files(("a.jpg", phone_photo(1), "image/jpeg")), headers=helper
    )
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"][-1] == "stage"
    photo = client.post(
        f"{url}/photos", data={"stage": "assist"}, files=files(("a.jpg", phone_photo(1), "image/jpeg")), headers=helper
    )
    assert photo.status_code == 201, photo.text
    assert client.post(f"{url}/assists/part", json={"note": "x"}, headers=other).status_code == 404
    empty = client.post(f"{url}/assists/part", json={"note": ""}, headers=helper)
    assert empty.status_code == 422
    part = client.post(f"{url}/assists/part", json={"note": "已派员配合拆除两处隔断"}, headers=helper)
    assert part.status_code == 200, part.text
    assert part.json()[0]["part_note"] == "已派员配合拆除两处隔断"
    # what an office did stays on the record
    assert client.delete(f"{url}/assists/guanli", headers=desk).status_code == 409
    for action, body in (("accept", {}), ("contact", {}), ("resolve", DONE)):
        assert client.post(f"{url}/{action}", json=body, headers=lead).status_code == 200
    late = client.post(f"{url}/assists/part", json={"note": "补充"}, headers=helper)
    assert late.status_code == 409
    detail = client.get(url, headers=desk).json()
    assert detail["state"] == "resolved" and detail["assists"][0]["part_by"]
    actions = [e["action"] for e in detail["timeline"]]
    assert "assist" in actions and "assist-part" in actions
    today = state.clock().astimezone(ZoneInfo(state.rules.timezone)).date()
    period = {"date": (today - dt.timedelta(days=1)).isoformat(), "end": today.isoformat()}
    report = client.get("/api/v1/reports/daily", params=period, headers=desk).json()
    assert {r["office"] for r in report["rows"]} == {"pingan"}  # the ticket counts once, for its lead
    assert [(a["office"], a["asked"], a["recorded"], a["open"]) for a in report["assists"]] == [("guanli", 1, 1, 0)]
    mine = client.get("/api/v1/reports/daily", params=period, headers=helper).json()
    assert [a["office"] for a in mine["assists"]] == ["guanli"]
    csv = client.get("/api/v1/reports/daily", params={**period, "format": "csv"}, headers=desk).content
    assert "协办科室" in csv.decode("utf-8-sig")


def test_a_dispatcher_removes_an_assist_before_any_part(client: TestClient, state: AppState) -> None:
    ticket_id = post_ticket(client, payload()).json()["id"]
    url = f"/api/v1/tickets/{ticket_id}"
    desk = auth(token_for(state, "dispatcher"))
    client.post(f"{url}/assists", json={"office": "guanli"}, headers=desk)
    assert client.delete(f"{url}/assists/chengguan", headers=desk).status_code == 404
    assert client.delete(f"{url}/assists/guanli", headers=desk).json() == []
    assert client.get(url, headers=auth(token_for(state, "office", "guanli"))).status_code == 404
    assert [e["action"] for e in client.get(url, headers=desk).json()["timeline"]][-2:] == ["assist", "unassist"]


def test_the_ticket_page_adds_an_assist_and_the_office_records_its_part(client: TestClient, state: AppState) -> None:
    ticket_id = post_ticket(client, payload()).json()["id"]
    client.post(f"/api/v1/tickets/{ticket_id}/confirm", json={}, headers=auth(token_for(state, "dispatcher")))
    csrf = login(client, token_for(state, "dispatcher"))
    page = client.get(f"/ui/tickets/{ticket_id}").text
    assert "联勤联动" in page and f'action="/ui/tickets/{ticket_id}/assist"' in page
    done = client.post(
        f"/ui/tickets/{ticket_id}/assist",
        data={"csrf": csrf, "office": "guanli", "note": "配合拆除"},
        follow_redirects=True,
    )
    assert "添加协办科室已保存" in done.text and "配合拆除" in done.text
    client.cookies.clear()
    csrf = login(client, token_for(state, "office", "guanli"))
    bench = client.get("/ui/workbench").text
    assert f"#{ticket_id}" in bench and "协办" in bench
    recorded = client.post(
        f"/ui/tickets/{ticket_id}/assist-part",
        data={"csrf": csrf, "note": "已到现场核实"},
        follow_redirects=True,
    )
    assert "协办情况已保存" in recorded.text and "已到现场核实" in recorded.text
    assert 'value="assist"' in recorded.text  # the photo form offers the 协办 step only
    assert 'value="resolve"' not in recorded.text
