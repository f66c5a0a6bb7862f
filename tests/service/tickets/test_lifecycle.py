"""The ticket lifecycle over the JSON API: every action, its event, and the refusals (docs/LIFECYCLE.md)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.state import AppState
from tests.conftest import auth, payload, post_ticket, token_for


@pytest.fixture
def people(state: AppState) -> dict[str, dict[str, str]]:
    return {
        "dispatcher": auth(token_for(state, "dispatcher", name="派单员小张")),
        "pingan": auth(token_for(state, "office", "pingan", name="平安办小李")),
        "guanli": auth(token_for(state, "office", "guanli", name="管理办老王")),
        "viewer": auth(token_for(state, "viewer")),
        "admin": auth(token_for(state, "admin")),
    }


def _ticket(client: TestClient, people: dict[str, dict[str, str]], **kw: Any) -> dict[str, Any]:
    created = post_ticket(client, payload(**kw)).json()
    if created["state"] == "pending_review":
        act(client, people["dispatcher"], created["id"], "confirm")
    return created


def act(client: TestClient, who: dict[str, str], ticket_id: int, action: str, **body: Any) -> Any:
    r = client.post(f"/api/v1/tickets/{ticket_id}/{action}", json=body, headers=who)
    return r


def test_full_happy_path_with_timeline(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    t = _ticket(client, people)
    tid = t["id"]
    assert act(client, people["pingan"], tid, "accept").json()["state"] == "accepted"
    assert act(client, people["pingan"], tid, "contact", note="已电话联系来电人").json()["state"] == "contacted"
    done = act(client, people["pingan"], tid, "resolve", result="实际解决", note="已拆除隔断，恢复原状")
    assert done.status_code == 200 and done.json()["resolve_result"] == "实际解决"
    closed = act(client, people["dispatcher"], tid, "follow-up", satisfaction="满意")
    assert closed.json()["state"] == "closed" and closed.json()["satisfaction"] == "满意"
    detail = client.get(f"/api/v1/tickets/{tid}", headers=people["dispatcher"]).json()
    steps = [(e["action"], e["from_state"], e["to_state"]) for e in detail["timeline"]]
    assert steps[-4:] == [
        ("accept", "dispatched", "accepted"),
        ("contact", "accepted", "contacted"),
        ("resolve", "contacted", "resolved"),
        ("follow-up", "resolved", "closed"),
    ]
    assert detail["timeline"][-4]["actor"] == "平安办小李"
    assert detail["classification"]["category"] == "group_renting"


def test_illegal_transitions_are_refused_with_clear_409(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    tid = _ticket(client, people)["id"]
    r = act(client, people["pingan"], tid, "resolve", result="实际解决", note="x")
    assert r.status_code == 409
    assert "已派单" in r.json()["detail"] and "不能办结" in r.json()["detail"]
    r = act(client, people["dispatcher"], tid, "follow-up", satisfaction="满意")
    assert r.status_code == 409


def test_unsatisfied_follow_up_reopens_with_its_own_deadline(
    client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    tid = _ticket(client, people)["id"]
    act(client, people["pingan"], tid, "accept")
    act(client, people["pingan"], tid, "resolve", result="解释说明", note="已向来电人解释")
    before = client.get(f"/api/v1/tickets/{tid}", headers=people["dispatcher"]).json()["resolve_due"]
    r = act(client, people["dispatcher"], tid, "follow-up", satisfaction="不满意")
    assert r.json()["state"] == "reopened" and r.json()["reopen_count"] == 1
    assert r.json()["resolve_due"] != before
    assert act(client, people["pingan"], tid, "accept").json()["state"] == "accepted"


def test_return_then_reroute_to_another_office(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    tid = _ticket(client, people)["id"]
    bad = act(client, people["pingan"], tid, "return", reason="不想办")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "reason"]
    r = act(client, people["pingan"], tid, "return", reason="职能不符", note="属于违建，应由管理办处理")
    # back in the dispatcher's review queue, with the office's reason among the review reasons (DESIGN §3)
    assert r.json()["state"] == "pending_review" and r.json()["return_reason"] == "职能不符"
    assert r.json()["needs_review"] and "退单：职能不符" in r.json()["review_reasons"]
    silent = act(client, people["dispatcher"], tid, "reroute", category="illegal_construction")
    assert silent.status_code == 422 and silent.json()["detail"][0]["loc"] == ["body", "note"]
    assert client.get(f"/api/v1/tickets/{tid}", headers=people["dispatcher"]).json()["state"] == "pending_review"
    r = act(client, people["dispatcher"], tid, "reroute", category="illegal_construction", note="搭建阳光房属违建")
    assert r.json()["state"] == "dispatched" and r.json()["office"] == "guanli"
    events = client.get(f"/api/v1/tickets/{tid}", headers=people["dispatcher"]).json()["timeline"]
    assert events[-1]["action"] == "reroute" and events[-1]["note"] == "搭建阳光房属违建"
    # the old office no longer sees it; the new one does
    assert client.get(f"/api/v1/tickets/{tid}", headers=people["pingan"]).status_code == 404
    assert client.get(f"/api/v1/tickets/{tid}", headers=people["guanli"]).status_code == 200


def test_extension_request_and_approval_capped(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    tid = _ticket(client, people)["id"]
    act(client, people["pingan"], tid, "accept")
    assert act(client, people["dispatcher"], tid, "approve-extension").status_code == 409
    r = act(client, people["pingan"], tid, "request-extension", days=30, reason="需协调房东与租客")
    assert r.status_code == 200 and r.json()["extension_state"] == "requested"
    before = r.json()["resolve_due"]
    r = act(client, people["dispatcher"], tid, "approve-extension", note="同意")
    assert r.json()["extension_state"] == "approved" and r.json()["resolve_due"] > before
    again = act(client, people["pingan"], tid, "request-extension", days=1, reason="再延")
    assert again.status_code == 409


def test_merge_duplicate_into_main_ticket(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    main = _ticket(client, people)["id"]
    dup = _ticket(client, people)["id"]
    assert act(client, people["dispatcher"], dup, "merge", into_id=dup).status_code == 422
    assert act(client, people["dispatcher"], dup, "merge", into_id=999999).status_code == 422
    r = act(client, people["dispatcher"], dup, "merge", into_id=main)
    assert r.json()["state"] == "cancelled" and r.json()["merged_into_id"] == main
    assert act(client, people["dispatcher"], dup, "cancel", note="重复").status_code == 409


def test_cancel_needs_a_reason(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    tid = _ticket(client, people)["id"]
    r = act(client, people["dispatcher"], tid, "cancel")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "note"]
    assert act(client, people["dispatcher"], tid, "cancel", note="无效工单").json()["state"] == "cancelled"


def test_roles_cannot_perform_other_roles_actions(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    tid = _ticket(client, people)["id"]
    assert act(client, people["pingan"], tid, "reroute", office="guanli", note="不归我们").status_code == 403
    assert act(client, people["dispatcher"], tid, "accept").status_code == 403
    assert act(client, people["viewer"], tid, "accept").status_code == 403
    assert act(client, people["guanli"], tid, "accept").status_code == 404
    assert client.post(f"/api/v1/tickets/{tid}/accept").status_code == 401
    assert act(client, people["pingan"], tid, "explode").status_code in (404, 405)


def test_phone_masked_for_everyone_but_dispatcher_and_assigned_office(
    client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    tid = _ticket(client, people)["id"]
    phone = lambda who: client.get(f"/api/v1/tickets/{tid}", headers=people[who]).json()["caller_phone"]  # noqa: E731
    assert phone("dispatcher") == "13812345678"
    assert phone("pingan") == "13812345678"
    assert phone("viewer") == "138****5678"
    assert phone("admin") == "138****5678"
    listed = client.get("/api/v1/tickets", headers=people["viewer"]).json()["items"]
    assert all("****" in t["caller_phone"] for t in listed)


def test_list_filters_and_pagination(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    ids = [_ticket(client, people)["id"] for _ in range(3)]
    _ticket(client, people, content="成山路人行道上的窨井盖缺了一角，晚上很危险。", title="井盖", address="成山路100号")
    d = people["dispatcher"]
    page = client.get("/api/v1/tickets", params={"page_size": 2}, headers=d).json()
    assert page["total"] == 4 and len(page["items"]) == 2
    office = client.get("/api/v1/tickets", params={"office": "pingan"}, headers=d).json()
    assert {t["id"] for t in office["items"]} == set(ids)
    found = client.get("/api/v1/tickets", params={"q": "窨井盖"}, headers=d).json()
    assert found["total"] == 1 and found["items"][0]["category"] == "road_facility"
    assert found["items"][0]["grid"] == "云莲片区"
    assert client.get("/api/v1/tickets", params={"overdue": True}, headers=d).json()["total"] == 0
    soon = client.get("/api/v1/tickets", params={"due_before": "2100-01-01T00:00:00+08:00"}, headers=d).json()
    assert soon["total"] == 4
    assert client.get("/api/v1/tickets", params={"due_before": "2100-01-01T00:00:00"}, headers=d).status_code == 422
    mine = client.get("/api/v1/tickets", headers=people["guanli"]).json()
    assert mine["total"] == 0
