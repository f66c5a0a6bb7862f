"""Scale: years of tickets stay fast. Seed millions of tickets into PostgreSQL, start a real server (`hotline serve`,
uvicorn on loopback) on them, and time what people open all day — the ticket lists, search, the dispatcher's queue,
one ticket, the month's and the year's report — and one export of the ticket list at the largest size it allows,
each beside `/healthz` on the same server in the same run (the framework floor).

Targets: lists, search and the queue p95 ≤ 100 ms; one ticket p95 ≤ 20 ms; the month's report p95 ≤ 300 ms, the
year's ≤ 1000 ms; the export's time and the server's peak memory (RSS) are stated, not judged.

The requests: the ticket list's first page as the dispatcher, filtered by office, an office user's own list,
?overdue=true, ?q=群租, ?state=pending_review, page 200 (the deepest a page number reaches: 10,000 rows; a deeper
one is refused with a pointer to the cursor), the next pages by `cursor` (only when the running
server's /openapi.json shows the list takes one), one ticket, the queue page /ui/queue (a web session through the
login form), the daily report over the last whole month and over the 365 days up to it, and the ticket list's
CSV and XLSX export (/ui/export/tickets) of the newest whole days that fit its row limit.

    .venv/bin/python bench/scale.py [--rows 5000000] [--repeat 21] [--database hotline_scale] [--reseed] [--check]

The tickets come from bench/report_scale.py's generator (its `_rows`: arrival order and times, resolve times and
results, satisfaction, the open share, 重办 rounds), stretched evenly to three years that end at the time of seeding,
and made realistic by a thin wrapper here: a few busy buildings take most tickets (Zipf over the estates and roads
of places.grids), 群租, 垃圾 and 违建 outnumber the rest (so 平安办 and 管理办 are the busy offices), texts from the
street corpus, only the last 60 days' tickets still open (spread over 待审核 / 已派单 / 已签收 / 已先行联系), a
timeline of 2–6 events per ticket, and 1 % of tickets with an assisting office (联勤联动). Each ticket's text-search
entry is written with it (worked out by one process per core). Seeding commits every
50,000 tickets with the secondary indexes dropped (rebuilt at the end, then VACUUM ANALYZE) and resumes an
interrupted run; then the report rollup is built for every day from the first ticket's to today, as the scheduler
would in the background (COPY marks no day). A database that already holds ≥ --rows tickets is used as it is
(--reseed empties it and starts again). Users (a dispatcher, an admin, a viewer, one user per office) get fresh
tokens on every run.

Each request is sent once to warm up, then --repeat times one after another over one keep-alive connection
(httpx); the table gives p50 and p95 in ms and both divided by /healthz's p50. The export is timed once per
format while /proc/<pid>/status of the server is sampled (VmHWM reset through clear_refs first) for its peak RSS.
The exit status is 0 whatever the numbers (it reports, it doesn't gate) unless --check: then 1 when a target is
missed or a request failed.

The database is a name on the --pg server (created if missing) or a full URL. Never point it at a database other
work uses: --reseed and an unfinished seed empty its ticket tables.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import psycopg
from load import _KNOBS, _port, _rss_mb, _tree
from report_scale import EVENT_COLS, ROUND_COLS, TICKET_COLS, YEAR_START, _rows
from sqlmodel import Session

from service.auth.service import create_user, rotate_token
from service.db import make_engine, upgrade
from service.deadlines.service import DeadlinePolicy
from service.errors import ConflictError
from service.flows.warn_instants import stamp as stamp_warn_instants
from service.places.address import building_key
from service.reports.rollup import refresh
from service.rules import ServiceRules, load_rules
from service.tickets import search
from service.tickets.service import MAX_OFFSET

ROOT = Path(__file__).resolve().parents[1]
SERVER = "postgresql://postgres@127.0.0.1:5432"
CHUNK = 50_000

# report_scale's year (365 days from YEAR_START) is stretched evenly over three years that end at the time of
# seeding; each ticket moves as a whole, so its durations (resolve time, deadlines) stay real. Its tickets left open
# are spread over the last 60 days × 3 then: those older than 60 days are resolved here (动态清零).
GEN_DAYS = 365
SPAN = dt.timedelta(days=3 * 365)
RECENT = dt.timedelta(days=60)

# the street's mix: 群租, 垃圾 and 违建 dominate; the rest share what is left
CATEGORY_WEIGHTS = {
    "group_renting": 20,
    "garbage": 15,
    "illegal_construction": 12,
    "nuisance": 10,
    "parking": 10,
    "property": 8,
    "street_vending": 6,
    "road_facility": 5,
    "illegal_ads": 4,
    "greenery": 3,
    "fire_safety": 4,
    "other": 3,
}
BUILDINGS_PER_NAME = 60  # 上南二村1号 … 上南二村60号 for each estate or road named under places.grids
BUILDING_ZIPF = 0.6  # the k-th busiest building takes ∝ 1/k^0.6: the busiest ~2 %, the ten busiest ~10 %
OPEN_MIX = {"pending_review": 0.1, "dispatched": 0.25, "accepted": 0.3, "contacted": 0.35}
ASSIST_SHARE = 0.01
EXTRA_TICKET_COLS = ("id", "grid", "clock_start")  # what report_scale leaves to the columns' defaults
ASSIST_COLS = ("ticket_id", "office", "asked_by", "asked_at", "ask_note")
SEED_TABLES = ("ticket", "ticket_event", "ticket_round", "ticket_assist")

# a page number reaches MAX_OFFSET rows deep (service.tickets.service); deeper pages are read by cursor
DEEPEST_PAGE = MAX_OFFSET // 50
# lists, search and the queue; one ticket; the month's and the year's report (p95, ms)
TARGET_LIST, TARGET_ONE, TARGET_MONTH, TARGET_YEAR = 100.0, 20.0, 300.0, 1000.0


# Seeding ---------------------------------------------------------------------------------------------------------


def _stretched(created: dt.datetime, end: dt.datetime) -> dt.datetime:
    """Where a ticket report_scale made at `created` lands on the three years that end at `end`."""
    return end - SPAN + (created - YEAR_START) * (SPAN / dt.timedelta(days=GEN_DAYS))


def _buildings(rules: ServiceRules) -> list[tuple[str, str | None, str]]:
    """(address without the room, building key, 片区) for every building of the street's estates and roads."""
    out = []
    for grid, names in rules.places.grids.items():
        for name in names:
            for number in range(1, BUILDINGS_PER_NAME + 1):
                address = f"{name}{number}号"
                out.append((address, building_key(address), grid))
    return out


