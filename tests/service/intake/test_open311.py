"""Open311 GeoReport v2 door."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.state import AppState
from tests.conftest import token_for


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
