"""办结审核 over real HTTP, on SQLite and PostgreSQL: a reviewed category's 办结 waits for the dispatcher, tells the
hotline nothing until approved, goes back to the office with the reason when rejected (a new after-photo is then
needed), and the report counts the rejection for the office whose 办结 it was."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from service.app import create_app
from service.notify.models import OutboxMessage
from service.rules import EvidenceRules, ServiceRules
from service.state import AppState
from tests.conftest import auth, make_state, payload, post_ticket, token_for
from tests.service.evidence.test_ticket_photos import files, phone_photo

DONE = {"result": "实际解决", "note": "已拆除隔断，恢复原状"}


@pytest.fixture
def reviewed(db_url: str, rules: ServiceRules, classifier: Any) -> Iterator[AppState]:
    """The street's rules with 群租 needing an after-photo and a dispatcher's review to close."""
    evidence = EvidenceRules(require_after_photo=("group_renting",), review_resolution=("group_renting",))
    st = make_state(db_url, rules.model_copy(update={"evidence": evidence}), classifier)
    yield st
    st.engine.dispose()


def _callbacks(state: AppState, ticket_id: int) -> list[str]:
    with Session(state.engine) as session:
        rows = session.exec(
            select(OutboxMessage).where(OutboxMessage.ticket_id == ticket_id).order_by(col(OutboxMessage.id))
        )
        return [m.kind for m in rows]


def _after_photo(client: TestClient, ticket_id: int, office: dict[str, str], seed: int) -> None:
    sent = client.post(
        f"/api/v1/tickets/{ticket_id}/photos",
        data={"stage": "resolve"},
        files=files(("after.jpg", phone_photo(seed), "image/jpeg")),
        headers=office,
    )
    assert sent.status_code == 201, sent.text


def _working(client: TestClient, state: AppState) -> tuple[int, dict[str, str], dict[str, str]]:
    ticket_id = post_ticket(client, payload()).json()["id"]
    desk = auth(token_for(state, "dispatcher"))
    office = auth(token_for(state, "office", "pingan"))
    client.post(f"/api/v1/tickets/{ticket_id}/confirm", json={}, headers=desk)
    for action in ("accept", "contact"):
        assert client.post(f"/api/v1/tickets/{ticket_id}/{action}", json={}, headers=office).status_code == 200
    return ticket_id, desk, office


def test_a_rejected_resolution_goes_back_and_an_approved_one_reaches_the_hotline(reviewed: AppState) -> None:
    with TestClient(create_app(state=reviewed)) as client:
        ticket_id, desk, office = _working(client, reviewed)
        url = f"/api/v1/tickets/{ticket_id}"
        _after_photo(client, ticket_id, office, 1)
        submitted = client.post(f"{url}/resolve", json=DONE, headers=office)
        assert submitted.status_code == 200 and submitted.json()["state"] == "resolution_review"
        assert submitted.json()["resolved_at"] is None  # not 办结 until approved
        assert "办结反馈" not in _callbacks(reviewed, ticket_id)
        # under review the evidence is frozen, and the office cannot approve its own 办结
        frozen = client.post(
            f"{url}/photos",
            data={"stage": "resolve"},
            files=files(("x.jpg", phone_photo(9), "image/jpeg")),
            headers=office,
        )
        assert frozen.status_code == 409
        assert client.post(f"{url}/approve-resolution", json={}, headers=office).status_code == 403
        no_reason = client.post(f"{url}/reject-resolution", json={}, headers=desk)
        assert no_reason.status_code == 422 and no_reason.json()["detail"][0]["loc"][-1] == "note"
        assert client.get(url, headers=desk).json()["state"] == "resolution_review"  # refused: nothing changed
        rejected = client.post(f"{url}/reject-resolution", json={"note": "照片看不出隔断已拆除"}, headers=desk)
        assert rejected.status_code == 200, rejected.text
        back = rejected.json()
        assert (back["state"], back["rejections"], back["rejection_note"]) == ("contacted", 1, "照片看不出隔断已拆除")
        assert back["resolve_result"] is None
        # the rejected 办结's photo does not count again
        again = client.post(f"{url}/resolve", json=DONE, headers=office)
        assert again.status_code == 422 and "重新拍摄" in again.text
        _after_photo(client, ticket_id, office, 2)
        assert client.post(f"{url}/resolve", json=DONE, headers=office).json()["state"] == "resolution_review"
        approved = client.post(f"{url}/approve-resolution", json={"note": "全景照片清楚"}, headers=desk)
        assert approved.status_code == 200 and approved.json()["state"] == "resolved"
        assert approved.json()["resolved_at"] is not None
        assert client.post(f"{url}/approve-resolution", json={}, headers=desk).status_code == 409
        assert _callbacks(reviewed, ticket_id).count("办结反馈") == 1
        with Session(reviewed.engine) as session:
            message = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "办结反馈")).one()
            # the hotline is told what the office did, not the reviewer's remark
            assert message.payload["note"] == DONE["note"] and message.payload["data"]["result"] == "实际解决"
        actions = [e["action"] for e in client.get(url, headers=desk).json()["timeline"]]
        assert actions[-4:] == ["reject-resolution", "photo", "resolve", "approve-resolution"]
        today = reviewed.clock().astimezone(ZoneInfo(reviewed.rules.timezone)).date()
        report = client.get(
            "/api/v1/reports/daily",
            params={"date": (today - dt.timedelta(days=1)).isoformat(), "end": today.isoformat()},
            headers=desk,
        ).json()
        row = next(r for r in report["rows"] if r["office"] == "pingan")
        assert (row["rejected"], row["resolved"], report["totals"]["rejected"]) == (1, 1, 1)
        csv = client.get(
            "/api/v1/reports/daily",
            params={"date": today.isoformat(), "format": "csv"},
            headers=desk,
        ).content.decode("utf-8-sig")
        assert "办结驳回" in csv.splitlines()[0]


def test_categories_without_review_close_at_once(reviewed: AppState) -> None:
    with TestClient(create_app(state=reviewed)) as client:
        data = payload(title="垃圾", content="上南二村45号门口垃圾堆放三天无人清运，气味很大", address="上南二村45号")
        ticket_id = post_ticket(client, data).json()["id"]
        desk = auth(token_for(reviewed, "dispatcher"))
        detail = client.get(f"/api/v1/tickets/{ticket_id}", headers=desk).json()
        assert detail["category"] != "group_renting"
        office = auth(token_for(reviewed, "office", detail["office"]))
        client.post(f"/api/v1/tickets/{ticket_id}/confirm", json={}, headers=desk)
        client.post(f"/api/v1/tickets/{ticket_id}/accept", json={}, headers=office)
        done = client.post(f"/api/v1/tickets/{ticket_id}/resolve", json=DONE, headers=office)
        assert done.json()["state"] == "resolved"
        assert (
            client.post(f"/api/v1/tickets/{ticket_id}/reject-resolution", json={"note": "x"}, headers=desk).status_code
            == 409
        )
        assert "办结反馈" in _callbacks(reviewed, ticket_id)


def test_review_categories_must_be_known(rules: ServiceRules) -> None:
    from service.rules import parse_rules

    text = (Path(__file__).resolve().parents[3] / "rules.yaml").read_text(encoding="utf-8")
    broken = text.replace("  review_resolution: []", "  review_resolution: [no_such_category]")
    assert broken != text
    with pytest.raises(ValueError, match="review_resolution") as err:
        parse_rules(broken)
    assert "no_such_category" in str(err.value)