def _corpus() -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    for line in (ROOT / "models/street/corpus.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        texts.setdefault(row["label"], []).append(row["text"])
    return texts


def _shift(values: tuple[Any, ...], by: dt.timedelta) -> list[Any]:
    return [v + by if isinstance(v, dt.datetime) else v for v in values]


Seeded = tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def scaled_rows(n: int, rules: ServiceRules, end: dt.datetime, seed: int = 0) -> Iterator[Seeded]:
    """report_scale's tickets over three years up to `end`, skewed: (ticket, events, rounds, assists) per ticket,
    the ticket's columns TICKET_COLS + EXTRA_TICKET_COLS, its id i + 1."""
    rng = np.random.default_rng(seed + 1)
    cats = list(rules.categories)
    weights = np.array([CATEGORY_WEIGHTS.get(c, 3) for c in cats], dtype=float)
    cat_pick = rng.choice(len(cats), n, p=weights / weights.sum())
    buildings = _buildings(rules)
    popularity = 1.0 / np.arange(1, len(buildings) + 1) ** BUILDING_ZIPF
    order = rng.permutation(len(buildings))  # the busiest buildings are anywhere in the street
    building_pick = order[rng.choice(len(buildings), n, p=popularity / popularity.sum())]
    busy = set(order[:20].tolist())
    rooms = rng.integers(1, 18, n) * 100 + rng.integers(1, 5, n)
    open_states = list(OPEN_MIX)
    open_pick = rng.choice(len(open_states), n, p=list(OPEN_MIX.values()))
    pick = rng.integers(0, 1 << 30, n)
    assisted = rng.random(n) < ASSIST_SHARE
    hot = rng.random(n)
    texts = _corpus()
    offices = list(rules.offices)
    t, r = ({c: i for i, c in enumerate(cols)} for cols in (TICKET_COLS, ROUND_COLS))
    late_hours = rng.gamma(2.0, 40.0, n)  # report_scale's resolve times
    results, satisfaction = list(rules.lifecycle.resolve_results), list(rules.lifecycle.satisfaction)
    for i, (gen_row, _, gen_rounds) in enumerate(_rows(n, rules, seed)):
        created = gen_row[t["created_at"]]
        by = _stretched(created, end) - created
        row = _shift(gen_row, by)
        rounds = [_shift(rd, by) for rd in gen_rounds]
        c = row[t["created_at"]]
        tid = i + 1
        cat = cats[cat_pick[i]]
        office = rules.categories[cat].office
        address, key, grid = buildings[building_pick[i]]
        pool = texts.get(cat) or texts["other"]
        row[t["category"]], row[t["office"]] = cat, office
        row[t["title"]] = rules.categories[cat].name
        row[t["content"]] = pool[pick[i] % len(pool)]
        row[t["address"]] = f"{address}{rooms[i]}室"
        row[t["building_key"]] = key
        row[t["hotspot"]] = bool(building_pick[i] in busy and hot[i] < 0.3)
        row[t["recurrence"]] = bool(hot[i] > 0.98)
        resolved = row[t["resolved_at"]]
        if resolved is not None and resolved > end:  # would be resolved after the seed's "now": still open
            resolved = None
            for col in ("resolved_at", "resolve_result", "satisfaction", "followed_up_at"):
                row[t[col]] = None
            row[t["reopen_count"]], row[t["resolve_clock_start"]] = 0, c
            rounds = []
        elif resolved is None and c < end - RECENT:  # left open more than 60 days ago: resolved since, as the rest
            resolved = row[t["resolved_at"]] = c + dt.timedelta(hours=float(late_hours[i]))
            row[t["resolve_result"]], row[t["satisfaction"]] = results[0], satisfaction[0]
            row[t["followed_up_at"]] = resolved + dt.timedelta(days=1)
        state = "closed"
        if resolved is None:
            state = open_states[open_pick[i]]
            row[t["needs_review"]] = state == "pending_review"
            if state == "pending_review":
                row[t["dispatched_at"]] = None
            if state in ("pending_review", "dispatched"):
                row[t["accepted_at"]] = None
            if state != "contacted":
                row[t["first_contact_at"]] = None
        elif row[t["followed_up_at"]] > end:  # resolved, not yet rated
            state = "resolved"
            row[t["followed_up_at"]] = row[t["satisfaction"]] = None
        row[t["state"]] = state

        def event(at: dt.datetime, actor: str, role: str, action: str, before: str | None, after: str) -> tuple:
            return (tid, at, actor, role, action, before, after, office, cat, "{}")  # noqa: B023

        first = "pending_review" if state == "pending_review" else "dispatched"
        events = [event(c, "system", "system", "classify", "received", first)]
        if row[t["accepted_at"]] is not None:
            events.append(event(c + dt.timedelta(minutes=10), "bench", "office", "accept", "dispatched", "accepted"))
        if row[t["first_contact_at"]] is not None:
            events.append(event(row[t["first_contact_at"]], "bench", "office", "contact", "accepted", "contacted"))
        if resolved is not None:
            events.append(event(resolved, "bench", "office", "resolve", "contacted", "resolved"))
        if row[t["followed_up_at"]] is not None:
            events.append(event(row[t["followed_up_at"]], "bench", "dispatcher", "follow-up", "resolved", "closed"))
        for rd in rounds:  # a round rated 不满意 at its follow-up, and so reopened (重办)
            rd[r["office"]], rd[r["category"]] = office, cat
            events.append(event(rd[r["followed_up_at"]], "bench", "dispatcher", "follow-up", "resolved", "reopened"))
        events.sort(key=lambda ev: ev[1])  # the timeline reads in id order
        assists = []
        if assisted[i]:
            helper = offices[(offices.index(office) + 1 + pick[i] % (len(offices) - 1)) % len(offices)]
            assists.append((tid, helper, "bench", c + dt.timedelta(hours=1), "请协助处置"))
        yield (*row, tid, grid, c), events, [tuple(rd) for rd in rounds], assists


def _admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def database_url(value: str, server: str) -> str:
    return value if "://" in value else f"{server.rstrip('/')}/{value}"


def ensure_database(url: str) -> None:
    name = url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(_admin_url(url), autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            admin.execute(f'CREATE DATABASE "{name}"')


_STATE_DDL = """CREATE TABLE IF NOT EXISTS bench_scale_seed (
    one int PRIMARY KEY DEFAULT 1 CHECK (one = 1),
    rows bigint NOT NULL, seed int NOT NULL, end_at timestamptz NOT NULL, done bigint NOT NULL,
    finished boolean NOT NULL DEFAULT false, indexes jsonb NOT NULL DEFAULT '[]')"""


def _present(cur: psycopg.Cursor[Any], names: list[str]) -> list[str]:
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)", (names,))
    present = {row[0] for row in cur.fetchall()}
    return [name for name in names if name in present]


def _progress(what: str) -> Callable[[int, int], None]:
    shown = [0]

    def show(done: int, total: int) -> None:
        if done - shown[0] >= CHUNK or done == total:
            shown[0] = done
            print(f"\r  {what} {done:,} / {total:,} 件", end="", file=sys.stderr, flush=True)

    return show


def _index_text(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        search.backfill(conn, progress=_progress("文字搜索索引"))
    print(file=sys.stderr)
    engine.dispose()


def _drop_indexes(cur: psycopg.Cursor[Any], tables: list[str], saved: list[list[str]]) -> list[list[str]]:
    """Drop the secondary indexes of the seeded tables (not those behind a constraint); their definitions are kept
    in bench_scale_seed until they are rebuilt, so an interrupted seed still gets them back."""
    cur.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s)"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        (tables,),
    )
    found = [[name, definition] for name, definition in cur.fetchall()]
    for name, _ in found:
        cur.execute(f'DROP INDEX "{name}"')
    known = {name for name, _ in saved}
    everything = saved + [pair for pair in found if pair[0] not in known]
    cur.execute("UPDATE bench_scale_seed SET indexes = %s", (json.dumps(everything),))
    return everything


