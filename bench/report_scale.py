"""Report at scale: seed a large district's year of tickets into PostgreSQL and SQLite, time the daily report for
one day and for one month, and print beside it a bare `SELECT … GROUP BY` count over the same rows (the floor).

Target (issue 6): ≤ 1 s for a month's report on PostgreSQL.

    .venv/bin/python bench/report_scale.py [--rows 1000000] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from sqlalchemy import func, select, text

from service.db import make_engine, upgrade
from service.reports.service import daily_report, period_bounds
from service.rules import load_rules
from service.tickets.models import Ticket

ROOT = Path(__file__).resolve().parents[1]
YEAR_START = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
TICKET_COLS = (
    "external_id",
    "received_at",
    "channel",
    "title",
    "content",
    "address",
    "caller_name",
    "caller_phone",
    "urgency",
    "kind",
    "source",
    "content_hash",
    "created_at",
    "updated_at",
    "state",
    "category",
    "office",
    "confidence",
    "needs_review",
    "review_reasons",
    "classification",
    "is_urgent",
    "dispatched_at",
    "first_contact_due",
    "resolve_due",
    "calendar_estimated",
    "contact_basis",
    "resolve_basis",
    "resolve_clock_start",
    "building_key",
    "hotspot",
    "recurrence",
    "accepted_at",
    "first_contact_at",
    "resolved_at",
    "resolve_result",
    "satisfaction",
    "followed_up_at",
    "reopen_count",
    "version",
)
ROUND_COLS = (
    "ticket_id",
    "round",
    "office",
    "category",
    "started_at",
    "first_contact_due",
    "first_contact_at",
    "resolve_due",
    "resolved_at",
    "resolve_result",
    "satisfaction",
    "followed_up_at",
    "ended_at",
    "reconstructed",
)
# the share of resolved tickets that a 重办 sent round again: their first round lives in ticket_round
REOPENED_SHARE = 0.03
EVENT_COLS = (
    "ticket_id",
    "at",
    "actor",
    "actor_role",
    "action",
    "from_state",
    "to_state",
    "office",
    "category",
    "data",
)


Seeded = tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _rows(n: int, rules: Any, seed: int = 0) -> Iterator[Seeded]:
    """Synthetic tickets over a year with realistic shapes (most resolved within days, some late or open)."""
    rng = np.random.default_rng(seed)
    cats = list(rules.categories)
    # tickets arrive over the year and are stored in arrival order, as the intake writes them
    offsets = np.sort(rng.uniform(0, 365 * 86400, n))
    created = YEAR_START + np.array(offsets, dtype="timedelta64[s]").astype(object)
    hours = rng.gamma(2.0, 40.0, n)
    # 动态清零 works: old tickets are all resolved; of the last 60 days' tickets, 7 % are still open
    recent = offsets > (365 - 60) * 86400
    resolved_mask = ~recent | (rng.random(n) < 0.93)
    results = rng.choice(list(rules.lifecycle.resolve_results), n, p=[0.8, 0.2])
    sat_levels = list(rules.lifecycle.satisfaction)
    sats = rng.choice(sat_levels, n, p=[0.7, 0.15, 0.1, 0.05])
    cat_idx = rng.integers(0, len(cats), n)
    reopened_mask = rng.random(n) < REOPENED_SHARE
    for i in range(n):
        c = YEAR_START + dt.timedelta(seconds=float((created[i] - YEAR_START).total_seconds()))
        cat = cats[cat_idx[i]]
        office = rules.categories[cat].office
        due = c + dt.timedelta(days=7)
        resolved = c + dt.timedelta(hours=float(hours[i])) if resolved_mask[i] else None
        state = "closed" if resolved else "accepted"
        rounds: list[tuple[Any, ...]] = []
        round_start = c
        if resolved and reopened_mask[i]:
            # resolved halfway, rated 不满意 an hour later and reopened: the second round ends at `resolved`
            first = c + (resolved - c) / 2
            round_start = first + dt.timedelta(hours=1)
            contact = (c + dt.timedelta(days=1), c + dt.timedelta(hours=5))
            rated = (results[i], "不满意", round_start, round_start, False)
            rounds.append((i + 1, 0, office, cat, c, *contact, due, first, *rated))
        row = (
            f"B{i}",
            c,
            "电话",
            "",
            "合成工单",
            "",
            "",
            "",
            "一般",
            "投诉",
            "hotline",
            uuid.UUID(int=i).hex,
            c,
            c,
            state,
            cat,
            office,
            0.9,
            False,
            "[]",
            "{}",
            False,
            c,
            c + dt.timedelta(days=1),
            due,
            False,
            "working",
            "working",
            round_start,
            None,
            False,
            False,
            c,
            c + dt.timedelta(hours=5),
            resolved,
            results[i] if resolved else None,
            sats[i] if resolved else None,
            resolved + dt.timedelta(days=1) if resolved else None,
            len(rounds),
            1,
        )
        events = [(i + 1, c, "system", "system", "classify", "received", "dispatched", office, cat, "{}")]
        if resolved:
            events.append((i + 1, resolved, "bench", "office", "resolve", "accepted", "resolved", office, cat, "{}"))
        yield row, events, rounds


def seed_postgres(url: str, n: int, rules: Any) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY ticket ({', '.join(TICKET_COLS)}) FROM STDIN") as copy:
            events: list[tuple[Any, ...]] = []
            rounds: list[tuple[Any, ...]] = []
            for row, evs, rds in _rows(n, rules):
                copy.write_row(row)
                events.extend(evs)
                rounds.extend(rds)
        with cur.copy(f"COPY ticket_round ({', '.join(ROUND_COLS)}) FROM STDIN") as copy:
            for rd in rounds:
                copy.write_row(rd)
        with cur.copy(f"COPY ticket_event ({', '.join(EVENT_COLS)}) FROM STDIN") as copy:
            for ev in events:
                copy.write_row(ev)
        conn.commit()
        cur.execute("ANALYZE")


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def seed_sqlite(path: Path, n: int, rules: Any) -> None:
    conn = sqlite3.connect(path)
    tickets, events, rounds = [], [], []
    for row, evs, rds in _rows(n, rules):
        tickets.append(tuple(_sqlite_value(v) for v in row))
        events.extend(tuple(_sqlite_value(v) for v in ev) for ev in evs)
        rounds.extend(tuple(_sqlite_value(v) for v in rd) for rd in rds)
    conn.executemany(
        f"INSERT INTO ticket ({', '.join(TICKET_COLS)}) VALUES ({', '.join('?' * len(TICKET_COLS))})", tickets
    )
    conn.executemany(
        f"INSERT INTO ticket_event ({', '.join(EVENT_COLS)}) VALUES ({', '.join('?' * len(EVENT_COLS))})", events
    )
    conn.executemany(
        f"INSERT INTO ticket_round ({', '.join(ROUND_COLS)}) VALUES ({', '.join('?' * len(ROUND_COLS))})", rounds
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def _best(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(name: str, url: str, rules: Any) -> None:
    engine = make_engine(url)
    # the latest full month and a day in it: what leaders read (older periods come from the stored snapshots)
    day = dt.date(2026, 9, 15)
    month = (dt.date(2026, 9, 1), dt.date(2026, 9, 30))
    lo, hi = period_bounds(*month, ZoneInfo(rules.timezone))
    floor_query = (
        select(Ticket.office, Ticket.category, func.count())
        .where(Ticket.created_at >= lo, Ticket.created_at < hi)
        .group_by(Ticket.office, Ticket.category)
    )
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM ticket")).scalar_one()
        t_day = _best(lambda: daily_report(conn, rules, day))
        t_month = _best(lambda: daily_report(conn, rules, *month))
        t_floor = _best(lambda: conn.execute(floor_query).all())
    print(
        f"{name:<10} {rows:>9} 行  日报(1天) {t_day:6.3f} s  月报(30天) {t_month:6.3f} s  "
        f"裸 GROUP BY 计数 {t_floor:6.3f} s  月报/下限 = {t_month / t_floor:5.1f}"
    )
    engine.dispose()


@contextlib.contextmanager
def temporary_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A database of its own on the server `admin_url` names, dropped afterwards (also when the run fails)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(admin_url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    rules = load_rules(ROOT / "rules.yaml")
    with temporary_database(args.pg, "hotline_bench") as pg_url:
        upgrade(pg_url)
        start = time.perf_counter()
        seed_postgres(pg_url, args.rows, rules)
        print(f"PostgreSQL：写入 {args.rows} 条工单用时 {time.perf_counter() - start:.0f} s")
        measure("PostgreSQL", pg_url, rules)
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(url)
            start = time.perf_counter()
            seed_sqlite(Path(tmp) / "bench.db", args.rows, rules)
            print(f"SQLite：写入 {args.rows} 条工单用时 {time.perf_counter() - start:.0f} s")
            measure("SQLite", url, rules)


if __name__ == "__main__":
    main()
