"""The PostgreSQL scale-out topology, end to end with real processes and no containers.

One fresh database migrated by a prestart step (`python -m service.cli db upgrade`, what the compose `migrate`
service runs), two API replicas (`serve --no-migrate`, HOTLINE_SCHEDULER=0) and one `scheduler` process delivering
callbacks to a local receiver. Checked:

- signed deliveries spread over both replicas, with the same external_id raced to both at once: one ticket per
  external_id, exactly one 201 per raced id and 200 for the rest, every 2xx id stored;
- the lifecycle driven over the JSON API, alternating replicas, fills the outbox; the replicas themselves send
  nothing (they have the callback URL and a 1 s outbox interval, so a replica that ran the jobs would show up);
- the same action raced through both replicas gives one success and one 409, never a lost update;
- the scheduler delivers every outbox message exactly once per idempotency key, in per-ticket order.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.auth.service import create_user
from service.db import MIGRATIONS, make_engine
from service.notify.models import OutboxMessage
from service.rules import ServiceRules, load_rules
from service.signing import sign
from service.tickets.models import Ticket, TicketEvent
from tests.conftest import PG_ADMIN_URL, ROOT, SECRET
from tests.service.notify.receiver import Receiver, running

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

UNIQUE_TICKETS = 60  # one delivery each, spread over both replicas
RACED_IDS = 12  # each delivered twice to each replica at the same moment
DELIVERIES_PER_RACED_ID = 4
LIFECYCLE_TICKETS = 20  # accept, contact, resolve
RETURN_TICKETS = 4  # accept, return, (dispatcher) confirm, accept, contact, resolve
LOCK_RACE_TICKETS = 4  # accept raced on both replicas, contact, resolve raced on both replicas
INTAKE_CONCURRENCY = 12
CALLBACK_ACTIONS = {"accept", "contact", "resolve", "return"}  # of the actions used here, those with a callback

TEXTS = [
    json.loads(line)["text"]
    for line in (ROOT / "models" / "street" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


# processes ----------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(
        {
            "HOTLINE_DATABASE_URL": url,
            "HOTLINE_WEBHOOK_SECRET": SECRET,
            "HOTLINE_RULES": str(ROOT / "rules.yaml"),
            "HOTLINE_MODEL": str(ROOT / "models" / "street"),
            "HOTLINE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **extra,
        }
    )
    return env


@dataclass(eq=False)
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL if it does not go within 10 s."""
        if self.popen.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)


@contextmanager
def started(name: str, args: list[str], env: dict[str, str], logs: Path) -> Iterator[Proc]:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "service.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches any children too
        )
    proc = Proc(name, popen, log)
    try:
        yield proc
    finally:
        proc.stop()


def _wait_ready(procs: list[tuple[Proc, str]], timeout: float = 90) -> None:
    pending = dict(procs)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for proc, base in list(pending.items()):
            assert proc.alive(), f"{proc.name} exited with {proc.popen.returncode}:\n{_tail(proc.log)}"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    del pending[proc]
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    assert not pending, "not ready in time: " + "; ".join(f"{p.name}:\n{_tail(p.log)}" for p in pending)


@contextmanager
def fresh_database() -> Iterator[str]:
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:  # no server can be had here: say so instead of failing
        pytest.skip(f"PostgreSQL 不可用（{PG_ADMIN_URL}）：{exc}")
    name = f"hotline_scaleout_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# HTTP ---------------------------------------------------------------------------------------------------------


def _ticket_body(external_id: str, i: int) -> bytes:
    data = {
        "external_id": external_id,
        "received_at": "2026-11-20T09:30:00+08:00",
        "channel": "电话",
        "title": "",
        "content": TEXTS[i % len(TEXTS)],
        "address": f"扩容测试路{i}弄{i % 7 + 1}号",  # one building per ticket: no duplicate/hotspot coupling
        "caller_name": "测试来电人",
        "caller_phone": f"1390000{i:04d}",
        "kind": "投诉",
    }
    return json.dumps(data, ensure_ascii=False).encode()