def build_rollup(url: str, rules: ServiceRules) -> None:
    """Build the report rollup's days the seed left unbuilt (COPY marks no day), as the scheduler's refresh does in
    the background, but all at once; resumes where it stopped."""
    engine = make_engine(url)
    began, built = time.perf_counter(), 0
    while done := refresh(engine, rules, now=dt.datetime.now(dt.UTC), backfill=92).backfilled:
        built += done
        print(f"\r  报表汇总 {built:,} 天", end="", file=sys.stderr, flush=True)
    engine.dispose()
    if built:
        print(file=sys.stderr)
        print(f"报表汇总 {built:,} 天 {time.perf_counter() - began:.0f} s")


def stamp_queue(url: str, rules: ServiceRules) -> None:
    """Stamp the open tickets' 临期 instants (COPY leaves them empty), as the sweep job does in the background."""
    engine = make_engine(url)
    began = time.perf_counter()
    done = stamp_warn_instants(engine, DeadlinePolicy(rules))
    engine.dispose()
    if done:
        print(f"派单审核队列：{done:,} 件未办结工单的临期时刻 {time.perf_counter() - began:.0f} s")


def seed(url: str, n: int, rules: ServiceRules, reseed: bool) -> None:
    """N tickets in the database, as described at the top; nothing to do when it holds ≥ N already."""
    upgrade(url)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(_STATE_DDL)
        cur.execute("SELECT rows, seed, end_at, done, finished, indexes FROM bench_scale_seed")
        state = cur.fetchone()
        cur.execute("SELECT count(*) FROM ticket")
        have = int(cur.fetchone()[0])  # type: ignore[index]
        conn.commit()
        unfinished = state is not None and not state[4]
        if not reseed and not unfinished and have >= n:
            print(f"数据库已有 {have:,} 件工单（≥ {n:,}），不再写入（--reseed 重新写入）")
            return
        saved: list[list[str]] = list(state[5]) if state else []
        if not reseed and unfinished and state is not None and state[0] == n and state[3] == have:
            start, end = int(state[3]), state[2]
            print(f"继续上次未完成的写入：已有 {start:,} / {n:,} 件")
        else:
            start, end = 0, dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
            cur.execute("TRUNCATE ticket, report_rollup, report_rollup_day, report_dirty RESTART IDENTITY CASCADE")
            cur.execute("DELETE FROM bench_scale_seed")
            cur.execute(
                "INSERT INTO bench_scale_seed (rows, seed, end_at, done, indexes) VALUES (%s, 0, %s, 0, %s)",
                (n, end, json.dumps(saved)),
            )
        tables = _present(cur, list(SEED_TABLES))
        # the text-search entries go in with their tickets, worked out by a process per core; the service's
        # backfill then checks that none is missing
        searched = _present(cur, [search.SEARCH_TABLE])
        saved = _drop_indexes(cur, tables + searched, saved)
        conn.commit()
        try:
            # the rows are consistent by construction: skip the per-row foreign-key triggers (superuser only)
            cur.execute("SET session_replication_role = replica")
        except psycopg.Error:
            conn.rollback()
        began = time.perf_counter()
        shown = _progress("写入工单")
        chunk: list[Seeded] = []
        with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
            for i, seeded in enumerate(scaled_rows(n, rules, end)):
                if i < start:
                    continue
                chunk.append(seeded)
                if len(chunk) == CHUNK or i == n - 1:
                    searched_rows = [_searched(item[0]) for item in chunk] if searched else None
                    vectors = pool.map(_vector, searched_rows, chunksize=1000) if searched_rows else None
                    _copy_chunk(cur, chunk, "ticket_assist" in tables, vectors)
                    cur.execute("UPDATE bench_scale_seed SET done = %s", (i + 1,))
                    conn.commit()
                    chunk = []
                    shown(i + 1, n)
        print(file=sys.stderr)
        cur.execute("SET session_replication_role = DEFAULT")
        conn.commit()
        loaded = time.perf_counter() - began
        if searched:
            _index_text(url)
        cur.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in saved:
            cur.execute(definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
        for table in tables:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) FROM {table}"
            )
        cur.execute("UPDATE bench_scale_seed SET finished = true, indexes = '[]'")
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        # what autovacuum does to a table in steady use: statistics and the visibility map (index-only scans)
        conn.execute(f"VACUUM (ANALYZE) {', '.join(tables + searched)}")
    rebuilt = time.perf_counter() - began - loaded
    what = "文字搜索索引、" if searched else ""
    print(f"写入 {n - start:,} 件工单 {loaded:.0f} s，{what}重建索引与 VACUUM ANALYZE {rebuilt:.0f} s")


