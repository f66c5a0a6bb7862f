"""The signed intake webhook (docs/WEBHOOK.md) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from service.state import AppState
from service.tickets.models import Ticket, TicketEvent
from tests.conftest import auth, payload, post_ticket, signed_headers, token_for


def _count(state: AppState) -> int:
    with Session(state.engine) as s:
        return int(s.exec(select(func.count()).select_from(Ticket)).one())


def test_new_ticket_is_classified_routed_and_given_deadlines(client: TestClient, state: AppState) -> None:
    r = post_ticket(client, payload())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["category"] == "group_renting"
    assert body["office"] == "pingan"
    assert body["state"] in ("dispatched", "pending_review")
    assert set(body) >= {
        "id",
        "external_id",
        "state",
        "category",
        "office",
        "confidence",
        "needs_review",
        "first_contact_due",
        "resolve_due",
    }
    assert "caller_phone" not in body and "content_hash" not in body
    with Session(state.engine) as s:
        events = s.exec(select(TicketEvent).where(TicketEvent.ticket_id == body["id"])).all()
    assert [e.action for e in events] == ["receive", "classify"]


def test_repeat_delivery_returns_existing_and_changed_content_conflicts(client: TestClient, state: AppState) -> None:
    data = payload()
    first = post_ticket(client, data)
    again = post_ticket(client, data)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    changed = post_ticket(client, {**data, "content": "完全不同的内容，关于路灯不亮"})
    assert changed.status_code == 409
    assert "已存在" in changed.json()["detail"]
    assert _count(state) == 1


def test_bad_signature_stale_timestamp_and_missing_headers_are_refused(client: TestClient, state: AppState) -> None:
    body = json.dumps(payload(), ensure_ascii=False).encode()
    wrong = client.post("/api/v1/hotline/tickets", content=body, headers=signed_headers(body, secret="x" * 20))
    stale = client.post(
        "/api/v1/hotline/tickets", content=body, headers=signed_headers(body, timestamp=int(time.time()) - 3600)
    )
    missing = client.post("/api/v1/hotline/tickets", content=body, headers={"Content-Type": "application/json"})
    assert (wrong.status_code, stale.status_code, missing.status_code) == (401, 401, 401)
    assert "签名" in wrong.json()["detail"] and "时间戳" in stale.json()["detail"]
    assert _count(state) == 0


def test_tampered_body_fails_signature(client: TestClient, state: AppState) -> None:
    body = json.dumps(payload(), ensure_ascii=False).encode()
    headers = signed_headers(body)
    r = client.post(
        "/api/v1/hotline/tickets", content=body.replace("上南二村".encode(), "洪山花苑".encode()), headers=headers
    )
    assert r.status_code == 401
    assert _count(state) == 0


def test_validation_errors_name_the_field_and_store_nothing(client: TestClient, state: AppState) -> None:
    cases = {
        "channel": payload(channel="传真"),
        "received_at": payload(received_at="2026-11-20T09:30:00"),
        "content": payload(content=""),
        "kind": payload(kind="吐槽"),
        "external_id": payload(external_id="bad id with spaces"),
        "unexpected": {**payload(), "unexpected": 1},
    }
    for field, data in cases.items():
        r = post_ticket(client, data)
        assert r.status_code == 422, (field, r.text)
        assert any(field in [str(p) for p in err["loc"]] for err in r.json()["detail"]), (field, r.json())
    broken = b'{"external_id": "X1", '
    r = client.post("/api/v1/hotline/tickets", content=broken, headers=signed_headers(broken))
    assert r.status_code == 422
    assert _count(state) == 0


def test_oversized_body_is_refused_with_413(client: TestClient, state: AppState) -> None:
    body = json.dumps(payload(content="很" * 300_000), ensure_ascii=False).encode()
    r = client.post("/api/v1/hotline/tickets", content=body, headers=signed_headers(body))
    assert r.status_code == 413
    assert _count(state) == 0


def test_concurrent_duplicate_deliveries_create_exactly_one_ticket(client: TestClient, state: AppState) -> None:
    data = payload()
    results: list[int] = []
    lock = threading.Lock()

    def deliver() -> None:
        r = post_ticket(client, data)
        with lock:
            results.append(r.status_code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count(201) == 1, results
    assert set(results) <= {200, 201}
    assert _count(state) == 1


def test_classifier_failure_still_stores_ticket_for_review(client: TestClient, state: AppState) -> None:
    original = state.classifier.decide_batch

    def broken(texts: list[str]) -> None:
        raise RuntimeError("model exploded")

    state.classifier.decide_batch = broken  # type: ignore[method-assign, assignment]
    try:
        r = post_ticket(client, payload())
    finally:
        state.classifier.decide_batch = original  # type: ignore[method-assign]
    assert r.status_code == 201
    assert r.json()["state"] == "pending_review" and r.json()["needs_review"] is True
    with Session(state.engine) as s:
        ticket = s.get(Ticket, r.json()["id"])
        assert ticket is not None
        assert "model exploded" in (ticket.classification_error or "")
        assert ticket.resolve_due is not None


def test_urgent_keyword_shortens_first_contact(client: TestClient) -> None:
    calm = post_ticket(client, payload(content="小区门口路灯不亮好几天了，晚上走路看不清。", title="路灯")).json()
    urgent = post_ticket(
        client, payload(content="楼道里闻到很浓的煤气味，怀疑燃气泄漏，请马上来人！", title="燃气")
    ).json()
    from datetime import datetime

    gap = lambda b: datetime.fromisoformat(b["first_contact_due"]) - datetime.now().astimezone()  # noqa: E731
    assert gap(urgent).total_seconds() <= 2 * 3600 + 60
    assert gap(calm).total_seconds() > 2 * 3600


INVISIBLE = "\u202e\u202d\u2066\u2067\u2068\u2069\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"


def test_bidi_overrides_and_zero_width_characters_are_removed(client: TestClient, state: AppState) -> None:
    data = payload(
        content="楼上\u202e租群\u202c被隔成六间\u200b，住了十几个人",
        title="群\u200d租",
        address="上南二村\ufeff45号\u2066302\u2069室",
        caller_name="王\u200b先生",
    )
    created = post_ticket(client, data)
    assert created.status_code == 201, created.text
    dispatcher = auth(token_for(state, "dispatcher"))
    ticket = client.get(f"/api/v1/tickets/{created.json()['id']}", headers=dispatcher).json()
    assert ticket["content"] == "楼上租群被隔成六间，住了十几个人" and ticket["title"] == "群租"
    assert ticket["address"] == "上南二村45号302室" and ticket["caller_name"] == "王先生"
    note = client.post(
        f"/api/v1/tickets/{ticket['id']}/cancel", json={"note": "重复\u202e工单"}, headers=dispatcher
    ).json()
    assert note["state"] == "cancelled"
    shown = json.dumps(client.get(f"/api/v1/tickets/{ticket['id']}", headers=dispatcher).json(), ensure_ascii=False)
    assert "重复工单" in shown and not any(ch in shown for ch in INVISIBLE)
    # a re-delivery of the same body is the same ticket, not a conflict
    assert post_ticket(client, data).status_code == 200
