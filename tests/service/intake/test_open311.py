"""Open311 GeoReport v2 door."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from classifier.decision import Classifier
from service.app import create_app
from service.rules import ServiceRules
from service.state import AppState
from service.tickets.models import Ticket
from tests.conftest import auth, make_state, payload, post_ticket, token_for


def test_services_list_categories(client: TestClient) -> None:
    services = client.get("/open311/v2/services.json").json()
    codes = {s["service_code"] for s in services}
    assert {"group_renting", "illegal_construction", "other"} <= codes
    assert next(s for s in services if s["service_code"] == "group_renting")["group"] == "平安办"


def test_file_and_follow_a_request(client: TestClient, state: AppState) -> None:
    key = token_for(state, "dispatcher")
    r = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": key,
            "description": "洪山路口人行道上的盲道被电动车占满了，盲人根本没法走。",
            "address_string": "洪山路88号",
            "first_name": "明",
            "last_name": "李",
            "phone": "13900001111",
        },
    )
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    dispatcher = auth(key)
    if client.get(f"/api/v1/tickets/{rid}", headers=dispatcher).json()["state"] == "pending_review":
        # not public until a dispatcher sends it on
        assert client.get(f"/open311/v2/requests/{rid}.json").status_code == 404
        assert client.post(f"/api/v1/tickets/{rid}/confirm", json={}, headers=dispatcher).status_code == 200
    got = client.get(f"/open311/v2/requests/{rid}.json").json()[0]
    assert got["status"] == "open" and got["address"] == "洪山路88号"
    assert "13900001111" not in str(got) and "李明" not in str(got)
    assert got["expected_datetime"] is not None


def test_bad_key_and_unknown_request(client: TestClient, state: AppState) -> None:
    r = client.post("/open311/v2/requests.json", data={"api_key": "nope", "description": "路灯不亮"})
    assert r.status_code == 403
    viewer = token_for(state, "viewer")
    assert client.post("/open311/v2/requests.json", data={"api_key": viewer, "description": "x"}).status_code == 403
    assert client.get("/open311/v2/requests/99999.json").status_code == 404
    missing = client.post("/open311/v2/requests.json", data={"api_key": "x"})
    assert missing.status_code == 422


PERSONAL = "来电人张三，电话13812345678，身份证310101199001011234，住上南二村45号302室，反映楼上被隔成八间群租。"
SECRETS = ("13812345678", "12345678", "310101199001011234", "19900101", "张三", "302")


def _dispatched(client: TestClient, state: AppState, **fields: Any) -> dict[str, Any]:
    ticket = post_ticket(client, payload(**fields)).json()
    if ticket["state"] == "pending_review":
        dispatcher = auth(token_for(state, "dispatcher"))
        assert client.post(f"/api/v1/tickets/{ticket['id']}/confirm", json={}, headers=dispatcher).status_code == 200
    return dict(ticket)


def test_public_reads_hold_no_personal_data(client: TestClient, state: AppState) -> None:
    fields = {"content": PERSONAL, "title": "张三反映群租", "address": "上南二村45号302室", "caller_name": "张三"}
    ids = [_dispatched(client, state, **fields)["id"] for _ in range(3)]
    dispatcher = auth(token_for(state, "dispatcher"))
    office = auth(token_for(state, "office", "pingan"))
    resolved = ids[0]
    client.post(
        f"/api/v1/tickets/{resolved}/reroute", json={"office": "pingan", "note": "属平安办"}, headers=dispatcher
    )
    resolve = {"result": "实际解决", "note": "已联系张三13812345678"}
    for action, body in (("accept", {}), ("contact", {}), ("resolve", resolve)):
        assert client.post(f"/api/v1/tickets/{resolved}/{action}", json=body, headers=office).status_code == 200
    seen = []
    for request_id in range(1, max(ids) + 3):  # an outsider walks the sequential ids
        r = client.get(f"/open311/v2/requests/{request_id}.json")
        assert r.status_code in (200, 404)
        seen.append(r.text)
    listed = client.get("/open311/v2/requests.json", params={"start_date": "2026-01-01T00:00:00+08:00"})
    assert listed.status_code == 200 and {int(x["service_request_id"]) for x in listed.json()} == set(ids)
    seen.append(listed.text)
    # timestamps are ours, not the caller's: a microsecond part such as .302439 must not read as room 302
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)", "<时间>", "".join(seen))
    for secret in SECRETS:
        assert secret not in text, secret
    one = client.get(f"/open311/v2/requests/{resolved}.json").json()[0]
    assert one["address"] == "上南二村45号" and one["status"] == "closed"
    assert one["status_notes"] == "已办结（实际解决）" and "群租" in one["description"]


def test_undispatched_cancelled_and_merged_tickets_are_not_public(client: TestClient, state: AppState) -> None:
    dispatcher = auth(token_for(state, "dispatcher"))
    shown = _dispatched(client, state)["id"]
    cancelled = _dispatched(client, state)["id"]
    cancel = client.post(f"/api/v1/tickets/{cancelled}/cancel", json={"note": "重复"}, headers=dispatcher)
    assert cancel.status_code == 200
    pending = post_ticket(client, payload(content="咨询一下明年的政策", title="咨询")).json()
    with Session(state.engine) as session:  # a ticket still waiting for the dispatcher, whatever the model said
        row = session.get(Ticket, pending["id"])
        assert row is not None
        row.state, row.dispatched_at = "pending_review", None
        session.add(row)
        session.commit()
    assert client.get(f"/open311/v2/requests/{shown}.json").status_code == 200
    assert client.get(f"/open311/v2/requests/{cancelled}.json").status_code == 404
    assert client.get(f"/open311/v2/requests/{pending['id']}.json").status_code == 404
    listed = client.get("/open311/v2/requests.json", params={"start_date": "2026-01-01T00:00:00+08:00"}).json()
    assert {int(x["service_request_id"]) for x in listed} == {shown}
    assert client.get("/open311/v2/requests.json", params={"start_date": "2026-01-01T00:00:00"}).status_code == 400


def test_public_reads_can_be_turned_off(db_url: str, rules: ServiceRules, classifier: Classifier) -> None:
    state = make_state(db_url, rules, classifier, open311_public_reads=False)
    with TestClient(create_app(state=state)) as client:
        ticket = _dispatched(client, state)
        for path in (f"/open311/v2/requests/{ticket['id']}.json", "/open311/v2/requests.json"):
            r = client.get(path)
            assert r.status_code == 403 and "未开放公开查询" in r.text
    state.engine.dispose()


def test_api_key_failures_share_the_failed_token_throttle(client: TestClient, state: AppState) -> None:
    key = token_for(state, "dispatcher")
    answers = [
        client.post("/open311/v2/requests.json", data={"api_key": f"htl_bad{i}", "description": "路灯不亮"}).status_code
        for i in range(state.throttle.limit)
    ]
    assert answers == [403] * state.throttle.limit
    # this address is now throttled on both doors, also with a valid key
    good = client.post("/open311/v2/requests.json", data={"api_key": key, "description": "路灯不亮"})
    assert good.status_code == 429 and "Retry-After" in good.headers
    assert client.get("/api/v1/tickets", headers=auth(key)).status_code == 429