_SEARCHED = ("title", "content", "address", "external_id")


def _searched(row: tuple[Any, ...]) -> dict[str, Any]:
    return {c: row[TICKET_COLS.index(c)] for c in _SEARCHED}


# the corpus repeats its texts: each text's terms are worked out once per process
_terms = functools.lru_cache(maxsize=100_000)(lambda *texts: tuple(search.terms(*texts)))


def _vector(row: dict[str, Any]) -> str:
    return search.pg_vector(row, terms_of=_terms)


def _copy_chunk(cur: psycopg.Cursor[Any], chunk: list[Seeded], assists: bool, vectors: list[str] | None) -> None:
    """One chunk's tickets and what hangs off them; the text-search entries too (what intake writes), when given."""
    if vectors is not None:
        with cur.copy(f"COPY {search.SEARCH_TABLE} (ticket_id, terms) FROM STDIN") as copy:
            for (row, _, _, _), vector in zip(chunk, vectors, strict=True):
                copy.write_row((row[-3], vector))
    with cur.copy(f"COPY ticket ({', '.join(TICKET_COLS + EXTRA_TICKET_COLS)}) FROM STDIN") as copy:
        for row, _, _, _ in chunk:
            copy.write_row(row)
    with cur.copy(f"COPY ticket_event ({', '.join(EVENT_COLS)}) FROM STDIN") as copy:
        for _, events, _, _ in chunk:
            for ev in events:
                copy.write_row(ev)
    with cur.copy(f"COPY ticket_round ({', '.join(ROUND_COLS)}) FROM STDIN") as copy:
        for _, _, rounds, _ in chunk:
            for rd in rounds:
                copy.write_row(rd)
    if assists:
        with cur.copy(f"COPY ticket_assist ({', '.join(ASSIST_COLS)}) FROM STDIN") as copy:
            for _, _, _, helpers in chunk:
                for a in helpers:
                    copy.write_row(a)


