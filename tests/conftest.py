"""Shared fixtures: the rules file, the shipped model, and the app on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from classifier.artifact import load_model
from classifier.decision import Classifier
from service.app import build_state, create_app
from service.auth.service import create_user
from service.db import make_engine, upgrade
from service.rules import ServiceRules, load_rules
from service.settings import Settings
from service.signing import sign
from service.state import AppState

ROOT = Path(__file__).resolve().parents[1]
SECRET = "test-webhook-secret-0123456789"
_TRAVELLER = pytest.StashKey[Any]()
PG_ADMIN_URL = os.environ.get("HOTLINE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
DATASETS = ROOT.parent / "shared" / "datasets"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fake-now",
        default=None,
        help="run the whole session on a clock that starts at this ISO time (with offset) and runs on "
        "(scripts/any-hour.sh: the hours around the service's midnight)",
    )


def pytest_configure(config: pytest.Config) -> None:
    start = config.getoption("--fake-now", default=None)
    if not start:
        return
    import time_machine

    when = dt.datetime.fromisoformat(start)
    if when.tzinfo is None:
        raise pytest.UsageError("--fake-now 需要带时区偏移的时间，例如 2026-12-03T23:30:00+08:00")
    # time.time and datetime.now move to `when` and tick on; monotonic clocks and sleeps stay real
    traveller = time_machine.travel(when, tick=True)
    traveller.start()
    config.stash[_TRAVELLER] = traveller


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # schemathesis gives every API operation the test function's node id; pytest's progress counts distinct ids and
    # so stopped short of 100 %. The operation goes into the id, as in the item's name.
    for item in items:
        last = item.nodeid.rpartition("::")[2]
        if item.parent is not None and item.name != last and item.name.startswith(last + "["):
            item._id = item.parent.id.child(item.name)  # type: ignore[attr-defined]
    if not config.getoption("--fake-now", default=None):
        return
    skip = pytest.mark.skip(reason="与真实时钟下的其他进程交互，不能在假定时钟下运行；它已在常规测试中运行")
    for item in items:
        if "real_clock" in item.keywords:
            item.add_marker(skip)


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(_TRAVELLER, None)
    if traveller is not None:
        traveller.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    start = config.getoption("--fake-now", default=None)
    return f"假定时钟从 {start} 开始（机器时区 TZ={os.environ.get('TZ', '未设置')}）" if start else None


@pytest.fixture(scope="session")
def rules() -> ServiceRules:
    return load_rules(ROOT / "rules.yaml")


@pytest.fixture(scope="session")
def classifier(rules: ServiceRules) -> Classifier:
    return Classifier(load_model(ROOT / "models" / "street"), rules)


def _pg_admin() -> Any:
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throw-away database on the real PostgreSQL server, migrated once for the session."""
    try:
        admin = _pg_admin()
    except Exception as exc:  # no server can be had here: say so instead of failing
        pytest.skip(f"PostgreSQL 不可用（{PG_ADMIN_URL}）：{exc}")
    name = f"hotline_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _truncate_pg(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "TRUNCATE outbox, alert, routing_label, ticket_event, ticket, app_user, model_activation,"
            " area_pattern, area, ticket_photo, key_point_change, key_point, ticket_assist,"
            " report_dirty, report_rollup, report_rollup_day, report_snapshot"
            " RESTART IDENTITY CASCADE"
        )
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hotline.db'}"
        upgrade(url)
        return url
    url: str = request.getfixturevalue("pg_url")
    _truncate_pg(url)
    return url


def make_state(url: str, rules: ServiceRules, classifier: Classifier, **overrides: Any) -> AppState:
    # photos go to a directory of the test's own, never to the checkout's var/
    overrides.setdefault("photo_dir", Path(tempfile.mkdtemp(prefix="hotline-photos-")))
    settings = Settings(
        database_url=url,
        webhook_secret=SECRET,
        rules=ROOT / "rules.yaml",
        model=ROOT / "models" / "street",
        scheduler=False,
        **overrides,
    )
    return build_state(settings, rules=rules, classifier=classifier)


