"""`hotline demo`: a month of history made by the service's own functions, and the signed demo requests
(`hotline send-demo-ticket`, the printed curl snippet) against a real server."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from classifier.decision import Classifier
from service import demo
from service.cli import app
from service.db import make_engine, upgrade
from service.deadlines.service import DeadlinePolicy
from service.reports.service import load_report
from service.rules import ServiceRules
from service.settings import DEMO_SECRET
from service.signing import verify
from service.tickets.models import Ticket, TicketCreate, TicketEvent
from tests.conftest import ROOT

HOTLINE = [sys.executable, "-m", "service.cli"]
READY_BUDGET_SECONDS = 300
REAL_SECRET = "a-real-production-secret-0123456789"


def _clean_env(monkeypatch: pytest.MonkeyPatch, url: str, **extra: str) -> None:
    for key in [k for k in os.environ if k.startswith("HOTLINE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOTLINE_DATABASE_URL", url)
    monkeypatch.setenv("HOTLINE_RULES", str(ROOT / "rules.yaml"))
    monkeypatch.setenv("HOTLINE_MODEL", str(ROOT / "models" / "street"))
    for key, value in extra.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def machine_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine far from Shanghai (UTC+14): nothing may depend on the machine's zone."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _month(rules: ServiceRules, now: dt.datetime) -> tuple[dt.date, dt.date]:
    today = now.astimezone(ZoneInfo(rules.timezone)).date()
    return today - dt.timedelta(days=29), today


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[str]]]:
    """`hotline demo` run twice on a fresh SQLite database, in an odd machine time zone; (url, tokens, outputs)."""
    tmp = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{tmp / 'hotline.db'}"
    tokens = tmp / "demo-tokens.txt"
    runner = CliRunner()
    outputs = []
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp, url, HOTLINE_DEMO="1")
        mp.setenv("TZ", "America/Los_Angeles")  # the machine's zone must not matter: the street's is rules.timezone
        time.tzset()
        try:
            for _ in range(2):
                started = time.perf_counter()
                result = runner.invoke(app, ["demo", "--tickets", "40", "--tokens-file", str(tokens)])
                assert result.exit_code == 0, result.output + repr(result.exception)
                outputs.append(result.output)
                assert time.perf_counter() - started < 60  # generous: the model alone takes ~12 s on a busy machine
        finally:
            mp.undo()
            time.tzset()
    yield url, tokens, outputs


def test_demo_makes_a_month_whose_report_shows_every_metric(
    demo_db: tuple[str, Path, list[str]], rules: ServiceRules
) -> None:
    url, _, outputs = demo_db
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    start, end = _month(rules, now)
    # the function behind /ui/reports, for its default period (the last 30 days)
    totals = load_report(engine, rules, start, end, None).totals.model_dump()
    assert totals["received"] == 40
    assert totals["resolved"] > 0
    assert 0 < totals["on_time_rate"] < 1
    assert totals["overdue_open"] > 0
    assert totals["reopened"] > 0 and totals["returned"] > 0
    assert 0 < totals["contact_rate"] <= 1 and 0 < totals["satisfaction_rate"] < 1
    counts = demo.demo_counts(engine)
    for state in ("pending_review", "dispatched", "accepted", "contacted", "closed"):
        assert counts.get(state, 0) > 0, counts
    with Session(engine) as session:
        actions = dict(session.exec(select(TicketEvent.action, func.count()).group_by(TicketEvent.action)).all())
        tickets = list(session.exec(select(Ticket)))
        events = list(session.exec(select(TicketEvent).order_by(col(TicketEvent.id))))
    for action in ("confirm", "accept", "contact", "resolve", "return", "follow-up", "reopen", "supervise"):
        assert actions.get(action, 0) > 0, actions
    assert actions["request-extension"] == actions["approve-extension"] > 0
    # received across the month, never in the future; each ticket's events in time order
    received = sorted(t.created_at for t in tickets)
    assert received[0] < now - dt.timedelta(days=25) and received[-1] <= now
    assert all(e.at <= now for e in events)
    last: dict[int, dt.datetime] = {}
    for e in events:
        assert e.at >= last.get(e.ticket_id, e.at)
        last[e.ticket_id] = e.at
    # the review queue has today's tickets (tickets of "today" in the street's zone, unless it began minutes ago)
    waiting = [t for t in tickets if t.state == "pending_review"]
    assert min(now - t.created_at for t in waiting) < dt.timedelta(hours=6)
    assert "按时办结率" in outputs[0] and "新建 40 条" in outputs[0]
    engine.dispose()


def test_demo_twice_creates_nothing_more(demo_db: tuple[str, Path, list[str]]) -> None:
    url, tokens, outputs = demo_db
    engine = make_engine(url)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Ticket)).one() == 40
        names = list(session.exec(select(Ticket.external_id)))
    engine.dispose()
    assert len(set(names)) == 40 and all(re.fullmatch(r"DEMO\d{5}", n) for n in names)
    assert "新建 0 条，已存在跳过 40 条" in outputs[1]
    assert "演示用户令牌已写入" not in outputs[1]  # users exist: the token file is kept
    # demo mode: how to log in, the dispatcher's token (still valid on the second run) and how to send a ticket
    token = next(line.split("\t")[3] for line in tokens.read_text().splitlines() if line.startswith("demo-dispatcher"))
    for output in outputs:
        assert "/ui/login" in output and str(tokens) in output and f"派单员令牌：{token}" in output
        assert "send-demo-ticket" in output and "openssl dgst -sha256 -hmac demo-secret-change-me" in output


@pytest.mark.parametrize(
    "now",
    [
        "2026-11-16T16:05:00+00:00",  # 00:05 on a Tuesday in Shanghai
        "2026-11-22T03:30:00+00:00",  # a Sunday, late morning
        "2026-10-08T15:59:00+00:00",  # 23:59, the month spans the National Day holiday
    ],
)
@pytest.mark.usefixtures("machine_tz")
def test_history_is_seeded_and_real_at_any_hour(
    tmp_path: Path, rules: ServiceRules, classifier: Classifier, now: str
) -> None:
    moment = dt.datetime.fromisoformat(now)
    texts = [json.loads(line) for line in (ROOT / "models" / "street" / "corpus.jsonl").read_text().splitlines()]
    snapshots = []
    for run in ("a", "b"):
        url = f"sqlite:///{tmp_path / f'{run}.db'}"
        upgrade(url)
        engine = make_engine(url)
        kw: dict[str, Any] = {"rules": rules, "policy": DeadlinePolicy(rules), "texts": texts, "count": 30}
        result = demo.generate(engine=engine, classifier=classifier, now=moment, **kw)
        assert result.created == 30 and not result.refused
        assert demo.generate(engine=engine, classifier=classifier, now=moment, **kw).skipped == 30
        start, end = _month(rules, moment)
        totals = load_report(engine, rules, start, end, None).totals.model_dump()
        assert totals["received"] == 30 and totals["resolved"] > 0 and 0 < totals["on_time_rate"] < 1
        assert totals["overdue_open"] > 0 and totals["reopened"] > 0 and totals["returned"] > 0
        with Session(engine) as session:
            rows = session.exec(select(TicketEvent).order_by(col(TicketEvent.id))).all()
            snapshots.append([(e.ticket_id, e.action, e.to_state, e.at) for e in rows])
            assert max(e.at for e in rows) <= moment
        engine.dispose()
    assert snapshots[0] == snapshots[1]


def test_a_real_secret_is_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch, f"sqlite:///{tmp_path / 'h.db'}", HOTLINE_WEBHOOK_SECRET=REAL_SECRET)
    tokens = tmp_path / "tokens.txt"
    result = CliRunner().invoke(app, ["demo", "--tickets", "0", "--tokens-file", str(tokens)])
    assert result.exit_code == 0, result.output
    assert REAL_SECRET not in result.output and DEMO_SECRET not in result.output
    assert "HOTLINE_WEBHOOK_SECRET" in result.output
    assert "派单员令牌" not in result.output  # not demo mode: tokens stay in the file
    assert "htl_" not in result.output


@pytest.mark.real_clock
def test_curl_snippet_signs_what_the_webhook_verifies(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl 不可用：无法在 shell 中计算 HMAC 签名")
    text = "楼下饭店油烟很大，老板说'没办法'，请处理"  # a quote and Chinese inside the single-quoted body
    snippet = demo.curl_snippet("http://127.0.0.1:9", DEMO_SECRET, text)
    lines = snippet.splitlines()
    head = "\n".join(line for line in lines if not line.startswith(("curl", "  -H")))
    script = head + '\nprintf "%s\\n%s\\n%s" "$ts" "$sig" "$body"\n'
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout
    ts, sig, body = out.split(b"\n", 2)
    verify(secret=DEMO_SECRET, timestamp=ts.decode(), signature=f"sha256={sig.decode()}", body=body, tolerance=300)
    payload = TicketCreate.model_validate_json(body)
    assert payload.content == text and payload.external_id == f"DEMO-CURL-{ts.decode()}"


# Against a real server ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pause(seconds: float) -> None:
    # not time.sleep: under libfaketime (scripts/any-hour.sh) Python's sleep fails with EINVAL
    threading.Event().wait(seconds)


def _ended(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Popen.wait(timeout=…) without time.sleep (see _pause)."""
    deadline = time.monotonic() + seconds
    while proc.poll() is None:
        if time.monotonic() > deadline:
            return False
        _pause(0.05)
    return True