async def _deliver(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    stamp = str(int(time.time()))  # signed at send time, like the hotline system does on each retry
    headers = {
        "X-Hotline-Timestamp": stamp,
        "X-Hotline-Signature": sign(SECRET, stamp, body),
        "Content-Type": "application/json",
    }
    return await client.post("/api/v1/hotline/tickets", content=body, headers=headers)


@dataclass
class Flow:
    """What the client side saw, to compare with the database and the receiver."""

    ticket_id: int
    office: str
    callbacks: list[str] = field(default_factory=list)  # successful callback actions, in the order performed


async def _act(
    client: httpx.AsyncClient, flow: Flow, action: str, token: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    r = await client.post(
        f"/api/v1/tickets/{flow.ticket_id}/{action}",
        json=body or {},
        headers={"Authorization": f"Bearer {token}"},
    )
    if r.status_code == 200 and action in CALLBACK_ACTIONS:
        flow.callbacks.append(action)
    return r


async def _must(
    client: httpx.AsyncClient, flow: Flow, action: str, token: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    r = await _act(client, flow, action, token, body)
    assert r.status_code == 200, f"{action} on #{flow.ticket_id} via {client.base_url}: {r.status_code} {r.text}"
    result: dict[str, Any] = r.json()
    return result


async def _dispatch(api: list[httpx.AsyncClient], flow: Flow, state: str, dispatcher: str, k: int) -> None:
    """Bring a pending-review or returned ticket back to dispatched (no callback for these)."""
    if state in ("pending_review", "returned"):
        await _must(api[k % 2], flow, "confirm", dispatcher)


async def _race(
    api: list[httpx.AsyncClient], flow: Flow, action: str, token: str, bodies: list[dict[str, Any]]
) -> list[httpx.Response]:
    """The same action on the same ticket through both replicas at the same moment."""
    return list(await asyncio.gather(*(_act(api[i], flow, action, token, bodies[i]) for i in range(2))))


# database -----------------------------------------------------------------------------------------------------


def _tokens(engine: Engine, rules: ServiceRules) -> tuple[str, dict[str, str]]:
    with Session(engine) as session:
        _, dispatcher = create_user(
            session=session,
            rules=rules,
            name=f"scale-dispatcher-{uuid.uuid4().hex[:6]}",
            role="dispatcher",
            office=None,
        )
        offices = {}
        for code in rules.offices:
            _, token = create_user(
                session=session, rules=rules, name=f"scale-{code}-{uuid.uuid4().hex[:6]}", role="office", office=code
            )
            offices[code] = token
    return dispatcher, offices


def _outbox(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


# the test -----------------------------------------------------------------------------------------------------


def test_two_api_replicas_and_one_scheduler(tmp_path: Path) -> None:
    started_at = time.monotonic()
    rules = load_rules(ROOT / "rules.yaml")
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database())
        engine = make_engine(url, pool_size=2)
        stack.callback(engine.dispose)

        # prestart: migrate once, as its own process ------------------------------------------------------------
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('public.ticket')")).scalar() is None
        migrate = subprocess.run(
            [sys.executable, "-m", "service.cli", "db", "upgrade"],
            env=_env(url),
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
        assert migrate.returncode == 0, migrate.stderr.decode(errors="replace")
        head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head

        receiver = stack.enter_context(running(Receiver(secret=SECRET)))
        # the replicas know the callback URL and would deliver every second if they ran the jobs: they must not
        api_env = _env(
            url,
            HOTLINE_SCHEDULER="0",
            HOTLINE_CALLBACK_URL=receiver.url,
            HOTLINE_OUTBOX_INTERVAL_SECONDS="1",
            HOTLINE_SWEEP_INTERVAL_SECONDS="1",
        )
        ports = [_free_port(), _free_port()]
        apis = [
            stack.enter_context(started(f"api{i}", ["serve", "--port", str(p), "--no-migrate"], api_env, tmp_path))
            for i, p in enumerate(ports)
        ]
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        _wait_ready(list(zip(apis, bases, strict=True)))
        dispatcher, office_tokens = _tokens(engine, rules)
        ready_at = time.monotonic()

        # load: signed deliveries to both replicas, raced external_ids ----------------------------------------------
        unique = [(f"SCALE-U{i:04d}", _ticket_body(f"SCALE-U{i:04d}", i)) for i in range(UNIQUE_TICKETS)]
        raced = [(f"SCALE-R{i:04d}", _ticket_body(f"SCALE-R{i:04d}", UNIQUE_TICKETS + i)) for i in range(RACED_IDS)]

        async def load() -> tuple[list[tuple[str, httpx.Response]], dict[str, list[tuple[int, httpx.Response]]]]:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with (
                httpx.AsyncClient(base_url=bases[0], timeout=30, limits=limits) as a,
                httpx.AsyncClient(base_url=bases[1], timeout=30, limits=limits) as b,
            ):
                api = [a, b]
                gate = asyncio.Semaphore(INTAKE_CONCURRENCY)

                async def one(i: int, ext: str, body: bytes) -> tuple[str, httpx.Response]:
                    async with gate:
                        return ext, await _deliver(api[i % 2], body)

                async def burst(ext: str, body: bytes) -> tuple[str, list[tuple[int, httpx.Response]]]:
                    # the hotline system retries and may hit either replica: all copies leave together
                    copies = [i % 2 for i in range(DELIVERIES_PER_RACED_ID)]
                    answers = await asyncio.gather(*(_deliver(api[k], body) for k in copies))
                    return ext, list(zip(copies, answers, strict=True))

                # both kinds in flight together, so the raced ids meet the replicas under load
                singles, bursts = await asyncio.gather(
                    asyncio.gather(*(one(i, ext, body) for i, (ext, body) in enumerate(unique))),
                    asyncio.gather(*(burst(ext, body) for ext, body in raced)),
                )
            return list(singles), dict(bursts)

        single_results, burst_results = asyncio.run(load())
        loaded_at = time.monotonic()

        assert len(single_results) == UNIQUE_TICKETS
        bad = [(ext, r.status_code, r.text[:200]) for ext, r in single_results if r.status_code != 201]
        assert not bad, f"unique deliveries not created: {bad}"
        ids: dict[str, int] = {ext: r.json()["id"] for ext, r in single_results}
        intake: dict[str, dict[str, Any]] = {ext: r.json() for ext, r in single_results}
        for ext, answers in burst_results.items():
            codes = sorted(r.status_code for _, r in answers)
            expected = [200] * (DELIVERIES_PER_RACED_ID - 1) + [201]
            assert codes == expected, f"{ext}: {[(k, r.status_code, r.text[:200]) for k, r in answers]}"
            answered = {r.json()["id"] for _, r in answers}
            assert len(answered) == 1, f"{ext} answered with different tickets {answered}"
            ids[ext] = answered.pop()
            intake[ext] = next(r.json() for _, r in answers if r.status_code == 201)

        with Session(engine) as session:
            stored = {t.external_id: t.id for t in session.exec(select(Ticket))}
        assert len(stored) == UNIQUE_TICKETS + RACED_IDS, "a ticket was stored twice or lost"
        assert stored == ids, "every 2xx answer names the one stored ticket of its external_id"

        # lifecycle over the JSON API, alternating replicas --------------------------------------------------------
        order = sorted(ids.items())
        normal = [Flow(ids[e], intake[e]["office"]) for e, _ in order[:LIFECYCLE_TICKETS]]
        returning = [Flow(ids[e], intake[e]["office"]) for e, _ in order[LIFECYCLE_TICKETS:][:RETURN_TICKETS]]
        contested = [
            Flow(ids[e], intake[e]["office"])
            for e, _ in order[LIFECYCLE_TICKETS + RETURN_TICKETS :][:LOCK_RACE_TICKETS]
        ]
        # the raced ids are among the driven tickets (sorted: SCALE-R… before SCALE-U…)
        assert any(e.startswith("SCALE-R") for e, _ in order[:LIFECYCLE_TICKETS])
        states = {ids[e]: intake[e]["state"] for e in ids}
        assert all(f.office in office_tokens for f in normal + returning + contested), "a ticket without an office"
        resolve = {"result": rules.lifecycle.resolve_results[0], "note": "已上门核查并处理"}
        race_outcomes: list[tuple[int, str, list[int], list[str]]] = []

        async def drive() -> None:
            async with (
                httpx.AsyncClient(base_url=bases[0], timeout=30) as a,
                httpx.AsyncClient(base_url=bases[1], timeout=30) as b,
            ):
                api = [a, b]

                async def plain(n: int, flow: Flow) -> None:
                    token = office_tokens[flow.office]
                    await _dispatch(api, flow, states[flow.ticket_id], dispatcher, n)
                    await _must(api[(n + 1) % 2], flow, "accept", token)
                    await _must(api[n % 2], flow, "contact", token)
                    await _must(api[(n + 1) % 2], flow, "resolve", token, resolve)

                async def bounced(n: int, flow: Flow) -> None:
                    token = office_tokens[flow.office]
                    await _dispatch(api, flow, states[flow.ticket_id], dispatcher, n)
                    await _must(api[n % 2], flow, "accept", token)
                    reason = rules.lifecycle.return_reasons[-1]
                    returned = await _must(api[(n + 1) % 2], flow, "return", token, {"reason": reason, "note": "退"})
                    await _dispatch(api, flow, returned["state"], dispatcher, n + 1)
                    await _must(api[n % 2], flow, "accept", token)
                    await _must(api[(n + 1) % 2], flow, "contact", token)
                    await _must(api[n % 2], flow, "resolve", token, resolve)

                async def contest(n: int, flow: Flow) -> None:
                    token = office_tokens[flow.office]
                    await _dispatch(api, flow, states[flow.ticket_id], dispatcher, n)
                    first = await _race(api, flow, "accept", token, [{"note": "副本0签收"}, {"note": "副本1签收"}])
                    await _must(api[n % 2], flow, "contact", token)
                    notes = [{**resolve, "note": "副本0办结"}, {**resolve, "note": "副本1办结"}]
                    second = await _race(api, flow, "resolve", token, notes)
                    for action, answers, bodies in (
                        ("accept", first, ["副本0签收", "副本1签收"]),
                        ("resolve", second, ["副本0办结", "副本1办结"]),
                    ):
                        codes = [r.status_code for r in answers]
                        winners = [bodies[i] for i, r in enumerate(answers) if r.status_code == 200]
                        race_outcomes.append((flow.ticket_id, action, codes, winners))

                await asyncio.gather(
                    *(plain(n, f) for n, f in enumerate(normal)),
                    *(bounced(n, f) for n, f in enumerate(returning)),
                    *(contest(n, f) for n, f in enumerate(contested)),
                )

        asyncio.run(drive())
        driven_at = time.monotonic()

        # optimistic lock: one success and one 409 per race, and the winner's write is the one stored
        assert len(race_outcomes) == 2 * LOCK_RACE_TICKETS
        with Session(engine) as session:
            for ticket_id, action, codes, winners in race_outcomes:
                assert sorted(codes) == [200, 409], f"#{ticket_id} {action} raced on both replicas: {codes}"
                events = session.exec(
                    select(TicketEvent).where(TicketEvent.ticket_id == ticket_id, TicketEvent.action == action)
                ).all()
                assert [e.note for e in events] == winners, f"#{ticket_id} {action}: lost or doubled update"
            for flow in contested:
                ticket = session.get(Ticket, flow.ticket_id)
                assert ticket is not None and ticket.state == "resolved"

        # nothing was sent by the replicas: they had the URL, 1 s intervals and seconds of time to misbehave ----------
        time.sleep(max(0.0, 2.5 - (time.monotonic() - driven_at)))
        outbox = _outbox(engine)
        assert receiver.calls == 0, f"an API replica delivered {receiver.calls} callbacks with HOTLINE_SCHEDULER=0"
        assert all(m.state == "pending" and m.attempts == 0 for m in outbox)
        flows = normal + returning + contested
        expected_calls = sum(len(f.callbacks) for f in flows)
        assert len(outbox) == expected_calls, "every successful callback action wrote exactly one outbox message"
        assert expected_calls == 3 * LIFECYCLE_TICKETS + 5 * RETURN_TICKETS + 3 * LOCK_RACE_TICKETS

        # the one scheduler delivers them ----------------------------------------------------------------------------
        scheduler_env = _env(
            url,
            HOTLINE_CALLBACK_URL=receiver.url,
            HOTLINE_OUTBOX_INTERVAL_SECONDS="1",
            HOTLINE_SWEEP_INTERVAL_SECONDS="1",
        )
        scheduler = stack.enter_context(started("scheduler", ["scheduler"], scheduler_env, tmp_path))
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            assert scheduler.alive(), f"scheduler exited:\n{_tail(scheduler.log)}"
            if len(receiver.keys_seen) >= expected_calls and all(m.state == "delivered" for m in _outbox(engine)):
                break
            time.sleep(0.3)
        time.sleep(1.5)  # room for a late duplicate to show up
        delivered_at = time.monotonic()
        scheduler.stop()
        for proc in apis:
            assert proc.alive(), f"{proc.name} died:\n{_tail(proc.log)}"

        outbox = _outbox(engine)
        assert receiver.bad_signatures == 0
        assert all(m.state == "delivered" for m in outbox), Counter(m.state for m in outbox)
        assert all(m.attempts == 1 for m in outbox), "a callback needed a retry against a healthy receiver"
        seen = Counter(receiver.keys_seen)
        assert set(seen) == {m.idempotency_key for m in outbox}, "a callback is missing or unknown"
        assert [k for k, n in seen.items() if n > 1] == [], "a callback was delivered twice"
        assert receiver.calls == expected_calls

        by_ticket: dict[int, list[dict[str, Any]]] = {}
        for payload in receiver.order:
            by_ticket.setdefault(payload["ticket_id"], []).append(payload)
        stored_by_ticket: dict[int, list[dict[str, Any]]] = {}
        for m in outbox:
            stored_by_ticket.setdefault(m.ticket_id, []).append(m.payload)
        assert by_ticket == stored_by_ticket, "callbacks arrived out of their per-ticket order (or altered)"
        for flow in flows:
            assert [p["action"] for p in by_ticket[flow.ticket_id]] == flow.callbacks
        assert all(
            [p["event"] for p in by_ticket[f.ticket_id]] == ["签收", "先行联系", "办结反馈"] for f in normal + contested
        )
        assert all(
            [p["event"] for p in by_ticket[f.ticket_id]] == ["签收", "退单", "签收", "先行联系", "办结反馈"]
            for f in returning
        )

    print(
        f"\nscale-out: {UNIQUE_TICKETS + RACED_IDS * DELIVERIES_PER_RACED_ID} deliveries "
        f"({UNIQUE_TICKETS + RACED_IDS} tickets, {RACED_IDS} raced ids), {len(race_outcomes)} lock races, "
        f"{expected_calls} callbacks delivered once each; startup {ready_at - started_at:.1f}s, "
        f"load {loaded_at - ready_at:.1f}s, lifecycle {driven_at - loaded_at:.1f}s, "
        f"delivery {delivered_at - driven_at:.1f}s, total {time.monotonic() - started_at:.1f}s"
    )
