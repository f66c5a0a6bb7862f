"""The report rollup (docs/SCALING.md#报表汇总): each local day's additive report figures per office × category ×
片区, kept up to date from the days writes mark (service/tickets/changes.py), and checked against a full recount.

A day is rebuilt whole (delete, then insert its rows) in one transaction with its report_rollup_day entry, so a
reader sees it before or after, never half. The marks a refresh read are removed only after their days are rebuilt,
and only those rows: a write committed meanwhile leaves its own mark and its day is rebuilt on the next run.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection, Engine

from service.reports.models import Rollup, RollupDay
from service.reports.service import (
    KEY_SEPARATOR,
    LEDGER_FLOWS,
    ROLLED,
    ROLLUP,
    Scope,
    ledger_counted,
    ledger_flows,
    live_counts,
    overlapped_days,
    pack_hours,
    period_bounds,
    resolution_hours,
    unpack_hours,
)
from service.rules import ServiceRules
from service.tickets.models import ChangedDay, Ticket

# marks read per refresh; more wait for the next run (a day is rebuilt once however many marks name it)
MARKS_PER_RUN = 50_000
# never-built days the scheduler's refresh builds per run, newest first, so a large history fills in the background
BACKFILL_PER_RUN = 31
# float sums (hours, satisfaction) may differ in their last bits between a day's sum and a period's
TOLERANCE = 1e-6

_ROLLUP = Rollup.__table__  # type: ignore[attr-defined]
_BUILT = RollupDay.__table__  # type: ignore[attr-defined]
_DIRTY = ChangedDay.__table__  # type: ignore[attr-defined]

Rows = dict[tuple[str, str, str], dict[str, float]]
Hours = dict[tuple[str, str, str], bytes]
COLUMNS = (*ROLLED, *LEDGER_FLOWS)


def day_rows(conn: Connection, rules: ServiceRules, day: dt.date) -> Rows:
    """A local day's figures counted live, by (office, category, 片区)."""
    lo, hi = period_bounds(day, day, ZoneInfo(rules.timezone))
    rows: Rows = defaultdict(lambda: dict.fromkeys(COLUMNS, 0.0))
    for (key, category), values in live_counts(conn, rules, lo, hi, Scope(by=ROLLUP)).items():
        office, grid = key.split(KEY_SEPARATOR)
        rows[(office, category, grid)].update({k: values.get(k, 0.0) for k in ROLLED})
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    keys = [t.office, t.category, t.grid]
    for (office, category, grid), flows in ledger_flows(conn, lo, hi, ledger_counted(None, None), keys, None).items():
        rows[(office, category, grid)].update({k: float(v) for k, v in flows.items()})
    return {key: figures for key, figures in rows.items() if any(figures.values())}


def day_hours(conn: Connection, rules: ServiceRules, day: dt.date) -> Hours:
    """A local day's hours to resolve, packed, by (office, category, 片区)."""
    lo, hi = period_bounds(day, day, ZoneInfo(rules.timezone))
    result: Hours = {}
    for (key, category), hours in resolution_hours(conn, lo, hi, Scope(by=ROLLUP)).items():
        office, grid = key.split(KEY_SEPARATOR)
        result[(office, category, grid)] = pack_hours(hours)
    return result


def stored_hours(conn: Connection, day: dt.date) -> Hours:
    r = _ROLLUP.c
    query = select(r.office, r.category, r.grid, r.hours).where(r.day == day, r.hours.is_not(None))
    return {(row.office, row.category, row.grid): row.hours for row in conn.execute(query)}


def stored_rows(conn: Connection, day: dt.date) -> Rows:
    r = _ROLLUP.c
    query = select(r.office, r.category, r.grid, *[r[k] for k in COLUMNS]).where(r.day == day)
    return {
        (row.office, row.category, row.grid): {k: float(row._mapping[k]) for k in COLUMNS}
        for row in conn.execute(query)
    }


def _stored(day: dt.date, key: tuple[str, str, str], figures: dict[str, float], hours: bytes | None) -> dict[str, Any]:
    office, category, grid = key
    counts = {k: (v if k.endswith("_sum") else round(v)) for k, v in figures.items()}
    return {"day": day, "office": office, "category": category, "grid": grid, "hours": hours} | counts


def build_day(conn: Connection, rules: ServiceRules, day: dt.date, now: dt.datetime) -> int:
    """Rebuild one day's rows in the caller's transaction; returns how many rows it holds."""
    rows, hours = day_rows(conn, rules, day), day_hours(conn, rules, day)
    for key in hours.keys() - rows.keys():
        rows[key] = dict.fromkeys(COLUMNS, 0.0)
    conn.execute(delete(_ROLLUP).where(_ROLLUP.c.day == day))
    if rows:
        conn.execute(
            insert(_ROLLUP),
            [_stored(day, key, figures, hours.get(key)) for key, figures in rows.items()],
        )
    conn.execute(delete(_BUILT).where(_BUILT.c.day == day))
    conn.execute(insert(_BUILT), [{"day": day, "built_at": now}])
    return len(rows)


