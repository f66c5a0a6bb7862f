"""Load: the signed intake over real HTTP (uvicorn on loopback) with bounded concurrency for a bounded time, beside a
trivial endpoint on the same server (the framework floor), on SQLite and on PostgreSQL; plus the server's memory.

Targets (issue 7): ≥ 500 tickets/s with p99 ≤ 100 ms; ratio to the floor ≥ 0.3.

    .venv/bin/python bench/load.py [--seconds 10] [--concurrency 32] [--workers 1] [--pg postgresql://postgres@127.0.0.1:5432/test]

The client shares the machine's two cores with the server (and PostgreSQL), so it is kept lean: raw HTTP/1.1
keep-alive connections on uvloop, requests signed before the clock starts. After each run the database is checked:
every 201 is one stored ticket, nothing lost and nothing twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import uvloop
from sqlalchemy import create_engine, text

from service.db import normalize_url, upgrade
from service.signing import sign

ROOT = Path(__file__).resolve().parents[1]
_KNOBS = ("HOTLINE_INTAKE_",)
TEXTS = [
    json.loads(line)["text"] for line in (ROOT / "models/street/corpus.jsonl").read_text(encoding="utf-8").splitlines()
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree(pid: int) -> list[int]:
    """The server and its worker processes (uvicorn --workers forks them)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(c) for c in children.read_text().split()] if children.exists() else []
    return [pid, *(p for kid in kids for p in _tree(kid))]


def _rss_mb(pid: int) -> float:
    total = 0.0
    for p in _tree(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the server's processes so far."""
    ticks = 0
    for p in _tree(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0
    cpu_seconds: float = 0.0  # the server's CPU during the run

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.statuses.items() if 200 <= code < 300)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _drive(port: int, seconds: float, concurrency: int, requests: list[bytes]) -> Result:
    result = Result(seconds=seconds)
    cursor = iter(requests)
    end = time.monotonic() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < end:
                raw = next(cursor, None)
                if raw is None:
                    raise RuntimeError("请求池用完：加大 --pool")
                start = time.perf_counter()
                try:
                    status = await _request(reader, writer, raw)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    result.failures += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                result.latencies_ms.append((time.perf_counter() - start) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


def _measured(pid: int, port: int, seconds: float, concurrency: int, requests: list[bytes]) -> Result:
    """One run, with the server's CPU spent during it."""
    before = _cpu_seconds(pid)
    result = asyncio.run(_drive(port, seconds, concurrency, requests))
    result.cpu_seconds = _cpu_seconds(pid) - before
    return result


def _raw(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def signed_tickets(secret: str, count: int, seed: int = 0) -> list[bytes]:
    """Distinct realistic deliveries (corpus texts, 300 buildings), signed now; valid for the replay window."""
    rng = random.Random(seed)
    stamp = str(int(time.time()))
    out = []
    for _ in range(count):
        body = json.dumps(
            {
                "external_id": f"L{uuid.uuid4().hex}",
                "received_at": "2026-11-20T09:30:00+08:00",
                "channel": "电话",
                "content": rng.choice(TEXTS),
                "address": f"上南二村{rng.randrange(300)}号",
                "caller_phone": "13800001111",
                "kind": "投诉",
            },
            ensure_ascii=False,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hotline-Timestamp": stamp,
            "X-Hotline-Signature": sign(secret, stamp, body),
        }
        out.append(_raw("POST", "/api/v1/hotline/tickets", body, headers))
    return out


def _line(name: str, r: Result) -> float:
    rate = r.ok / r.seconds
    errors = r.failures + sum(n for code, n in r.statuses.items() if not 200 <= code < 300)
    print(
        f"  {name:<18} {rate:8.0f} 次/秒  p50 {r.percentile(0.5):6.1f} ms  p99 {r.percentile(0.99):6.1f} ms"
        f"  服务端 CPU {r.cpu_seconds / max(r.ok, 1) * 1e6:5.0f} µs/次"
        f"  错误 {errors}  状态 {dict(sorted(r.statuses.items()))}"
    )
    return rate


def _stored(url: str) -> tuple[int, int]:
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        tickets = conn.execute(text("SELECT count(*) FROM ticket")).scalar_one()
        distinct = conn.execute(text("SELECT count(DISTINCT external_id) FROM ticket")).scalar_one()
    engine.dispose()
    return int(tickets), int(distinct)


def run(label: str, url: str, seconds: float, concurrency: int, workers: int) -> dict[str, float]:
    secret = secrets.token_urlsafe(24)
    port = _port()
    # the tuning knobs (_KNOBS) pass through to the server
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_") or k.startswith(_KNOBS)}
    env.update(
        {
            "HOTLINE_DATABASE_URL": url,
            "HOTLINE_WEBHOOK_SECRET": secret,
            "HOTLINE_SCHEDULER": "0",
            "HOTLINE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        idle = _rss_mb(server.pid)
        print(f"{label}（{workers} 个服务进程，并发 {concurrency}，每项 {seconds:g} 秒）")
        print(f"  服务进程内存（模型已加载）{idle:.0f} MB")
        floor = _measured(server.pid, port, seconds, concurrency, [_raw("GET", "/healthz")] * int(seconds * 20000))
        tickets = _measured(server.pid, port, seconds, concurrency, signed_tickets(secret, int(seconds * 3000)))
        floor_rate = _line("框架下限 /healthz", floor)
        ticket_rate = _line("签名接收工单", tickets)
        stored, distinct = _stored(url)
        created = tickets.statuses.get(201, 0)
        print(f"  工单 / 下限 = {ticket_rate / floor_rate:.2f}；负载后内存 {_rss_mb(server.pid):.0f} MB")
        print(f"  核对：201 应答 {created} 次，库中工单 {stored} 件（外部编号不重复 {distinct}）")
        if stored != created or distinct != stored:
            print("  ✗ 应答与入库不一致")
        return {
            "tickets_per_s": ticket_rate,
            "p99_ms": tickets.percentile(0.99),
            "ratio": ticket_rate / floor_rate,
            "lost": created - stored,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.only != "postgres":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'load.db'}"
            upgrade(url)
            run("SQLite", url, args.seconds, args.concurrency, args.workers)
    if args.only == "sqlite":
        return
    name = f"hotline_load_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(args.pg, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        pg_url = f"{args.pg.rsplit('/', 1)[0]}/{name}"
        upgrade(pg_url)
        run("PostgreSQL", pg_url, args.seconds, args.concurrency, args.workers)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