def tokens(url: str, rules: ServiceRules) -> dict[str, str]:
    """A fresh token for each bench user (created on first use): dispatcher, admin, viewer and one per office."""
    engine = make_engine(url)
    wanted = [("dispatcher", None), ("admin", None), ("viewer", None), *(("office", o) for o in rules.offices)]
    out = {}
    with Session(engine) as session:
        for role, office in wanted:
            name = f"bench-{office or role}"
            try:
                _, token = create_user(session=session, rules=rules, name=name, role=role, office=office)
            except ConflictError:
                _, token = rotate_token(session=session, name=name)
            out[office or role] = token
    engine.dispose()
    return out


# The server ------------------------------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_server(url: str, workers: int, scratch: Path) -> Server:
    """`hotline serve` on a free loopback port, in a process group of its own (see stop_server), as bench/load.py
    starts it: its environment without other HOTLINE_ settings than the tuning knobs, a random webhook secret, no
    scheduler (its sweeps would write while we time); photos and models under `scratch`, not in the checkout."""
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_") or k.startswith(_KNOBS)}
    env.update(
        {
            "HOTLINE_DATABASE_URL": url,
            "HOTLINE_WEBHOOK_SECRET": os.urandom(24).hex(),
            "HOTLINE_SCHEDULER": "0",
            "HOTLINE_LOG_LEVEL": "WARNING",
            "HOTLINE_PHOTO_DIR": str(scratch / "photos"),
            "HOTLINE_MODELS_ROOT": str(scratch / "models"),
            "PYTHONPATH": str(ROOT),
        }
    )
    log = scratch / "server.log"
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(process, port, log)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"服务进程退出（{process.returncode}）：\n{_tail(log)}")
            try:
                if httpx.get(f"{server.base}/readyz", timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"服务 180 秒内未就绪：\n{_tail(log)}")
    except BaseException:  # not ready, or interrupted while waiting: the server goes too
        stop_server(server)
        raise


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


