"""HOTLINE_REPORT_DATABASE_URL: reports, the monitor and ticket exports read the replica, everything else the
primary. Here the "replica" is a second, empty database, so where each read went is plain to see."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from service.app import create_app
from service.db import upgrade
from service.rules import ServiceRules
from tests.conftest import auth, make_state, payload, post_ticket, token_for
from tests.service.web.test_sessions import login


def test_reports_and_exports_read_the_replica(
    db_url: str, rules: ServiceRules, classifier: Any, tmp_path: Path
) -> None:
    replica = f"sqlite:///{tmp_path / 'replica.db'}"
    upgrade(replica)
    state = make_state(db_url, rules, classifier, report_database_url=replica)
    assert state.reads is not state.engine
    try:
        with TestClient(create_app(state=state)) as client:
            post_ticket(client, payload())
            desk = auth(token_for(state, "dispatcher"))
            assert client.get("/api/v1/tickets", headers=desk).json()["total"] == 1  # the primary
            today = dt.datetime.now(ZoneInfo(rules.timezone)).date()
            report = client.get("/api/v1/reports/daily", params={"date": today.isoformat()}, headers=desk).json()
            assert report["totals"]["received"] == 0  # the (empty) replica
            login(client, token_for(state, "dispatcher"))
            exported = client.get("/ui/export/tickets", params={"format": "csv"}).content.decode("utf-8-sig")
            assert len(list(csv.reader(io.StringIO(exported)))) == 1  # the header only
    finally:
        state.engine.dispose()
        state.reads.dispose()


def test_without_a_replica_reports_read_the_primary(db_url: str, rules: ServiceRules, classifier: Any) -> None:
    state = make_state(db_url, rules, classifier)
    assert state.reads is state.engine
    state.engine.dispose()
