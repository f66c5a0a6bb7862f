"""Load: the signed intake over real HTTP (uvicorn on loopback) with bounded concurrency for a bounded time, beside a
trivial endpoint on the same server (the framework floor), on SQLite and on PostgreSQL; plus the server's memory.

Targets (issue 7): ≥ 500 tickets/s with p99 ≤ 100 ms; ratio to the floor ≥ 0.3.

    .venv/bin/python bench/load.py [--seconds 10] [--concurrency 16] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from service.db import upgrade
from service.intake.signature import sign

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    json.loads(line)["text"] for line in (ROOT / "models/street/corpus.jsonl").read_text(encoding="utf-8").splitlines()
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _drive(base: str, seconds: float, concurrency: int, make: object) -> tuple[int, int, list[float]]:
    latencies: list[float] = []
    errors = 0
    end = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < end:
                method, path, body, headers = make()  # type: ignore[operator]
                start = time.perf_counter()
                try:
                    r = await client.request(method, path, content=body, headers=headers)
                    ok = r.status_code in (200, 201)
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - start) * 1000)
                errors += not ok

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), errors, latencies


def _ticket(secret: str) -> object:
    def make() -> tuple[str, str, bytes, dict[str, str]]:
        body = json.dumps(
            {
                "external_id": f"L{uuid.uuid4().hex}",
                "received_at": "2026-11-20T09:30:00+08:00",
                "channel": "电话",
                "content": TEXTS[int.from_bytes(os.urandom(2), "big") % len(TEXTS)],
                "address": f"上南二村{int.from_bytes(os.urandom(2), 'big') % 300}号",
                "caller_phone": "13800001111",
                "kind": "投诉",
            },
            ensure_ascii=False,
        ).encode()
        stamp = str(int(time.time()))
        return (
            "POST",
            "/api/v1/hotline/tickets",
            body,
            {
                "X-Hotline-Timestamp": stamp,
                "X-Hotline-Signature": sign(secret, stamp, body),
                "Content-Type": "application/json",
            },
        )

    return make


def _floor() -> tuple[str, str, bytes, dict[str, str]]:
    return "GET", "/healthz", b"", {}


def _summary(name: str, seconds: float, result: tuple[int, int, list[float]]) -> float:
    count, errors, latencies = result
    latencies.sort()
    rate = (count - errors) / seconds
    p50 = statistics.median(latencies) if latencies else 0.0
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else 0.0
    print(f"  {name:<16} {rate:8.0f} 次/秒  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  错误 {errors}")
    return rate


def run(label: str, url: str, seconds: float, concurrency: int) -> None:
    secret = secrets.token_urlsafe(24)
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(
        {
            "HOTLINE_DATABASE_URL": url,
            "HOTLINE_WEBHOOK_SECRET": secret,
            "HOTLINE_SCHEDULER": "0",
            "HOTLINE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        idle = _rss_mb(server.pid)
        print(f"{label}（并发 {concurrency}，每项 {seconds:g} 秒；服务进程内存 {idle:.0f} MB，模型已加载）")
        floor = _summary("框架下限 /healthz", seconds, asyncio.run(_drive(base, seconds, concurrency, _floor)))
        tickets = _summary("签名接收工单", seconds, asyncio.run(_drive(base, seconds, concurrency, _ticket(secret))))
        print(f"  工单 / 下限 = {tickets / floor:.2f}；负载后内存 {_rss_mb(server.pid):.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'load.db'}"
        upgrade(url)
        run("SQLite", url, args.seconds, args.concurrency)
    name = f"hotline_load_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(args.pg, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        pg_url = f"{args.pg.rsplit('/', 1)[0]}/{name}"
        upgrade(pg_url)
        run("PostgreSQL", pg_url, args.seconds, args.concurrency)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