def stop_server(server: Server) -> None:
    """The whole process group: the server and any worker it forked."""
    try:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
    except ProcessLookupError:
        pass


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


class PeakRss:
    """The server's peak resident memory (all its processes) while a block runs: VmHWM after resetting it through
    /proc/<pid>/clear_refs, and VmRSS sampled every 10 ms in case the reset is not allowed."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before_mb = self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._reset = False

    def _rss(self) -> float:
        return sum(_status_kb(p, "VmRSS") for p in _tree(self.pid)) / 1024

    def _sample(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):  # a worker that just exited
                self.peak_mb = max(self.peak_mb, self._rss())
            self._stop.wait(0.01)

    def __enter__(self) -> PeakRss:
        try:
            for p in _tree(self.pid):
                Path(f"/proc/{p}/clear_refs").write_text("5")
            self._reset = True
        except OSError:
            self._reset = False
        self.before_mb = self.peak_mb = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._reset:
            self.peak_mb = max(self.peak_mb, sum(_status_kb(p, "VmHWM") for p in _tree(self.pid)) / 1024)


# Timing ----------------------------------------------------------------------------------------------------------


@dataclass
class Timing:
    key: str
    label: str
    target_ms: float | None
    samples_ms: list[float] = field(default_factory=list)
    note: str = ""
    error: str = ""

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples_ms)
        # nearest rank: p95 of 21 samples is the 20th
        return ordered[max(0, min(len(ordered) - 1, -(-int(q * 100) * len(ordered) // 100) - 1))] if ordered else 0.0

    @property
    def missed(self) -> bool:
        return bool(self.error) or (self.target_ms is not None and self.pct(0.95) > self.target_ms)


def _timed(request: Callable[[int], httpx.Response], repeat: int) -> list[float]:
    out = []
    for i in range(-1, repeat):  # -1: the warm-up, untimed
        start = time.perf_counter()
        response = request(i)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        if i >= 0:
            out.append(elapsed)
    return out


def _get(client: httpx.Client, path: str, **params: Any) -> Callable[[int], httpx.Response]:
    return lambda _: client.get(path, params=params or None)


def login(client: httpx.Client, token: str) -> None:
    """A browser session for the web pages: the login form, as tests/service/web/test_sessions.py `login`."""
    page = client.get("/ui/login")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    r = client.post("/ui/login", data={"token": token, "csrf": csrf}, follow_redirects=False)
    if r.status_code != 303 or r.headers.get("location") != "/ui/":
        raise RuntimeError(f"登录失败：HTTP {r.status_code} {r.headers.get('location')}")


def has_cursor(client: httpx.Client) -> bool:
    """Whether the ticket list takes a `cursor` query parameter (asked of the running server's OpenAPI schema)."""
    schema = client.get("/openapi.json").json()
    operation = schema.get("paths", {}).get("/api/v1/tickets", {}).get("get", {})
    return any(p.get("name") == "cursor" and p.get("in") == "query" for p in operation.get("parameters", []))


def _next_cursor(page: dict[str, Any]) -> str | None:
    for key, value in page.items():
        if "cursor" in key and isinstance(value, str) and value:
            return value
    return None


def _periods(url: str, zone: ZoneInfo) -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]]:
    """The last whole month before the newest ticket's month, and the 365 days that end with it."""
    with psycopg.connect(url) as conn:
        newest = conn.execute("SELECT max(received_at) FROM ticket").fetchone()[0]  # type: ignore[index]
    first_of_month = (newest or dt.datetime.now(dt.UTC)).astimezone(zone).date().replace(day=1)
    month_end = first_of_month - dt.timedelta(days=1)
    return (month_end.replace(day=1), month_end), (month_end - dt.timedelta(days=364), month_end)


def _export_window(url: str, zone: ZoneInfo, limit: int) -> tuple[dict[str, str], int]:
    """The most recent whole local days whose tickets are at most `limit`: the largest export the list allows."""
    with psycopg.connect(url) as conn:
        days = conn.execute(
            "SELECT (received_at AT TIME ZONE %s)::date AS d, count(*) FROM ticket GROUP BY d ORDER BY d DESC",
            (str(zone),),
        ).fetchall()
    total = sum(n for _, n in days)
    if total <= limit:
        return {}, total
    taken, start = 0, None
    for day, count in days:
        if taken + count > limit:
            break
        taken, start = taken + count, day
    if start is None:
        return {"from": days[0][0].isoformat(), "to": days[0][0].isoformat()}, days[0][1]
    return {"from": start.isoformat(), "to": days[0][0].isoformat()}, taken


