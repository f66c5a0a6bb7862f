"""Cameras and sensors: signed events become tickets with channel 设备发现, idempotently; a bad signature changes
nothing; the snapshot is checked and cleaned like any photo; no 12345 callback is ever queued for them."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, select

from classifier.decision import Classifier
from service.app import create_app
from service.evidence.models import TicketPhoto
from service.notify.models import OutboxMessage
from service.rules import ServiceRules
from service.state import AppState
from service.tickets.models import Ticket
from tests.conftest import auth, make_state, signed_headers, token_for
from tests.service.areas.test_placement import load_example
from tests.service.evidence.test_ticket_photos import HTML, phone_photo

DEVICE_SECRET = "device-secret-for-tests-0123456789"
# one moment for every event: a re-sent event must be the same event
OCCURRED = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def devices(db_url: str, rules: ServiceRules, classifier: Classifier) -> Iterator[tuple[TestClient, AppState]]:
    st = make_state(db_url, rules, classifier, device_secret=DEVICE_SECRET)
    with TestClient(create_app(state=st)) as client:
        yield client, st
    st.engine.dispose()


def event(**overrides: Any) -> dict[str, Any]:
    body = {
        "device_id": "CAM-SN2-07",
        "event_id": "20261203-0001",
        "type": "乱扔垃圾",
        "description": "摄像头识别到有人在垃圾厢房外乱扔垃圾袋，垃圾满溢",
        "location": "上南二村45号",
        "occurred_at": OCCURRED.isoformat(),
        "image": base64.b64encode(phone_photo()).decode(),
    }
    body.update(overrides)
    return body


def post(client: TestClient, body: dict[str, Any], secret: str = DEVICE_SECRET) -> Any:
    raw = json.dumps(body, ensure_ascii=False).encode()
    return client.post("/api/v1/devices/events", content=raw, headers=signed_headers(raw, secret=secret))


def count(state: AppState, model: Any) -> int:
    with Session(state.engine) as session:
        return len(session.exec(select(model)).all())


def test_a_device_event_becomes_a_placed_ticket_with_a_clean_photo(devices: tuple[TestClient, AppState]) -> None:
    client, state = devices
    load_example(state)
    first = post(client, event())
    assert first.status_code == 201, first.text
    ticket_id = first.json()["id"]
    assert first.json()["category"] == "garbage"
    again = post(client, event())
    assert again.status_code == 200 and again.json()["id"] == ticket_id
    with Session(state.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        assert (ticket.source, ticket.channel, ticket.cell) == ("device", "设备发现", "上南二村第2网格")
        assert ticket.external_id == "SB-CAM-SN2-07-20261203-0001"
        photos = session.exec(select(TicketPhoto)).all()
        assert [p.stage for p in photos] == ["found"]
    dispatcher = auth(token_for(state, "dispatcher"))
    detail = client.get(f"/api/v1/tickets/{ticket_id}", headers=dispatcher).json()
    image = client.get(detail["photos"][0]["url"], headers=dispatcher)
    assert not Image.open(io.BytesIO(image.content)).getexif()
    # a device ticket is never reported back to the 12345 hotline
    client.post(f"/api/v1/tickets/{ticket_id}/confirm", json={}, headers=dispatcher)
    assert count(state, OutboxMessage) == 0


def test_a_bad_signature_or_a_fake_image_changes_nothing(devices: tuple[TestClient, AppState]) -> None:
    client, state = devices
    forged = post(client, event(), secret="not-the-device-secret-at-all")
    assert forged.status_code == 401
    hotline_key = post(client, event(), secret=state.settings.webhook_secret.get_secret_value())
    assert hotline_key.status_code == 401  # the hotline's secret does not sign device events
    fake = post(client, event(event_id="e2", image=base64.b64encode(HTML).decode()))
    assert fake.status_code == 422 and fake.json()["detail"][0]["loc"][-1] == "photos"
    broken = post(client, event(event_id="e3", image="***"))
    assert broken.status_code == 422 and broken.json()["detail"][0]["loc"][-1] == "image"
    naive = post(client, event(event_id="e4", occurred_at="2026-12-03T09:00:00"))
    assert naive.status_code == 422 and naive.json()["detail"][0]["loc"] == ["body", "occurred_at"]
    assert count(state, Ticket) == 0 and count(state, TicketPhoto) == 0


def test_without_a_device_secret_the_endpoint_is_off(client: TestClient) -> None:
    raw = json.dumps(event()).encode()
    answer = client.post("/api/v1/devices/events", content=raw, headers=signed_headers(raw))
    assert answer.status_code == 403 and "HOTLINE_DEVICE_SECRET" in answer.text
