"""bench/scale.py end to end on a small throw-away database: it seeds, starts a real server, times every request
and prints one line per request with its ratio to /healthz (CI runs it as a smoke test; the numbers are not judged)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import PG_ADMIN_URL, ROOT

# every request the bench times, by the key its line starts with (cursor: only when the list takes a cursor)
KEYS = (
    "healthz",
    "list",
    "list_office",
    "list_own",
    "overdue",
    "search",
    "pending",
    "deep_page",
    "ticket",
    "queue",
    "report_month",
    "report_year",
    "export_csv",
    "export_xlsx",
)
NUMBER = r"\s+(\d+\.\d|nan)"
TIMEOUT_SECONDS = 150


@pytest.fixture
def scratch_db() -> Iterator[str]:
    """A database of the test's own on the PostgreSQL server, dropped afterwards."""
    import psycopg

    try:
        admin: Any = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:  # no server can be had here: say so instead of failing
        pytest.skip(f"PostgreSQL 不可用（{PG_ADMIN_URL}）：{exc}")
    name = f"hotline_scale_smoke_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    """The bench in a process group of its own; on timeout SIGTERM (it stops its server), then SIGKILL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "scale.py"), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        pytest.fail(f"bench/scale.py 超过 {TIMEOUT_SECONDS} 秒：\n{out}\n{err[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.real_clock
def test_scale_bench_times_every_request(scratch_db: str) -> None:
    done = _run(["--rows", "2000", "--repeat", "3", "--database", scratch_db])
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    out = done.stdout
    assert "工单 2,000 件" in out, out
    header = next(line for line in out.splitlines() if line.startswith("项目"))
    assert "p50/下限" in header and "p95/下限" in header, header
    keys = [*KEYS, *(() if "没有 cursor 参数" in out else ("cursor",))]
    for key in keys:
        line = next((line for line in out.splitlines() if line.split(" ", 1)[0] == key), None)
        assert line is not None, f"no line for {key}:\n{out}"
        assert "失败" not in line, line
        # p50, p95 and both divided by /healthz's p50
        assert re.search(NUMBER * 4, line), line
    floor = next(line for line in out.splitlines() if line.startswith("healthz "))
    assert re.search(r"\s1\.0\s", floor), floor  # /healthz against itself
    assert "峰值" in out  # the export's peak memory is stated


@pytest.mark.postgres
def test_a_seeded_database_is_not_seeded_again(scratch_db: str) -> None:
    code = (
        "import sys; sys.path.insert(0, 'bench'); import scale; from service.rules import load_rules;"
        "rules = load_rules('rules.yaml');"
        f"[scale.seed({scratch_db!r}, n, rules, reseed=False) for n in (300, 300, 200)]"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("写入 300 件工单") == 1, done.stdout
    assert done.stdout.count("不再写入") == 2, done.stdout