def _serve(env: dict[str, str], port: int) -> Iterator[str]:
    """`hotline serve` as serve.sh starts it in demo mode; the whole process group is killed afterwards."""
    proc = subprocess.Popen(
        [*HOTLINE, "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_BUDGET_SECONDS
    try:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                _pause(0.2)
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        else:
            pytest.fail(f"server did not become ready in {READY_BUDGET_SECONDS} s")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the whole group: uvicorn and anything it started
        if not _ended(proc, 30):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.real_clock
def test_send_demo_ticket_and_the_printed_curl_create_tickets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'server.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(
        {
            "HOTLINE_DATABASE_URL": url,
            "HOTLINE_DEMO": "1",  # as serve.sh without HOTLINE_WEBHOOK_SECRET: the demo secret
            "HOTLINE_RULES": str(ROOT / "rules.yaml"),
            "HOTLINE_MODEL": str(ROOT / "models" / "street"),
            "HOTLINE_SCHEDULER": "0",
            "PYTHONPATH": str(ROOT),
        }
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    tokens = tmp_path / "tokens.txt"
    runner = CliRunner()
    # what serve.sh runs before the server: users and the guide (no tickets here)
    _clean_env(monkeypatch, url, HOTLINE_DEMO="1")
    guide = runner.invoke(app, ["demo", "--tickets", "0", "--tokens-file", str(tokens), "--url", base])
    assert guide.exit_code == 0, guide.output
    assert f"{base}/ui/login" in guide.output
    token = re.search(r"派单员令牌：(\S+)", guide.output)
    assert token is not None
    snippet = guide.output.split("----- 8< -----\n", 1)[1].split("----- >8 -----", 1)[0]
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    for served in _serve(env, port):
        assert served == base
        # another shell, without HOTLINE_DEMO: the command signs with the demo secret by default. A process of its
        # own, as a person runs it (and under libfaketime its clock starts with the server's, not the test's)
        text = "小区门口有人占道摆摊卖水果，影响通行"
        sent = subprocess.run(
            [*HOTLINE, "send-demo-ticket", "--url", base, "--text", text],
            env={k: v for k, v in env.items() if k != "HOTLINE_DEMO"},
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert sent.returncode == 0, sent.stderr
        assert re.search(r"已创建工单 #\d+（编号 DEMO-SEND-", sent.stdout) and "办结时限" in sent.stdout
        listed = httpx.get(f"{base}/api/v1/tickets", headers=headers).json()
        assert listed["total"] == 1 and listed["items"][0]["content"] == text
        monkeypatch.delenv("HOTLINE_DEMO")
        monkeypatch.setenv("HOTLINE_WEBHOOK_SECRET", REAL_SECRET)
        wrong = runner.invoke(app, ["send-demo-ticket", "--url", base])
        assert wrong.exit_code == 2 and "HTTP 401" in wrong.output and "HOTLINE_WEBHOOK_SECRET" in wrong.output
        if shutil.which("curl") is None or shutil.which("openssl") is None:
            pytest.skip("curl 或 openssl 不可用：跳过运行打印出的 curl 示例（send-demo-ticket 已验证）")
        curl = subprocess.run(["bash", "-c", snippet], capture_output=True, text=True)
        assert curl.returncode == 0, curl.stderr
        created = json.loads(curl.stdout)
        assert "external_id" in created, created
        assert created["external_id"].startswith("DEMO-CURL-") and created["state"] == "pending_review"
        assert httpx.get(f"{base}/api/v1/tickets", headers=headers).json()["total"] == 2