@pytest.fixture
def state(db_url: str, rules: ServiceRules, classifier: Classifier) -> Iterator[AppState]:
    st = make_state(db_url, rules, classifier)
    yield st
    st.engine.dispose()


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as c:
        yield c


_STARTED: list[dt.datetime] = []


def _session_start() -> dt.datetime:
    """Taken on first use, so that under --fake-now it is a moment of the simulated clock."""
    if not _STARTED:
        _STARTED.append(dt.datetime.now(dt.UTC).replace(microsecond=0))
    return _STARTED[0]


def payload(**overrides: Any) -> dict[str, Any]:
    base = {
        "external_id": f"SH{uuid.uuid4().hex[:16]}",
        # the hotline took the call at the session's start: the clocks start at received_at, and one payload is
        # the same payload each time it is built (a re-delivery must match)
        "received_at": _session_start().isoformat(),
        "channel": "电话",
        "title": "群租扰民",
        "content": (
            "市民来电反映：上南二村45号302室被二房东隔成六个小间按床位出租，住了十几个人，进出杂乱，要求查处群租。"
        ),
        "address": "上南二村45号302室",
        "caller_name": "王先生",
        "caller_phone": "13812345678",
        "kind": "投诉",
    }
    base.update(overrides)
    return base


def signed_headers(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "X-Hotline-Timestamp": ts,
        "X-Hotline-Signature": sign(secret, ts, body),
        "Content-Type": "application/json",
    }


def post_ticket(client: TestClient, data: dict[str, Any], **kw: Any) -> Any:
    body = json.dumps(data, ensure_ascii=False).encode()
    return client.post("/api/v1/hotline/tickets", content=body, headers=signed_headers(body, **kw))


def run_cli(state: AppState, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`hotline ARGS…` as a newcomer runs it, against the test's database, in a process group of its own."""
    env = {**os.environ, "HOTLINE_DATABASE_URL": state.settings.database_url, "HOTLINE_WEBHOOK_SECRET": SECRET}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


def token_for(state: AppState, role: str, office: str | None = None, name: str | None = None) -> str:
    with Session(state.engine) as session:
        _, token = create_user(
            session=session, rules=state.rules, name=name or f"{role}-{uuid.uuid4().hex[:6]}", role=role, office=office
        )
    return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def aware(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def receive(state: AppState, external_id: str, when: dt.datetime, text: str, **fields: Any) -> Any:
    """A ticket taken in through the intake flow, as the webhook would, on a clock stopped at `when`."""
    from service.flows.receive import intake
    from service.tickets.models import TicketCreate

    payload = TicketCreate(external_id=external_id, received_at=when, channel="电话", content=text, **fields)
    with Session(state.engine, expire_on_commit=False) as s:
        ticket, _ = intake(
            session=s, payload=payload, classifier=state.classifier, policy=state.policy, rules=state.rules, now=when
        )
        return ticket


def explain(
    pg_url: str,
    statement: Any,
    *,
    without: tuple[str, ...] = (),
    off: tuple[str, ...] = ("enable_seqscan", "enable_bitmapscan"),
) -> str:
    """The plan PostgreSQL picks for a statement (SQL text or a SQLAlchemy statement) on the tiny test tables, with
    the plans a planner rightly prefers there turned off (`off`: sequential and bitmap scans) and the indexes in
    `without` dropped for this transaction only: which index can answer the query, and whether it answers it alone."""
    upgrade(pg_url)
    engine = make_engine(pg_url)
    if not isinstance(statement, str):
        statement = str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        for setting in off:
            conn.execute(text(f"SET LOCAL {setting} = off"))
        for other in without:
            conn.execute(text(f"DROP INDEX {other}"))
        plan = "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {statement}")))
        conn.rollback()
    engine.dispose()
    return plan
