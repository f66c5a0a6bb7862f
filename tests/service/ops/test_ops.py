"""Health, readiness, metrics, database outage and logs without personal data."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from classifier.decision import Classifier
from service.app import create_app
from service.rules import ServiceRules
from service.state import AppState
from tests.conftest import make_state, payload, post_ticket


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["database"]["ok"] and checks["model"]["version"].startswith("street-")
    assert "covered_until" in checks["calendar"]


def test_metrics_count_intake_and_open_tickets(client: TestClient) -> None:
    post_ticket(client, payload())
    text = client.get("/metrics").text
    assert 'hotline_intake_total{outcome="created"} 1.0' in text
    assert 'hotline_tickets_open{office="pingan"} 1.0' in text
    assert "hotline_intake_seconds_count 1.0" in text


def test_unreachable_database_gives_503_with_retry_after(rules: ServiceRules, classifier: Classifier) -> None:
    state = make_state("postgresql://nobody@127.0.0.1:1/none", rules, classifier)
    with TestClient(create_app(state=state)) as client:
        r = post_ticket(client, payload())
        assert r.status_code == 503 and r.headers["Retry-After"] == "5"
        assert "数据库" in r.json()["detail"]
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200


def test_logs_of_a_lifecycle_contain_no_phone_number(
    client: TestClient, state: AppState, caplog: pytest.LogCaptureFixture
) -> None:
    from service import logs
    from tests.conftest import auth, token_for

    caplog.set_level(logging.DEBUG)
    data = payload(caller_phone="13912345678", content="我的电话13912345678，楼下饭店油烟直排，要求处理")
    tid = post_ticket(client, data).json()["id"]
    disp = auth(token_for(state, "dispatcher"))
    client.post(f"/api/v1/tickets/{tid}/cancel", json={"note": "来电人13912345678撤诉"}, headers=disp)
    formatter = logs.JsonFormatter()
    rendered = "\n".join(formatter.format(r) for r in caplog.records)
    assert caplog.records, "expected log records"
    assert "13912345678" not in rendered
