"""Retention at scale: seed N synthetic tickets with their timelines (bench/report_scale.py's generator) into a
temporary PostgreSQL database and SQLite, make them old, and time `hotline archive` (write the monthly gzip files,
then delete) against a plain read of the same rows in the same run; print the ratio and each step's peak memory.

    .venv/bin/python bench/retention.py [--rows 200000] [--pg postgresql://postgres@127.0.0.1:5432/test] [--skip-sqlite]

Each measurement runs in a child process of its own, so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report_scale import YEAR_START, seed_postgres, seed_sqlite, temporary_database  # noqa: E402
from service.db import make_engine, upgrade  # noqa: E402
from service.ops.retention import BATCH, archive  # noqa: E402
from service.rules import RetentionRules, load_rules  # noqa: E402

# five years after the synthetic year: every closed ticket is past three years
NOW = YEAR_START + dt.timedelta(days=5 * 365)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _read_all(url: str, out: Any) -> None:
    """The floor: read every event row once, a batch at a time, and do nothing with it."""
    engine = make_engine(url)
    start, count, after = time.perf_counter(), 0, 0
    with engine.connect() as conn:
        while True:
            rows = conn.execute(
                text("SELECT * FROM ticket_event WHERE id > :a ORDER BY id LIMIT :n"), {"a": after, "n": BATCH}
            ).all()
            if not rows:
                break
            count, after = count + len(rows), rows[-1][0]
    engine.dispose()
    out.put((time.perf_counter() - start, count, _peak_mb()))


def _archive(url: str, directory: str, out: Any) -> None:
    engine = make_engine(url)
    start = time.perf_counter()
    done = archive(engine=engine, rules=RetentionRules(), directory=Path(directory), now=NOW)
    engine.dispose()
    out.put((time.perf_counter() - start, done.events, _peak_mb()))


def _child(target: Any, *args: Any) -> tuple[float, int, float]:
    queue: Any = multiprocessing.get_context("spawn").Queue()
    process = multiprocessing.get_context("spawn").Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result  # type: ignore[no-any-return]


def measure(name: str, url: str) -> None:
    read_s, events, read_mb = _child(_read_all, url)
    with tempfile.TemporaryDirectory() as tmp:
        archive_s, archived, archive_mb = _child(_archive, url, tmp)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
    print(
        f"{name:<10} 流转记录 {events} 条，归档 {archived} 条：归档 {archive_s:6.2f} s，只读扫描 {read_s:6.2f} s，"
        f"归档/扫描 = {archive_s / read_s:4.1f}；峰值内存 归档 {archive_mb:.0f} MB、扫描 {read_mb:.0f} MB；"
        f"归档文件 {size:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    rules = load_rules(ROOT / "rules.yaml")
    with temporary_database(args.pg, "hotline_retention") as pg_url:
        upgrade(pg_url)
        seed_postgres(pg_url, args.rows, rules)
        measure("PostgreSQL", pg_url)
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(url)
            seed_sqlite(Path(tmp) / "bench.db", args.rows, rules)
            measure("SQLite", url)


if __name__ == "__main__":
    main()
