"""Fault drills with real processes over real HTTP: what the hotline system sees when things break, and what is
in the database afterwards.

1. `kill -9` of `hotline serve` in the middle of a flood of signed deliveries (SQLite and PostgreSQL): every
   delivery answered 2xx is stored exactly once with its receive and classify events, nothing is half written, and
   after a restart the hotline system's retry of every attempted delivery gives 200/201 and still one row each.
2. PostgreSQL unreachable (a TCP proxy the test cuts and restores): 503 with Retry-After and a Chinese message,
   /readyz 503, nothing written; after the proxy comes back the same deliveries succeed without a restart and a
   retry counts once.
3. SQLite read-only and full disk: writes are refused with their own message (503 read-only, 507 disk full),
   reads and duplicate deliveries still answer, /readyz says why; after space is freed writes resume without a
   restart. `hotline serve` on an unopenable or unwritable SQLite path exits once with one line, no traceback.

(The callback endpoint down for hours is drilled in tests/service/notify/test_outbox.py.)
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from service.auth.service import create_user
from service.clock import utcnow
from service.db import make_engine, upgrade
from service.reports.rollup import refresh, verify
from service.rules import load_rules
from tests.conftest import PG_ADMIN_URL, ROOT, SECRET, signed_headers

pytestmark = pytest.mark.slow

HOTLINE = [sys.executable, "-m", "service.cli"]
INTAKE = "/api/v1/hotline/tickets"
TEXTS = [
    json.loads(line)["text"]
    for line in (ROOT / "models" / "street" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
ESTATES = ["上南二村", "上南五村", "洪山花苑", "云台大厦", "德韵园", "齐河路", "昌里路"]


# processes ----------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(
        {
            "HOTLINE_DATABASE_URL": url,
            "HOTLINE_WEBHOOK_SECRET": SECRET,
            "HOTLINE_SCHEDULER": "0",
            "HOTLINE_LOG_LEVEL": "WARNING",
            "HOTLINE_RULES": str(ROOT / "rules.yaml"),
            "HOTLINE_MODEL": str(ROOT / "models" / "street"),
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=20)
        if self.proc.poll() is None:  # a polite signal was ignored: no mercy
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@contextmanager
def serving(url: str, log_dir: Path) -> Iterator[Server]:
    """`hotline serve` in its own process group on a free port, up (/healthz) before the block runs; always killed."""
    port = _free_port()
    log = log_dir / f"server-{port}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [*HOTLINE, "serve", "--port", str(port)],
            env=_env(url),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"server exited with {proc.returncode}:\n{_tail(log)}"
            assert time.monotonic() < deadline, f"server did not come up:\n{_tail(log)}"
            with suppress(httpx.HTTPError):
                if httpx.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield server
    finally:
        server.kill()


# deliveries ---------------------------------------------------------------------------------------------------


def delivery(external_id: str, rng: random.Random) -> bytes:
    return json.dumps(
        {
            "external_id": external_id,
            "received_at": "2026-11-20T09:30:00+08:00",
            "channel": "电话",
            "content": rng.choice(TEXTS),
            "address": f"{rng.choice(ESTATES)}{rng.randint(1, 300)}号",
            "caller_phone": "13800001111",
            "kind": "投诉",
        },
        ensure_ascii=False,
    ).encode()


def post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(INTAKE, content=body, headers=signed_headers(body))  # signed afresh on every attempt


def resend_all(base: str, bodies: dict[str, bytes], workers: int = 8) -> dict[str, int]:
    """The hotline system retrying every delivery it ever attempted; status per external_id."""
    items = list(bodies.items())

    def run(chunk: list[tuple[str, bytes]]) -> list[tuple[str, int]]:
        with httpx.Client(base_url=base, timeout=30) as client:
            return [(ext, post(client, body).status_code) for ext, body in chunk]

    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(run, [items[i::workers] for i in range(workers)])
    return {ext: code for chunk in results for ext, code in chunk}


def stored(url: str) -> dict[str, tuple[int, int, int]]:
    """external_id → (rows with that id, receive events, classify events), read directly from the database."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT t.external_id, "
                    " (SELECT count(*) FROM ticket u WHERE u.external_id = t.external_id), "
                    " (SELECT count(*) FROM ticket_event e WHERE e.ticket_id = t.id AND e.action = 'receive'), "
                    " (SELECT count(*) FROM ticket_event e WHERE e.ticket_id = t.id AND e.action = 'classify') "
                    "FROM ticket t"
                )
            ).all()
    finally:
        engine.dispose()
    return {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def assert_whole(tickets: dict[str, tuple[int, int, int]]) -> None:
    """No duplicates and no partial writes: one row per external_id, each with one receive and one classify event."""
    broken = {ext: counts for ext, counts in tickets.items() if counts != (1, 1, 1)}
    assert not broken, f"half-written or duplicated tickets (rows, receive, classify): {broken}"


def assert_503_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) > 0
    detail = r.json()["detail"]
    assert "数据库" in detail and "暂时不可用" in detail, detail