def _export_limit() -> int:
    try:
        from service.web import listing
    except ImportError:
        return 50_000
    return int(getattr(listing, "EXPORT_LIMIT", 50_000))


def measure(
    url: str, rules: ServiceRules, users: dict[str, str], repeat: int, workers: int, formats: list[str]
) -> tuple[list[Timing], list[str]]:
    zone = ZoneInfo(rules.timezone)
    month, year = _periods(url, zone)
    limit = _export_limit()
    window, export_rows = _export_window(url, zone, limit)
    with psycopg.connect(url) as conn:
        top = conn.execute("SELECT coalesce(max(id), 0) FROM ticket").fetchone()[0]  # type: ignore[index]
    rng = np.random.default_rng(7)
    ids = [int(x) for x in rng.integers(1, max(top, 1) + 1, repeat + 1)]
    busy_office = "pingan"
    results: list[Timing] = []
    extra: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hotline-scale-") as tmp:
        server = start_server(url, workers, Path(tmp))
        extra.append(f"服务进程启动后（模型已加载、未处理请求）内存 {_rss_mb(server.process.pid):.0f} MB")
        try:
            base, timeout = server.base, httpx.Timeout(600.0)
            with (
                httpx.Client(base_url=base, timeout=timeout) as anon,
                httpx.Client(base_url=base, timeout=timeout, headers=_bearer(users["dispatcher"])) as disp,
                httpx.Client(base_url=base, timeout=timeout, headers=_bearer(users[busy_office])) as office,
                httpx.Client(base_url=base, timeout=timeout) as web,
            ):
                login(web, users["dispatcher"])
                cursor = has_cursor(anon)
                lists = "/api/v1/tickets"
                probes: list[tuple[str, str, float | None, Callable[[int], httpx.Response]]] = [
                    ("healthz", "/healthz（框架下限）", None, _get(anon, "/healthz")),
                    ("list", "列表第一页（派单员）?page_size=50", TARGET_LIST, _get(disp, lists, page_size=50)),
                    (
                        "list_office",
                        f"按科室 ?office={busy_office}",
                        TARGET_LIST,
                        _get(disp, lists, office=busy_office, page_size=50),
                    ),
                    (
                        "list_own",
                        f"科室用户自己的列表（{busy_office}）",
                        TARGET_LIST,
                        _get(office, lists, page_size=50),
                    ),
                    ("overdue", "?overdue=true", TARGET_LIST, _get(disp, lists, overdue="true", page_size=50)),
                    ("search", "?q=群租", TARGET_LIST, _get(disp, lists, q="群租", page_size=50)),
                    (
                        "pending",
                        "?state=pending_review",
                        TARGET_LIST,
                        _get(disp, lists, state="pending_review", page_size=50),
                    ),
                    (
                        "deep_page",
                        "页码能到的最深一页 ?page=200&page_size=50",
                        TARGET_LIST,
                        _get(disp, lists, page=DEEPEST_PAGE, page_size=50),
                    ),
                ]
                if cursor:
                    probes.append(("cursor", "游标翻页（第 2–4 页）", TARGET_LIST, _cursor_pages(disp)))
                else:
                    extra.append("列表接口没有 cursor 参数（/openapi.json）：未测游标翻页")
                probes += [
                    (
                        "ticket",
                        "单件工单 /api/v1/tickets/{id}",
                        TARGET_ONE,
                        lambda i: disp.get(f"{lists}/{ids[i + 1]}"),
                    ),
                    ("queue", "派单审核队列 /ui/queue", TARGET_LIST, _get(web, "/ui/queue")),
                    (
                        "report_month",
                        f"月报 {month[0]}…{month[1]}",
                        TARGET_MONTH,
                        _get(disp, "/api/v1/reports/daily", date=month[0].isoformat(), end=month[1].isoformat()),
                    ),
                    (
                        "report_year",
                        f"年报 {year[0]}…{year[1]}",
                        TARGET_YEAR,
                        _get(disp, "/api/v1/reports/daily", date=year[0].isoformat(), end=year[1].isoformat()),
                    ),
                ]
                for key, label, target, request in probes:
                    timing = Timing(key, label, target)
                    try:
                        timing.samples_ms = _timed(request, repeat)
                    except (RuntimeError, httpx.HTTPError) as exc:
                        timing.error = str(exc)
                    results.append(timing)
                for fmt in formats:
                    results.append(_export(web, server, fmt, window, export_rows, limit))
        finally:
            stop_server(server)
    return results, extra


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _cursor_pages(client: httpx.Client) -> Callable[[int], httpx.Response]:
    """Each call takes the next page by the cursor, from page 2 to page 4 and round again."""
    chain: list[str | None] = []

    def request(i: int) -> httpx.Response:
        if not chain:
            first = client.get("/api/v1/tickets", params={"page_size": 50}).json()
            chain.append(_next_cursor(first))
        if (i + 1) % 3 == 0 or chain[-1] is None:  # back to page 2 (the warm-up, i = -1, is page 2)
            del chain[1:]
        response = client.get("/api/v1/tickets", params={"page_size": 50, "cursor": chain[-1] or ""})
        if response.status_code == 200:
            chain.append(_next_cursor(response.json()))
        return response

    return request