@dataclass
class Refreshed:
    rebuilt: int = 0
    backfilled: int = 0
    marks: int = 0


def _unbuilt(conn: Connection, rules: ServiceRules, today: dt.date, limit: int) -> list[dt.date]:
    """Days from the first ticket's to today that were never built, newest first."""
    first = conn.execute(select(func.min(Ticket.__table__.c.received_at))).scalar()  # type: ignore[attr-defined]
    if first is None:
        return []
    zone = ZoneInfo(rules.timezone)
    aware = first if first.tzinfo else first.replace(tzinfo=dt.UTC)
    start = aware.astimezone(zone).date()
    built = set(conn.execute(select(_BUILT.c.day).where(_BUILT.c.day.between(start, today))).scalars())
    days: list[dt.date] = []
    day = today
    while day >= start and len(days) < limit:
        if day not in built:
            days.append(day)
        day -= dt.timedelta(days=1)
    return days


def refresh(engine: Engine, rules: ServiceRules, *, now: dt.datetime, backfill: int = BACKFILL_PER_RUN) -> Refreshed:
    """Rebuild the days writes have marked, then build up to `backfill` days never built; each day is its own
    transaction. Safe to rerun at any time; run under the scheduler's job lock so two never rebuild together."""
    zone = ZoneInfo(rules.timezone)
    done = Refreshed()
    with engine.connect() as conn:
        marks = conn.execute(select(_DIRTY.c.id, _DIRTY.c.day).order_by(_DIRTY.c.id).limit(MARKS_PER_RUN)).all()
    days = sorted({day for _, utc_day in marks for day in overlapped_days(utc_day, zone)})
    for day in days:
        with engine.begin() as conn:
            build_day(conn, rules, day, now)
        done.rebuilt += 1
    ids = [mark_id for mark_id, _ in marks]
    for i in range(0, len(ids), 5000):
        with engine.begin() as conn:
            conn.execute(delete(_DIRTY).where(_DIRTY.c.id.in_(ids[i : i + 5000])))
    done.marks = len(ids)
    if backfill:
        with engine.connect() as conn:
            todo = _unbuilt(conn, rules, now.astimezone(zone).date(), backfill)
        for day in todo:
            with engine.begin() as conn:
                build_day(conn, rules, day, now)
            done.backfilled += 1
    return done


def rebuild(
    engine: Engine,
    rules: ServiceRules,
    start: dt.date,
    end: dt.date,
    *,
    now: dt.datetime,
    progress: Callable[[dt.date, int], None] | None = None,
) -> int:
    """Build every day of [start, end] afresh (after a bulk load, or to repair); returns the days built."""
    day, built = start, 0
    while day <= end:
        with engine.begin() as conn:
            rows = build_day(conn, rules, day, now)
        built += 1
        if progress is not None:
            progress(day, rows)
        day += dt.timedelta(days=1)
    return built


@dataclass(frozen=True)
class Difference:
    day: dt.date
    office: str
    category: str
    grid: str
    metric: str
    stored: float
    recounted: float


@dataclass
class Verified:
    days: int = 0
    unbuilt: list[dt.date] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)


def _hours_differences(day: dt.date, stored: Hours, recounted: Hours) -> list[Difference]:
    """Where a day's stored hours to resolve are not the recount's: the first value that differs (or, when the
    counts differ, the counts) under the metric "hours"."""
    found = []
    for key in sorted(stored.keys() | recounted.keys()):
        have, want = unpack_hours(stored.get(key)), unpack_hours(recounted.get(key))
        if len(have) != len(want):
            found.append(Difference(day, *key, "hours", float(len(have)), float(len(want))))
            continue
        for a, b in zip(have, want, strict=True):
            if abs(a - b) > TOLERANCE * max(1.0, abs(b)):
                found.append(Difference(day, *key, "hours", float(a), float(b)))
                break
    return found


def verify(conn: Connection, rules: ServiceRules, start: dt.date, end: dt.date) -> Verified:
    """Compare each built day of [start, end] with a full recount of it; days never built are listed apart.

    Run it after a refresh: a day marked since its build is stale by design and would differ."""
    built = set(conn.execute(select(_BUILT.c.day).where(_BUILT.c.day.between(start, end))).scalars())
    result = Verified()
    day = start
    while day <= end:
        if day not in built:
            result.unbuilt.append(day)
        else:
            result.days += 1
            stored, recounted = stored_rows(conn, day), day_rows(conn, rules, day)
            for key in sorted(stored.keys() | recounted.keys()):
                have, want = stored.get(key, {}), recounted.get(key, {})
                for metric in COLUMNS:
                    a, b = have.get(metric, 0.0), want.get(metric, 0.0)
                    if abs(a - b) > TOLERANCE * max(1.0, abs(b)):
                        result.differences.append(Difference(day, *key, metric, a, b))
            result.differences.extend(_hours_differences(day, stored_hours(conn, day), day_hours(conn, rules, day)))
        day += dt.timedelta(days=1)
    return result