def sqlite_count(path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM ticket").fetchone()[0])
    finally:
        conn.close()


def make_token(url: str, role: str) -> str:
    engine = make_engine(url, pool_size=1)
    try:
        with Session(engine) as session:
            _, token = create_user(
                session=session,
                rules=load_rules(ROOT / "rules.yaml"),
                name=f"{role}-{uuid.uuid4().hex[:6]}",
                role=role,
                office=None,
            )
    finally:
        engine.dispose()
    return token


# databases ----------------------------------------------------------------------------------------------------


@contextmanager
def fresh_pg() -> Iterator[str]:
    """A new, migrated database on the real PostgreSQL server, dropped afterwards (skips without a server)."""
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:
        pytest.skip(f"PostgreSQL 不可用（{PG_ADMIN_URL}）：{exc}")
    name = f"hotline_fault_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
        upgrade(url)
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def drill_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hotline.db'}"
        upgrade(url)
        yield url
    else:
        with fresh_pg() as url:
            yield url


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs: a disk that really fills up (ENOSPC) and really goes read-only (needs root with mount)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


# 1. kill -9 during load -------------------------------------------------------------------------------------------


@dataclass
class Flood:
    """Signed deliveries from several threads, recording what was attempted and what was acknowledged."""

    base: str
    attempted: dict[str, bytes] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    in_flight: int = 0  # sent before the kill, no answer ever came
    killed_at: float = float("inf")
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def worker(self, n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=self.base, timeout=30) as client:
            i = 0
            while not self.stop.is_set():
                ext = f"K{n:02d}X{i:05d}"
                i += 1
                body = delivery(ext, rng)
                with self.lock:
                    self.attempted[ext] = body
                sent_at = time.monotonic()
                try:
                    r = post(client, body)
                except httpx.HTTPError:
                    with self.lock:
                        self.in_flight += sent_at < self.killed_at
                    time.sleep(0.05)  # refused: the server is gone; keep "retrying" new ids until told to stop
                    continue
                with self.lock:
                    self.statuses[r.status_code] += 1
                    if r.status_code in (200, 201):
                        self.acked.add(ext)


def test_kill_9_during_load_loses_no_acknowledged_ticket(drill_db: str, tmp_path: Path) -> None:
    with serving(drill_db, tmp_path) as server:
        flood = Flood(server.base)
        threads = [threading.Thread(target=flood.worker, args=(n,), daemon=True) for n in range(8)]
        for t in threads:
            t.start()
        try:
            started = time.monotonic()
            while len(flood.acked) < 30 or time.monotonic() - started < 0.5:
                assert time.monotonic() - started < 30, f"too slow: {flood.statuses}\n{_tail(server.log)}"
                time.sleep(0.02)
            flood.killed_at = time.monotonic()
            server.kill(signal.SIGKILL)  # mid-flood: requests are in flight, batches half-way through
            time.sleep(0.3)  # the senders see the dead server (refused) for a moment
        finally:
            flood.stop.set()
            for t in threads:
                t.join(timeout=30)
        assert server.proc.returncode == -signal.SIGKILL
    # every answer before the kill was "created", and the kill cut some requests off without an answer
    assert set(flood.statuses) == {201}, flood.statuses
    assert flood.in_flight >= 1
    acked, attempted = set(flood.acked), dict(flood.attempted)

    after_crash = stored(drill_db)
    assert_whole(after_crash)
    assert acked <= set(after_crash), f"acknowledged but lost: {sorted(acked - set(after_crash))[:10]}"
    assert set(after_crash) <= set(attempted)

    with serving(drill_db, tmp_path) as server:
        answers = resend_all(server.base, attempted)
        again = resend_all(server.base, {ext: attempted[ext] for ext in list(attempted)[:20]})
    assert set(answers.values()) <= {200, 201}, Counter(answers.values())
    # stored before the crash (acknowledged or not) → "already have it"; never stored → created now
    assert {ext for ext, code in answers.items() if code == 200} == set(after_crash)
    assert {ext for ext, code in answers.items() if code == 201} == set(attempted) - set(after_crash)
    assert set(again.values()) == {200}
    final = stored(drill_db)
    assert set(final) == set(attempted)
    assert_whole(final)
    assert_rollup_agrees(drill_db)


def assert_rollup_agrees(url: str) -> None:
    """The report rollup, kept up by the marks the intake wrote (a kill included), equals a full recount."""
    rules = load_rules(ROOT / "rules.yaml")
    engine = make_engine(url, pool_size=1)
    try:
        refresh(engine, rules, now=utcnow(), backfill=0)
        with engine.connect() as conn:
            result = verify(conn, rules, dt.date(2026, 11, 19), utcnow().date() + dt.timedelta(days=90))
    finally:
        engine.dispose()
    assert result.days >= 2, result  # the drill's received day and today at least were marked and built
    assert result.differences == [], result.differences[:5]


# 2. PostgreSQL unreachable ----------------------------------------------------------------------------------------


class TcpProxy:
    """Loopback TCP proxy to PostgreSQL that can be cut (every connection closed, new ones refused) and restored."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = _free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.accepted = 0

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=3)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._conns.update((client, upstream))
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._conns.difference_update((src, dst))

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for s in conns:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self.start()


@pytest.mark.postgres
def test_postgres_unreachable_then_back_without_restart(tmp_path: Path) -> None:
    with fresh_pg() as direct:
        real = make_url(direct)
        proxy = TcpProxy((real.host or "127.0.0.1", real.port or 5432))
        proxy.start()
        try:
            via_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            rng = random.Random(2)
            with serving(via_proxy, tmp_path) as server, httpx.Client(base_url=server.base, timeout=30) as client:
                before = {f"P0X{i}": delivery(f"P0X{i}", rng) for i in range(3)}
                assert [post(client, b).status_code for b in before.values()] == [201] * 3
                assert client.get("/readyz").status_code == 200

                proxy.cut()
                down = {f"P1X{i}": delivery(f"P1X{i}", rng) for i in range(5)}
                for body in [*down.values(), *before.values()]:  # new deliveries and a retry of a stored one
                    assert_503_unavailable(post(client, body))
                ready = client.get("/readyz")
                assert ready.status_code == 503 and ready.json()["checks"]["database"]["ok"] is False
                assert client.get("/healthz").status_code == 200
                assert set(stored(direct)) == set(before)  # checked on the real server, not through the proxy

                proxy.restore()
                assert [post(client, b).status_code for b in down.values()] == [201] * 5
                assert [post(client, b).status_code for b in [*down.values(), *before.values()]] == [200] * 8
                assert client.get("/readyz").status_code == 200
                assert server.proc.poll() is None  # the same process throughout
            tickets = stored(direct)
            assert set(tickets) == set(before) | set(down)
            assert_whole(tickets)
        finally:
            proxy.cut()


def _pg_set_read_only(direct: str, on: bool) -> None:
    """Make the database read-only for new sessions (what a hot standby looks like) and drop existing sessions."""
    name = make_url(direct).database
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {"on" if on else "off"}')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


@pytest.mark.postgres
def test_postgres_read_only_then_writable_without_restart(tmp_path: Path) -> None:
    with fresh_pg() as direct:
        rng = random.Random(5)
        first, later = delivery("W0X0", rng), delivery("W1X0", rng)
        with serving(direct, tmp_path) as server, httpx.Client(base_url=server.base, timeout=30) as client:
            assert post(client, first).status_code == 201
            _pg_set_read_only(direct, True)
            r = post(client, later)
            assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, r.text
            assert "只读" in r.json()["detail"]
            assert post(client, first).status_code == 200  # a retry of a stored delivery is only a read
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["database"]["problem"] == "read_only"
            _pg_set_read_only(direct, False)
            assert post(client, later).status_code == 201
            assert client.get("/readyz").status_code == 200
            assert server.proc.poll() is None
        tickets = stored(direct)
        assert set(tickets) == {"W0X0", "W1X0"}
        assert_whole(tickets)


# 3. SQLite read-only and full disk --------------------------------------------------------------------------------


def test_sqlite_read_only_refuses_writes_and_keeps_reading(tmp_path: Path) -> None:
    path = tmp_path / "hotline.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    token = make_token(url, "dispatcher")
    rng = random.Random(3)
    stored_bodies = {f"R0X{i}": delivery(f"R0X{i}", rng) for i in range(3)}
    with serving(url, tmp_path) as server, httpx.Client(base_url=server.base, timeout=30) as client:
        assert [post(client, b).status_code for b in stored_bodies.values()] == [201] * 3
        first_id = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"}).json()["items"][0]["id"]
        server.kill(signal.SIGTERM)

    # the same file opened read-only (what a read-only file or mount looks like to SQLite: SQLITE_READONLY)
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    with serving(read_only, tmp_path) as server, httpx.Client(base_url=server.base, timeout=30) as client:
        r = post(client, delivery("R1X0", rng))
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, r.text
        assert "只读" in r.json()["detail"] and "暂时不可用" not in r.json()["detail"]
        action = client.post(
            f"/api/v1/tickets/{first_id}/cancel", json={"note": "演练"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert action.status_code == 503 and "只读" in action.json()["detail"], action.text
        # reads work: the queue, and a retried delivery answered from what is stored
        listed = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200 and listed.json()["total"] == 3
        assert post(client, next(iter(stored_bodies.values()))).status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        database = ready.json()["checks"]["database"]
        assert database["problem"] == "read_only" and "只读" in database["error"]
        assert server.proc.poll() is None
        assert "Traceback" not in server.log.read_text(encoding="utf-8", errors="replace")
    assert sqlite_count(path) == 3


def _fill(disk: Path) -> Path:
    """Write a filler file until the filesystem says ENOSPC."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1 << 9, 1):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    return filler


def test_sqlite_disk_full_refuses_writes_then_recovers_without_restart(small_disk: Path, tmp_path: Path) -> None:
    path = small_disk / "hotline.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    token = make_token(url, "dispatcher")
    rng = random.Random(4)
    first = {f"F0X{i}": delivery(f"F0X{i}", rng) for i in range(3)}
    later = {f"F1X{i}": delivery(f"F1X{i}", rng) for i in range(4)}
    with serving(url, tmp_path) as server, httpx.Client(base_url=server.base, timeout=30) as client:
        pid = server.proc.pid
        assert [post(client, b).status_code for b in first.values()] == [201] * 3

        filler = _fill(small_disk)
        assert os.statvfs(small_disk).f_bavail == 0
        for body in later.values():
            r = post(client, body)
            assert r.status_code == 507 and int(r.headers["Retry-After"]) > 0, r.text
            assert "磁盘已满" in r.json()["detail"] and "暂时不可用" not in r.json()["detail"]
        listed = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200 and listed.json()["total"] == 3
        assert post(client, next(iter(first.values()))).status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"]["problem"] == "disk_full", ready.text
        assert sqlite_count(path) == 3

        filler.unlink()
        assert [post(client, b).status_code for b in later.values()] == [201] * 4
        assert [post(client, b).status_code for b in later.values()] == [200] * 4
        assert client.get("/readyz").status_code == 200
        assert server.proc.poll() is None and server.proc.pid == pid
        assert "Traceback" not in server.log.read_text(encoding="utf-8", errors="replace")
    tickets = stored(url)
    assert set(tickets) == set(first) | set(later)
    assert_whole(tickets)


def _refusal(url: str, log_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*HOTLINE, "serve", "--port", str(_free_port())],
        env=_env(url),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _assert_refused_once(proc: subprocess.Popen[str], *expected: str) -> str:
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 2, (proc.returncode, err)
    assert "Traceback" not in err and "Uvicorn running" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("错误")]
    assert len(errors) == 1, err
    assert all(word in errors[0] for word in expected), errors[0]
    return errors[0]


def test_serve_refuses_an_unopenable_sqlite_path_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a directory", encoding="utf-8")
    (tmp_path / "a-directory.db").mkdir()
    cases = [
        (f"sqlite:///{tmp_path / 'plain-file' / 'hotline.db'}", ("无法创建", str(tmp_path / "plain-file"))),
        (f"sqlite:///{tmp_path / 'a-directory.db'}", ("无法打开", str(tmp_path / "a-directory.db"))),
    ]
    running = [(_refusal(url, tmp_path), expected) for url, expected in cases]  # side by side: half the wait
    for proc, expected in running:
        _assert_refused_once(proc, *expected)


def test_serve_refuses_a_read_only_filesystem_with_one_line(small_disk: Path, tmp_path: Path) -> None:
    path = small_disk / "hotline.db"
    upgrade(f"sqlite:///{path}")
    r = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    _assert_refused_once(_refusal(f"sqlite:///{path}", tmp_path), str(path), "只读")