def _export(web: httpx.Client, server: Server, fmt: str, window: dict[str, str], rows: int, limit: int) -> Timing:
    scope = f"{window['from']}…{window['to']}" if window else "全部"
    timing = Timing(f"export_{fmt}", f"导出工单列表 {fmt.upper()} {rows:,} 行（上限 {limit:,}，{scope}）", None)
    with PeakRss(server.process.pid) as memory:
        start = time.perf_counter()
        response = web.get("/ui/export/tickets", params={"format": fmt, **window}, follow_redirects=False)
        elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        timing.error = f"HTTP {response.status_code} {response.headers.get('location', '')}"
        return timing
    timing.samples_ms = [elapsed]
    timing.note = (
        f"{len(response.content) / 2**20:.1f} MB；服务进程内存 {memory.before_mb:.0f} → 峰值 {memory.peak_mb:.0f} MB"
        f"（+{memory.peak_mb - memory.before_mb:.0f} MB）"
    )
    return timing


def report(results: list[Timing], extra: list[str], repeat: int) -> bool:
    floor = next((r.pct(0.5) for r in results if r.key == "healthz" and r.samples_ms), 0.0) or float("nan")
    width = max(_width(r.label) for r in results)
    head = f"{'项目':<14}{_pad('请求', width)}  {'p50 ms':>9} {'p95 ms':>9} {'p50/下限':>9} {'p95/下限':>9}  目标"
    print(f"\n每项 {repeat} 次（导出 1 次）；下限 = /healthz 的 p50 {floor:.2f} ms")
    print(head)
    missed = False
    for r in results:
        if r.error:
            print(f"{r.key:<14}{_pad(r.label, width)}  失败：{r.error}")
            missed = True
            continue
        p50, p95 = r.pct(0.5), r.pct(0.95)
        if r.target_ms is None:
            goal = r.note or "—"
        else:
            goal = f"p95 ≤ {r.target_ms:g} ms {'✓' if not r.missed else '✗ 未达标'}"
            missed |= r.missed
        print(f"{r.key:<14}{_pad(r.label, width)}  {p50:9.1f} {p95:9.1f} {p50 / floor:9.1f} {p95 / floor:9.1f}  {goal}")
    for line in extra:
        print(f"注：{line}")
    return missed


def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000, help="工单数（默认 5,000,000）")
    parser.add_argument("--repeat", type=int, default=21, help="每个请求计时次数（默认 21）")
    parser.add_argument("--database", default="hotline_scale", help="数据库名（在 --pg 服务器上）或完整 URL")
    parser.add_argument("--pg", default=SERVER, help=f"PostgreSQL 服务器（默认 {SERVER}）")
    parser.add_argument("--reseed", action="store_true", help="清空后重新写入")
    parser.add_argument("--workers", type=int, default=1, help="服务进程数")
    parser.add_argument("--export", default="csv,xlsx", help="导出格式，逗号分隔（默认 csv,xlsx；空则不测）")
    parser.add_argument("--check", action="store_true", help="有未达标项时退出码为 1")
    args = parser.parse_args()
    # a SIGTERM (a test's timeout) unwinds like an exception, so the server's process group is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = database_url(args.database, args.pg)
    rules = load_rules(ROOT / "rules.yaml")
    ensure_database(url)
    seed(url, args.rows, rules, args.reseed)
    build_rollup(url, rules)
    stamp_queue(url, rules)
    users = tokens(url, rules)
    with psycopg.connect(url) as conn:
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("ticket", "ticket_event")]  # type: ignore[index]
    print(f"{url.rsplit('/', 1)[1]}：工单 {counts[0]:,} 件，事件 {counts[1]:,} 条；{args.workers} 个服务进程")
    formats = [f for f in args.export.split(",") if f]
    results, extra = measure(url, rules, users, args.repeat, args.workers, formats)
    missed = report(results, extra, args.repeat)
    sys.exit(1 if args.check and missed else 0)


if __name__ == "__main__":
    main()
