"""The daily closure-rate report (docs/METRICS.md) and the 动态清零 ledger, computed in SQL on SQLite and PostgreSQL.

Counts are aggregated by the database (conditional sums grouped by office × category, a window-function median);
Python only divides the sums into rates and lays out the result.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Float, and_, case, func, literal, or_, select, true, tuple_, union_all
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement, Subquery
from sqlmodel import Session, col

from service.clock import utcnow
from service.reports.models import (
    AreaStatus,
    AssistLine,
    DailyReport,
    Figures,
    HotspotLine,
    LedgerArea,
    LedgerDay,
    LedgerLine,
    MonitorLine,
    MonitorReport,
    MonitorRow,
    Period,
    ReportRow,
    ReportSnapshot,
    Rollup,
    RollupDay,
)
from service.rules import ServiceRules
from service.tickets.models import (
    DISCOVERY_SOURCES,
    ChangedDay,
    State,
    Ticket,
    TicketAssist,
    TicketEvent,
    TicketRound,
)

COUNTS = (
    "received",
    "hotspots",
    "discovered",
    "resolved",
    "due",
    "on_time",
    "overdue_open",
    "contact_due",
    "contact_on_time",
    "solved",
    "explained",
    "rated",
    "satisfaction_sum",
    "dispatched",
    "returned",
    "reopened",
    "rejected",
    "hours_sum",
)
LABELS = {
    "office_name": "承办科室",
    "category_name": "分类",
    "received": "受理量",
    "resolved": "办结量",
    "due": "应办结量",
    "closure_rate": "办结率",
    "on_time_rate": "按时办结率",
    "overdue_open": "超期未办结",
    "contact_rate": "先行联系率",
    "solved_rate": "实际解决率",
    "satisfaction_rate": "市民满意率",
    "return_rate": "退单率",
    "reopen_rate": "重办率",
    "rejected": "办结驳回",
    "mean_hours": "平均办结时长(小时)",
    "median_hours": "办结时长中位数(小时)",
    "hotspots": "冒头工单",
    "discovered": "主动发现",
    "discovery_rate": "主动发现率",
}
RATES = (
    "discovery_rate",
    "closure_rate",
    "on_time_rate",
    "contact_rate",
    "solved_rate",
    "satisfaction_rate",
    "return_rate",
    "reopen_rate",
)


class hours_between(FunctionElement[float]):
    type = Float()
    inherit_cache = True


@compiles(hours_between, "postgresql")
def _hours_pg(element: hours_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"(EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)})) / 3600.0)"


@compiles(hours_between, "sqlite")
def _hours_sqlite(element: hours_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"((julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)})) * 24.0)"


def period_bounds(start: dt.date, end: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00, end+1 00:00) in local time, as UTC instants."""
    lo = dt.datetime.combine(start, dt.time(), zone).astimezone(dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    return lo, hi


def _within(column: Any, lo: dt.datetime, hi: dt.datetime) -> ColumnElement[bool]:
    return and_(column >= lo, column < hi)


def _count(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


UNPLACED = "未定位"
# the rollup's own grouping (office × 片区), and the breakdowns a period report can read from it
ROLLUP = "rollup"
ROLLED_BREAKDOWNS = ("office", "grid")
KEY_SEPARATOR = "\x1f"
# every count but overdue_open (a moment's state, not a sum over days) adds up over a period's days
ROLLED = tuple(k for k in COUNTS if k != "overdue_open")
BREAKDOWNS = ("office", "grid", "community", "cell")
BREAKDOWN_LABELS = {"office": "承办科室", "grid": "片区", "community": "居民区", "cell": "网格"}


@dataclass(frozen=True)
class Scope:
    """What a report's rows are (承办科室 × 分类, or 片区/居民区/网格 × 分类) and whose tickets it counts."""

    by: str = "office"
    office: str | None = None

    def key(self, table: Any, *, joined: bool = False) -> tuple[Any, Any]:
        """The row key's column for `table` (ticket, ticket_round or ticket_event), and what to select from: an
        area is the ticket's, so rounds and events join their ticket for it."""
        if self.by == "office":
            return table.c.office, table
        t = Ticket.__table__  # type: ignore[attr-defined]
        if self.by == ROLLUP:
            # the fact's own office with the ticket's 片区 as one string, split again by rollup.day_rows
            office = func.coalesce(table.c.office, "").concat(KEY_SEPARATOR).concat(func.coalesce(t.c.grid, ""))
            return office, table if table is t else table.join(t, table.c.ticket_id == t.c.id)
        if table is t:
            return t.c[self.by], t
        return t.c[self.by], table.join(t, table.c.ticket_id == t.c.id)

    def mine(self, table: Any) -> ColumnElement[bool]:
        return table.c.office == self.office if self.office else true()


def _grouped(
    conn: Connection, where: ColumnElement[bool], scope: Scope, *, rounds: bool = False, **metrics: Any
) -> dict[tuple[str, str], dict[str, float]]:
    """Metrics per (row key, category) over the tickets' current rounds, or with rounds=True over the finished
    rounds of reopened tickets (each frozen with the office and category it ended under)."""
    table = TicketRound.__table__ if rounds else Ticket.__table__  # type: ignore[attr-defined]
    c = table.c
    key, source = scope.key(table)
    columns = [m.label(k) for k, m in metrics.items()]
    query = select(key.label("key"), c.category, *columns).select_from(source).where(where, scope.mine(table))
    if not rounds:
        query = query.where(c.merged_into_id.is_(None))
    result = {}
    for r in conn.execute(query.group_by(key, c.category)):
        result[(r.key or "", r.category or "")] = {k: float(r._mapping[k] or 0) for k in metrics}
    return result


def _open_at(t: Any, moment: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    """Disjoint conditions for "the current round is still open at `moment`": never resolved, or resolved only
    later; each is answered by an index (partial index on unresolved, resolved_at). The round must also have
    started by then (_started)."""
    return (t.resolved_at.is_(None), t.resolved_at >= moment)


def _started(t: Any, moment: dt.datetime) -> ColumnElement[bool]:
    """The ticket's current round began before `moment`: it arrived by then, and a 重办 round was opened by then."""
    return and_(t.created_at < moment, or_(t.reopen_count == 0, t.resolve_clock_start < moment))


def _round_start(t: Any) -> Any:
    """When the current round's clocks started: the original start (the hotline's received_at) or the 重办."""
    return func.coalesce(t.resolve_clock_start, t.clock_start, t.created_at)


def _sources(conn: Connection, scope: Scope, make: Any) -> list[dict[tuple[str, str], dict[str, float]]]:
    """One metric's counts over the current rounds and over the finished rounds; `make(table_columns, is_round)`
    returns the (where, metrics) pair for a source."""
    t, r = Ticket.__table__.c, TicketRound.__table__.c  # type: ignore[attr-defined]
    where, metrics = make(t, False)
    round_where, round_metrics = make(r, True)
    return [_grouped(conn, where, scope, **metrics), _grouped(conn, round_where, scope, rounds=True, **round_metrics)]


def _ticket_counts(
    conn: Connection, rules: ServiceRules, lo: dt.datetime, hi: dt.datetime, scope: Scope
) -> dict[tuple[str, str], dict[str, float]]:
    """One narrow, index-backed query per clock and source: each reads only the rows its metric can count.

    A reopened ticket's earlier rounds are counted from ticket_round, as they ended: a later 重办 never changes a
    past period's figures."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    solved_label, *others = rules.lifecycle.resolve_results

    def live(c: Any, is_round: bool) -> ColumnElement[bool]:
        return true() if is_round else c.state != State.cancelled

    def resolved(c: Any, is_round: bool) -> tuple[ColumnElement[bool], dict[str, Any]]:
        start = c.started_at if is_round else _round_start(c)
        return _within(c.resolved_at, lo, hi), {
            "resolved": func.count(),
            "on_time": _count(c.resolved_at <= c.resolve_due),
            "solved": _count(c.resolve_result == solved_label),
            "explained": _count(c.resolve_result.in_(others or ["-"])),
            "hours_sum": func.sum(hours_between(start, c.resolved_at)),
        }

    def due(c: Any, is_round: bool) -> tuple[ColumnElement[bool], dict[str, Any]]:
        return and_(_within(c.resolve_due, lo, hi), live(c, is_round)), {"due": func.count()}

    def contact(c: Any, is_round: bool) -> tuple[ColumnElement[bool], dict[str, Any]]:
        on_time = and_(c.first_contact_at.is_not(None), c.first_contact_at <= c.first_contact_due)
        where = and_(_within(c.first_contact_due, lo, hi), live(c, is_round))
        return where, {"contact_due": func.count(), "contact_on_time": _count(on_time)}

    def rated(c: Any, is_round: bool) -> tuple[ColumnElement[bool], dict[str, Any]]:
        weights = case(*[(c.satisfaction == k, v) for k, v in rules.lifecycle.satisfaction.items()], else_=0.0)
        where = and_(_within(c.followed_up_at, lo, hi), c.satisfaction.is_not(None))
        return where, {"rated": func.count(), "satisfaction_sum": func.sum(weights)}

    parts = [
        _grouped(
            conn,
            _within(t.received_at, lo, hi),
            scope,
            received=func.count(),
            hotspots=_count(t.hotspot.is_(True)),
            discovered=_count(t.source.in_(DISCOVERY_SOURCES)),
        ),
        *_sources(conn, scope, resolved),
        *_sources(conn, scope, due),
        *_sources(conn, scope, contact),
        *_sources(conn, scope, rated),
    ]
    return _summed(parts)


def _summed(parts: list[dict[tuple[str, str], dict[str, float]]]) -> dict[tuple[str, str], dict[str, float]]:
    merged: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for part in parts:
        for key, values in part.items():
            for metric, value in values.items():
                merged[key][metric] = merged[key].get(metric, 0.0) + value
    return merged


def _overdue_open(conn: Connection, hi: dt.datetime, scope: Scope) -> dict[tuple[str, str], dict[str, float]]:
    """超期未办结 at the period's end: rounds past their 办结 deadline and still open then (a moment's state)."""
    t, r = Ticket.__table__.c, TicketRound.__table__.c  # type: ignore[attr-defined]
    still_open = and_(_started(t, hi), t.state != State.cancelled, t.resolve_due < hi)
    # a finished round was still open at the period end when it was resolved only after it
    round_open = and_(r.started_at < hi, r.resolve_due < hi, r.resolved_at >= hi)
    return _summed(
        [
            *[_grouped(conn, and_(still_open, part), scope, overdue_open=func.count()) for part in _open_at(t, hi)],
            _grouped(conn, round_open, scope, rounds=True, overdue_open=func.count()),
        ]
    )


def live_counts(
    conn: Connection, rules: ServiceRules, lo: dt.datetime, hi: dt.datetime, scope: Scope
) -> dict[tuple[str, str], dict[str, float]]:
    """The additive figures (ROLLED) of [lo, hi) computed from the tickets, rounds and events themselves."""
    return _summed([_ticket_counts(conn, rules, lo, hi, scope), _event_counts(conn, lo, hi, scope)])


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def overlapped_days(utc_day: dt.date, zone: ZoneInfo) -> set[dt.date]:
    """The local days a UTC day overlaps."""
    first = dt.datetime.combine(utc_day, dt.time(), dt.UTC)
    last = first + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    return {first.astimezone(zone).date(), last.astimezone(zone).date()}


def stale_days(conn: Connection, start: dt.date, end: dt.date, zone: ZoneInfo) -> set[dt.date]:
    """The local days of [start, end] the rollup cannot answer: never built, or touched by a write since."""
    built_at = RollupDay.__table__.c  # type: ignore[attr-defined]
    dirty = ChangedDay.__table__.c  # type: ignore[attr-defined]
    built = set(conn.execute(select(built_at.day).where(built_at.day.between(start, end))).scalars())
    margin = dt.timedelta(days=1)
    touched = conn.execute(select(dirty.day).where(dirty.day.between(start - margin, end + margin)).distinct())
    stale = {day for utc_day in touched.scalars() for day in overlapped_days(utc_day, zone)}
    return {day for day in _days(start, end) if day not in built or day in stale}


def _runs(days: set[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days as (first, last) runs."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] + dt.timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _rollup_rows(
    start: dt.date, end: dt.date, skip: set[dt.date], scope: Scope
) -> tuple[Any, list[ColumnElement[bool]]]:
    """The rollup's column for the scope's row key, and which of its rows [start, end] without `skip` reads."""
    r = Rollup.__table__.c  # type: ignore[attr-defined]
    where = [r.day.between(start, end)]
    if skip:
        where.append(r.day.not_in(sorted(skip)))
    if scope.office:
        where.append(r.office == scope.office)
    return (r.office if scope.by == "office" else r[scope.by]), where


def _rolled(
    conn: Connection, start: dt.date, end: dt.date, skip: set[dt.date], scope: Scope
) -> dict[tuple[str, str], dict[str, float]]:
    """The rollup's sums over [start, end] except the `skip` days, by the scope's rows."""
    r = Rollup.__table__.c  # type: ignore[attr-defined]
    key, where = _rollup_rows(start, end, skip, scope)
    query = select(key.label("key"), r.category, *[func.sum(r[k]).label(k) for k in ROLLED])
    return {
        (row.key or "", row.category or ""): {k: float(row._mapping[k] or 0) for k in ROLLED}
        for row in conn.execute(query.where(*where).group_by(key, r.category))
    }


def live_days(conn: Connection, rules: ServiceRules, start: dt.date, end: dt.date, scope: Scope) -> set[dt.date]:
    """The days of [start, end] a report computes from the tickets: those the rollup does not hold up to date, or
    every day for breakdowns finer than 片区."""
    if scope.by not in ROLLED_BREAKDOWNS:
        return set(_days(start, end))
    return stale_days(conn, start, end, ZoneInfo(rules.timezone))


def period_counts(
    conn: Connection, rules: ServiceRules, start: dt.date, end: dt.date, scope: Scope, live: set[dt.date]
) -> dict[tuple[str, str], dict[str, float]]:
    """The additive figures of [start, end]: the rollup's for the days it holds up to date, computed live for the
    `live` days (each run of them in one go)."""
    zone = ZoneInfo(rules.timezone)
    parts = [live_counts(conn, rules, *period_bounds(a, b, zone), scope) for a, b in _runs(live)]
    if len(live) < len(_days(start, end)):
        parts.append(_rolled(conn, start, end, live, scope))
    return _summed(parts)


def _event_counts(
    conn: Connection, lo: dt.datetime, hi: dt.datetime, scope: Scope
) -> dict[tuple[str, str], dict[str, float]]:
    """Dispatches, returns, reopenings and 办结 rejections (办结审核) in the period, by the office (or the ticket's
    area) and category recorded on each event."""
    events = TicketEvent.__table__  # type: ignore[attr-defined]
    e, t = events.c, Ticket.__table__.c  # type: ignore[attr-defined]
    key, source = scope.key(events)
    dispatched = (e.to_state == State.dispatched) & e.action.in_(["classify", "confirm", "reroute", "split"])
    merged = select(t.id).where(t.merged_into_id.is_not(None)).scalar_subquery()
    query = (
        select(
            key.label("key"),
            e.category,
            _count(dispatched).label("dispatched"),
            _count(e.action == "return").label("returned"),
            _count(e.to_state == State.reopened).label("reopened"),
            _count(e.action == "reject-resolution").label("rejected"),
        )
        .select_from(source)
        .where(_within(e.at, lo, hi), e.ticket_id.not_in(merged), scope.mine(events))
        .group_by(key, e.category)
    )
    return {
        (r.key or "", r.category or ""): {
            k: float(v or 0) for k, v in r._mapping.items() if k not in ("key", "category")
        }
        for r in conn.execute(query)
    }


def _resolutions(lo: dt.datetime, hi: dt.datetime, scope: Scope) -> Subquery:
    """Every round resolved in the period, current or finished, with its hours from the round's start."""
    tickets, rounds = Ticket.__table__, TicketRound.__table__  # type: ignore[attr-defined]
    t, r = tickets.c, rounds.c
    key, source = scope.key(tickets)
    current = (
        select(key.label("key"), t.category, hours_between(_round_start(t), t.resolved_at).label("h"))
        .select_from(source)
        .where(_within(t.resolved_at, lo, hi), t.merged_into_id.is_(None), scope.mine(tickets))
    )
    key, source = scope.key(rounds)
    finished = (
        select(key.label("key"), r.category, hours_between(r.started_at, r.resolved_at).label("h"))
        .select_from(source)
        .where(_within(r.resolved_at, lo, hi), scope.mine(rounds))
    )
    return union_all(current, finished).subquery()


def resolution_hours(
    conn: Connection, lo: dt.datetime, hi: dt.datetime, scope: Scope
) -> dict[tuple[str, str], list[float]]:
    """The hours of every round resolved in [lo, hi), per (row key, category)."""
    u = _resolutions(lo, hi, scope)
    hours: dict[tuple[str, str], list[float]] = defaultdict(list)
    for key, category, h in conn.execute(select(u.c.key, u.c.category, u.c.h)):
        hours[(key or "", category or "")].append(float(h))
    return hours


HOURS_DTYPE = "<f8"


def pack_hours(values: list[float]) -> bytes:
    """Hours as the rollup stores them: sorted little-endian doubles, so a day's bytes are one canonical value."""
    return np.sort(np.asarray(values, dtype=HOURS_DTYPE)).tobytes()


def unpack_hours(blob: bytes | None) -> Any:
    return np.frombuffer(blob or b"", dtype=HOURS_DTYPE)


def _median(blob: bytes) -> float | None:
    """The middle value, or the mean of the middle two; exact, whatever order the values came in."""
    values = unpack_hours(blob)
    n = len(values)
    if not n:
        return None
    mid = n // 2
    if n % 2:
        return float(np.partition(values, mid)[mid])
    part = np.partition(values, (mid - 1, mid))
    return float((part[mid - 1] + part[mid]) / 2)


def _rolled_hours(
    conn: Connection, start: dt.date, end: dt.date, skip: set[dt.date], scope: Scope
) -> Iterator[tuple[tuple[str, str], bytes]]:
    r = Rollup.__table__.c  # type: ignore[attr-defined]
    key, where = _rollup_rows(start, end, skip, scope)
    for row in conn.execute(select(key, r.category, r.hours).where(*where, r.hours.is_not(None))):
        yield (row[0] or "", row[1] or ""), row[2]


def _medians(
    conn: Connection, rules: ServiceRules, start: dt.date, end: dt.date, scope: Scope, live: set[dt.date]
) -> tuple[dict[tuple[str, str], float], float | None]:
    """Median hours to resolve per row key × category and overall, exact: each day's hours come from the rollup
    (stored sorted per day, so a year is its rows' bytes, not 1.6 million resolutions sorted by the database) or,
    for the `live` days, from the rounds themselves; the same function takes the middle of both."""
    zone = ZoneInfo(rules.timezone)
    chunks: dict[tuple[str, str], list[bytes]] = defaultdict(list)
    for a, b in _runs(live):
        for group, hours in resolution_hours(conn, *period_bounds(a, b, zone), scope).items():
            # unsorted: the median partitions, and only the rollup's stored bytes need one canonical order
            chunks[group].append(np.asarray(hours, dtype=HOURS_DTYPE).tobytes())
    if len(live) < len(_days(start, end)):
        for group, blob in _rolled_hours(conn, start, end, live, scope):
            chunks[group].append(blob)
    grouped = {group: _median(b"".join(parts)) for group, parts in chunks.items()}
    overall = _median(b"".join(blob for parts in chunks.values() for blob in parts))
    return {group: m for group, m in grouped.items() if m is not None}, overall


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def _finish(counts: dict[str, float], median: float | None) -> dict[str, Any]:
    row: dict[str, Any] = {k: int(counts.get(k, 0)) for k in COUNTS if k not in ("satisfaction_sum", "hours_sum")}
    row.update(
        {
            "closure_rate": _ratio(counts.get("resolved", 0), counts.get("due", 0)),
            "discovery_rate": _ratio(counts.get("discovered", 0), counts.get("received", 0)),
            "on_time_rate": _ratio(counts.get("on_time", 0), counts.get("resolved", 0)),
            "contact_rate": _ratio(counts.get("contact_on_time", 0), counts.get("contact_due", 0)),
            "solved_rate": _ratio(counts.get("solved", 0), counts.get("solved", 0) + counts.get("explained", 0)),
            "satisfaction_rate": _ratio(counts.get("satisfaction_sum", 0), counts.get("rated", 0)),
            "return_rate": _ratio(counts.get("returned", 0), counts.get("dispatched", 0)),
            "reopen_rate": _ratio(counts.get("reopened", 0), counts.get("resolved", 0)),
            "mean_hours": round(counts["hours_sum"] / counts["resolved"], 2) if counts.get("resolved") else None,
            "median_hours": round(median, 2) if median is not None else None,
        }
    )
    return row


class local_date(FunctionElement[str]):
    """The local calendar date (YYYY-MM-DD) of a stored UTC timestamp, at a fixed offset in hours."""

    inherit_cache = True


@compiles(local_date, "postgresql")
def _local_date_pg(element: local_date, compiler: Any, **kw: Any) -> str:
    column, offset = list(element.clauses)
    return (
        f"to_char(({compiler.process(column, **kw)} AT TIME ZONE 'UTC') + "
        f"make_interval(hours => {compiler.process(offset, **kw)}), 'YYYY-MM-DD')"
    )


@compiles(local_date, "sqlite")
def _local_date_sqlite(element: local_date, compiler: Any, **kw: Any) -> str:
    column, offset = list(element.clauses)
    return f"date({compiler.process(column, **kw)}, printf('%+d hours', {compiler.process(offset, **kw)}))"


LEDGER_FLOWS = ("ledger_new", "ledger_recurrence", "ledger_reopened", "ledger_closed")


def ledger_counted(codes: list[str] | None, office: str | None) -> ColumnElement[bool]:
    """The tickets the ledger counts: not merged away, not cancelled (and of these categories, this office)."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    counted = and_(t.merged_into_id.is_(None), t.state != State.cancelled)
    if codes is not None:
        counted = and_(counted, t.category.in_(codes))
    if office:
        counted = and_(counted, t.office == office)
    return counted


def ledger_flows(
    conn: Connection,
    lo: dt.datetime,
    hi: dt.datetime,
    counted: ColumnElement[bool],
    keys: list[Any],
    offset: int | None,
) -> dict[tuple[str, ...], dict[str, int]]:
    """The ledger's flows in [lo, hi) per `keys` (ticket columns), and per local day when `offset` (hours) is given:
    new tickets (with 回潮), rounds reopened (a 重办 ends one), rounds closed (current and finished)."""
    t, r = Ticket.__table__.c, TicketRound.__table__.c  # type: ignore[attr-defined]
    of_counted = and_(r.ticket_id == t.id, counted)
    queries = [
        ("ledger_new", t.created_at, counted, [_count(t.recurrence.is_(True)).label("ledger_recurrence")]),
        ("ledger_reopened", r.ended_at, of_counted, []),
        ("ledger_closed", t.resolved_at, counted, []),
        ("ledger_closed", r.resolved_at, of_counted, []),
    ]
    flows: dict[tuple[str, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(LEDGER_FLOWS, 0))
    for name, column, where, extra in queries:
        group = [*keys] if offset is None else [*keys, local_date(column, literal(offset))]
        query = select(*group, func.count().label("n"), *extra).where(where, _within(column, lo, hi))
        for row in conn.execute(query.group_by(*group)):
            cell = flows[tuple("" if v is None else str(v) for v in row[: len(group)])]
            cell[name] += int(row.n)
            for column_ in extra:
                cell[column_.name] += int(row._mapping[column_.name] or 0)
    return flows


def _utc_offset(moment: dt.datetime, zone: ZoneInfo) -> int:
    # the ledger's zones (Asia/Shanghai) keep one offset all year
    return int((moment.astimezone(zone).utcoffset() or dt.timedelta()).total_seconds() // 3600)


def _last_flow_day(conn: Connection, zone: ZoneInfo) -> dt.date | None:
    """The local day of the latest moment any ledger flow happened (each an index's last entry)."""
    t, r = Ticket.__table__.c, TicketRound.__table__.c  # type: ignore[attr-defined]
    moments = [
        conn.execute(select(func.max(c))).scalar() for c in (t.created_at, t.resolved_at, r.ended_at, r.resolved_at)
    ]
    known = [m if m.tzinfo else m.replace(tzinfo=dt.UTC) for m in moments if isinstance(m, dt.datetime)]
    return max(known).astimezone(zone).date() if known else None


def _flows_since(
    conn: Connection, rules: ServiceRules, start: dt.date, codes: list[str], office: str | None
) -> dict[tuple[str, str], dict[str, int]]:
    """The ledger's flows per (category, local day) on every day from `start` on: the rollup's for the days it holds
    up to date, counted live for the rest."""
    zone = ZoneInfo(rules.timezone)
    last = _last_flow_day(conn, zone)
    if last is None or last < start:
        return {}
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    live = stale_days(conn, start, last, zone)
    flows: dict[tuple[str, str], dict[str, int]] = {}
    for a, b in _runs(live):
        lo, hi = period_bounds(a, b, zone)
        found = ledger_flows(conn, lo, hi, ledger_counted(codes, office), [t.category], _utc_offset(lo, zone))
        flows.update({(code, day): cell for (code, day), cell in found.items()})
    if len(live) < (last - start).days + 1:
        r = Rollup.__table__.c  # type: ignore[attr-defined]
        where = [r.day.between(start, last), r.category.in_(codes)]
        if live:
            where.append(r.day.not_in(sorted(live)))
        if office:
            where.append(r.office == office)
        query = select(r.category, r.day, *[func.sum(r[k]).label(k) for k in LEDGER_FLOWS]).where(*where)
        for row in conn.execute(query.group_by(r.category, r.day)):
            flows[(row.category, row.day.isoformat())] = {k: int(row._mapping[k] or 0) for k in LEDGER_FLOWS}
    return flows


def ledger(
    conn: Connection, rules: ServiceRules, start: dt.date, end: dt.date, office: str | None = None
) -> list[LedgerLine]:
    """动态清零 ledger for the clearance categories: per day open at day end, new, reopened, closed, 回潮.

    Open at a day's end = open at the start + new and reopened so far − closed so far, and the opening is the same
    identity run back from today's backlog: what is open now, less everything that came in since the start, plus
    everything closed since. So the last day of a ledger up to today always shows the real backlog, and a ledger of
    a past year costs a few index reads and the rollup's flows, not a scan of the year's tickets. Each 办结 closes a
    round; a 重办 opens the next (ticket_round keeps the finished ones), so a past day's line does not change when a
    ticket is reopened later. Every figure is filed under the ticket's current category and office, so the line
    always adds up.
    """
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    codes = [c for c, cat in rules.categories.items() if cat.clearance]
    if not codes:
        return []
    flows = _flows_since(conn, rules, start, codes, office)
    backlog = select(t.category, func.count()).where(ledger_counted(codes, office), t.resolved_at.is_(None))
    opening: dict[str, int] = defaultdict(int)
    for code, n in conn.execute(backlog.group_by(t.category)):
        opening[code] += int(n)
    for (code, _), cell in flows.items():
        opening[code] -= cell["ledger_new"] + cell["ledger_reopened"] - cell["ledger_closed"]
    result: list[LedgerLine] = []
    for code in codes:
        days: list[LedgerDay] = []
        open_now = opening[code]
        for day in _days(start, end):
            cell = flows.get((code, day.isoformat()), dict.fromkeys(LEDGER_FLOWS, 0))
            open_now += cell["ledger_new"] + cell["ledger_reopened"] - cell["ledger_closed"]
            days.append(
                LedgerDay(
                    date=day.isoformat(),
                    open=open_now,
                    new=cell["ledger_new"],
                    reopened=cell["ledger_reopened"],
                    closed=cell["ledger_closed"],
                    recurrence=cell["ledger_recurrence"],
                )
            )
        result.append(LedgerLine(category=code, name=rules.categories[code].name, days=days))
    return result


def daily_report(
    conn: Connection,
    rules: ServiceRules,
    start: dt.date,
    end: dt.date | None = None,
    office: str | None = None,
    by: str = "office",
) -> DailyReport:
    """Every metric of docs/METRICS.md per office × category (or 片区/居民区/网格 × category with `by`), with
    totals and the 动态清零 ledger (and, by area, where the ledger's backlog sits)."""
    end = end or start
    lo, hi = period_bounds(start, end, ZoneInfo(rules.timezone))
    merged: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    scope = Scope(by=by, office=office)
    live = live_days(conn, rules, start, end, scope)
    for source in (period_counts(conn, rules, start, end, scope, live), _overdue_open(conn, hi, scope)):
        for group, values in source.items():
            merged[group].update(values)
    medians, overall = _medians(conn, rules, start, end, scope, live)
    zone = ZoneInfo(rules.timezone)
    # 冒头就打 is about what flares up now: a long period lists the flare-ups of its last window_days, not a year of
    # long-settled buildings (docs/METRICS.md#热点清单冒头就打)
    recent = max(lo, hi - dt.timedelta(days=rules.hotspots.window_days))
    rows: list[ReportRow] = []
    totals: dict[str, float] = defaultdict(float)
    for (key, category), counts in sorted(merged.items(), key=lambda kv: (by != "office" and kv[0][0] == "", kv[0])):
        if not any(counts.get(k) for k in COUNTS):
            continue
        for k, v in counts.items():
            totals[k] += v
        where = {"office": key, "office_name": rules.office_name(key) if key in rules.offices else key}
        if by != "office":
            where = {"office": "", "office_name": "", "area": key or UNPLACED}
        rows.append(
            ReportRow(
                **where,
                category=category,
                category_name=rules.categories[category].name if category in rules.categories else category,
                **_finish(counts, medians.get((key, category))),
            )
        )
    return DailyReport(
        period=Period(start=start.isoformat(), end=end.isoformat(), timezone=rules.timezone),
        generated_at=utcnow().replace(microsecond=0).isoformat(),
        by=by,
        rows=rows,
        totals=Figures(**_finish(totals, overall)),
        ledger=ledger(conn, rules, start, end, office=office),
        ledger_areas=[] if by == "office" else ledger_by_area(conn, rules, start, end, by=by, office=office),
        assists=assist_lines(conn, rules, lo, hi, office=office),
        hotspot_list=hotspot_list(conn, rules, recent, hi, by=by, office=office),
        hotspot_list_from=recent.astimezone(zone).date().isoformat(),
    )


HOTSPOT_LIST_MAX = 500
# flagged places looked up per query (a bounded IN list of (building, category) pairs)
PLACES_PER_QUERY = 500


def hotspot_list(
    conn: Connection, rules: ServiceRules, lo: dt.datetime, hi: dt.datetime, *, by: str, office: str | None = None
) -> list[HotspotLine]:
    """Every building where a ticket received in the period was flagged a hotspot, with all that category's tickets
    there in the period, grouped by area (片区 when the rows are offices) and busiest first."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    scope = Scope(by=by, office=office)
    counted = and_(_within(t.received_at, lo, hi), t.merged_into_id.is_(None), t.building_key.is_not(None))
    mine = scope.mine(Ticket.__table__)  # type: ignore[attr-defined]
    # first the flagged places (plain "hotspot", not "hotspot IS true": only the former uses the partial index
    # ix_ticket_hotspot), then those places' tickets by ix_ticket_place_received: never every ticket of the window
    flagged = conn.execute(select(t.building_key, t.category).where(counted, t.hotspot, mine).distinct()).all()
    level = t.grid if by == "office" else t[by]
    open_at_end = and_(t.state != State.cancelled, or_(*_open_at(t, hi)))
    columns = (
        t.building_key,
        t.category,
        func.max(level).label("area"),
        func.max(t.grid).label("zone"),
        func.max(t.community).label("community"),
        func.max(t.cell).label("cell"),
        func.count().label("tickets"),
        _count(open_at_end).label("open"),
        _count(t.recurrence.is_(True)).label("recurrence"),
        func.max(t.received_at).label("last"),
    )
    found: list[Any] = []
    for i in range(0, len(flagged), PLACES_PER_QUERY):
        places = tuple_(t.building_key, t.category).in_([tuple(p) for p in flagged[i : i + PLACES_PER_QUERY]])
        query = select(*columns).where(counted, mine, places).group_by(t.building_key, t.category)
        found.extend(conn.execute(query))
    zone = ZoneInfo(rules.timezone)
    lines = [
        HotspotLine(
            area=r.area or UNPLACED,
            zone=r.zone or "",
            community=r.community or "",
            cell=r.cell or "",
            building=r.building_key,
            category=r.category or "",
            category_name=rules.categories[r.category].name if r.category in rules.categories else (r.category or ""),
            tickets=int(r.tickets),
            open=int(r.open or 0),
            recurrence=bool(r.recurrence),
            last_received=_aware(r.last).astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        )
        for r in found
    ]
    lines.sort(key=lambda line: (line.area == UNPLACED, line.area, -line.tickets, line.building))
    return lines[:HOTSPOT_LIST_MAX]


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive UTC from an aggregate (the column type's conversion is not applied to max())
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def assist_lines(
    conn: Connection, rules: ServiceRules, lo: dt.datetime, hi: dt.datetime, *, office: str | None = None
) -> list[AssistLine]:
    """联勤联动 by assisting office: asked and parts recorded in the period, and still open at its end. An office's
    own report lists its assists and the assists on its tickets."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(ASSIST_COUNTS, 0))
    for query in _assist_parts(lo, hi, office):
        for r in conn.execute(query):
            for k, v in r._mapping.items():
                if k != "office":
                    counts[r.office][k] += int(v or 0)
    lines = []
    for code in sorted(counts):
        if not any(counts[code].values()):
            continue
        name = rules.office_name(code) if code in rules.offices else code
        lines.append(AssistLine(office=code, office_name=name, **counts[code]))
    return lines


ASSIST_COUNTS = ("asked", "recorded", "open", "open_without_part")


def _assist_parts(lo: dt.datetime, hi: dt.datetime, office: str | None) -> list[Any]:
    """One narrow query per figure, each reading only the assists it can count (by asked_at, by part_at, and through
    the tickets still open at the end, by the two index-backed halves of _open_at), never every assist ever asked."""
    a, t = TicketAssist.__table__.c, Ticket.__table__.c  # type: ignore[attr-defined]
    source = TicketAssist.__table__.join(Ticket.__table__, a.ticket_id == t.id)  # type: ignore[attr-defined]
    mine = or_(a.office == office, t.office == office) if office else true()

    def part(where: ColumnElement[bool], **metrics: Any) -> Any:
        columns = [m.label(k) for k, m in metrics.items()]
        return select(a.office, *columns).select_from(source).where(where, mine).group_by(a.office)

    still_open = and_(a.asked_at < hi, t.state != State.cancelled)
    without_part = or_(a.part_at.is_(None), a.part_at >= hi)
    return [
        part(_within(a.asked_at, lo, hi), asked=func.count()),
        part(_within(a.part_at, lo, hi), recorded=func.count()),
        *[
            part(and_(still_open, ended), open=func.count(), open_without_part=_count(without_part))
            for ended in _open_at(t, hi)
        ],
    ]


def ledger_by_area(
    conn: Connection, rules: ServiceRules, start: dt.date, end: dt.date, *, by: str, office: str | None = None
) -> list[LedgerArea]:
    """Where the 动态清零 backlog sits: per clearance category and 片区/居民区/网格, the period's opening, new,
    reopened, closed and closing counts (the same rules as the daily ledger, summed over the period)."""
    t, r = Ticket.__table__.c, TicketRound.__table__.c  # type: ignore[attr-defined]
    codes = [c for c, cat in rules.categories.items() if cat.clearance]
    if not codes:
        return []
    lo, hi = period_bounds(start, end, ZoneInfo(rules.timezone))
    area = t[by]
    counted = and_(t.category.in_(codes), t.merged_into_id.is_(None), t.state != State.cancelled)
    if office:
        counted = and_(counted, t.office == office)
    of_counted = and_(r.ticket_id == t.id, counted)
    figures: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(name: str, where: ColumnElement[bool], **extra: Any) -> None:
        columns = [func.count().label("n"), *[v.label(k) for k, v in extra.items()]]
        for row in conn.execute(
            select(t.category, area.label("area"), *columns).where(where).group_by(t.category, area)
        ):
            cell = figures[(row.category, row.area or UNPLACED)]
            cell[name] += int(row.n)
            for k in extra:
                cell[k] += int(row._mapping[k] or 0)

    for part in _open_at(t, lo):
        add("opening", and_(counted, _started(t, lo), part))
    add("opening", and_(of_counted, r.started_at < lo, r.resolved_at >= lo))
    add("new", and_(counted, _within(t.created_at, lo, hi)), recurrence=_count(t.recurrence.is_(True)))
    add("reopened", and_(of_counted, _within(r.ended_at, lo, hi)))
    add("closed", and_(counted, _within(t.resolved_at, lo, hi)))
    add("closed", and_(of_counted, _within(r.resolved_at, lo, hi)))
    lines = []
    for (code, name), cell in figures.items():
        closing = cell["opening"] + cell["new"] + cell["reopened"] - cell["closed"]
        if not any((closing, cell["new"], cell["reopened"], cell["closed"])):
            continue
        lines.append(
            LedgerArea(
                category=code,
                name=rules.categories[code].name,
                area=name,
                opening=cell["opening"],
                new=cell["new"],
                reopened=cell["reopened"],
                closed=cell["closed"],
                closing=closing,
                recurrence=cell["recurrence"],
            )
        )
    order = {code: i for i, code in enumerate(codes)}
    return sorted(lines, key=lambda line: (order[line.category], -line.closing, line.area))


def load_report(
    engine: Engine, rules: ServiceRules, start: dt.date, end: dt.date | None, office: str | None, by: str = "office"
) -> DailyReport:
    """A stored snapshot for a whole-street single day when there is one, else computed now."""
    if (end is None or end == start) and office is None and by == "office":
        with Session(engine) as session:
            stored = session.scalars(select(ReportSnapshot).where(col(ReportSnapshot.day) == start)).first()
            if stored is not None:
                return DailyReport.model_validate(stored.report)
    with engine.connect() as conn:
        return daily_report(conn, rules, start, end, office=office, by=by)


def monitor(
    conn: Connection, rules: ServiceRules, end: dt.date, weeks: int | None = None, office: str | None = None
) -> MonitorReport:
    """新增X动态监测 for the categories in `reports.monitor`: new tickets (by the hotline's received_at) per
    片区/街道 and week (Monday to Sunday, local time), the last week being the one that holds `end`, with how many
    of them were 回潮 (the same rule as the ledger's)."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    codes = list(rules.reports.monitor)
    count = weeks or rules.reports.monitor_weeks
    zone = ZoneInfo(rules.timezone)
    first = end - dt.timedelta(days=end.weekday() + 7 * (count - 1))
    lo, hi = period_bounds(first, end, zone)
    offset = int((lo.astimezone(zone).utcoffset() or dt.timedelta()).total_seconds() // 3600)
    lines: list[MonitorLine] = []
    if codes:
        day = local_date(t.received_at, literal(offset))
        where = and_(
            t.category.in_(codes),
            _within(t.received_at, lo, hi),
            t.merged_into_id.is_(None),
            t.state != State.cancelled,
        )
        if office:
            where = and_(where, t.office == office)
        query = (
            select(t.category, t.grid, day.label("day"), func.count().label("n"), _count(t.recurrence.is_(True)))
            .where(where)
            .group_by(t.category, t.grid, day)
        )
        counts: dict[str, dict[str, list[list[int]]]] = {c: {} for c in codes}
        for category, grid, local_day, n, again in conn.execute(query):
            week = (dt.date.fromisoformat(str(local_day)) - first).days // 7
            cells = counts[category].setdefault(grid or UNPLACED, [[0] * count, [0] * count])
            cells[0][week] += int(n)
            cells[1][week] += int(again or 0)
        mondays = [(first + dt.timedelta(days=7 * i)).isoformat() for i in range(count)]
        for code in codes:
            rows = [
                MonitorRow(grid=grid, new=new, recurrence=again, total=sum(new))
                for grid, (new, again) in sorted(counts[code].items(), key=lambda kv: (-sum(kv[1][0]), kv[0]))
            ]
            totals = [sum(r.new[i] for r in rows) for i in range(count)]
            lines.append(
                MonitorLine(category=code, name=rules.categories[code].name, weeks=mondays, rows=rows, totals=totals)
            )
    return MonitorReport(end=end.isoformat(), timezone=rules.timezone, lines=lines)


def area_status(
    conn: Connection, rules: ServiceRules, start: dt.date, end: dt.date, office: str | None = None
) -> list[AreaStatus]:
    """Where the backlog sits: per 片区 and, under it, per 居民区, the tickets still open at the period's end, how
    many of them are overdue, and how many were resolved in the period (finished 重办 rounds included)."""
    lo, hi = period_bounds(start, end, ZoneInfo(rules.timezone))
    t, r = Ticket.__table__.c, TicketRound.__table__.c  # type: ignore[attr-defined]
    live = and_(t.merged_into_id.is_(None), t.state != State.cancelled)
    if office:
        live = and_(live, t.office == office)
    cells: dict[tuple[str, str | None], dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(name: str, *where: ColumnElement[bool]) -> None:
        query = select(t.grid, t.community, func.count()).where(live, *where).group_by(t.grid, t.community)
        for zone, community, n in conn.execute(query):
            cells[(zone or UNPLACED, community)][name] += int(n)

    for part in _open_at(t, hi):
        add("open", _started(t, hi), part)
        add("overdue", _started(t, hi), part, t.resolve_due < hi)
    add("open", r.ticket_id == t.id, r.started_at < hi, r.resolved_at >= hi)
    add("overdue", r.ticket_id == t.id, r.started_at < hi, r.resolved_at >= hi, r.resolve_due < hi)
    add("cleared", _within(t.resolved_at, lo, hi))
    add("cleared", r.ticket_id == t.id, _within(r.resolved_at, lo, hi))
    zones: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (zone, _), counts in cells.items():
        for k, v in counts.items():
            zones[zone][k] += v
    known = list(rules.places.grids)
    order = sorted(zones, key=lambda z: (z == UNPLACED, known.index(z) if z in known else len(known), z))
    result = []
    for zone in order:
        result.append(AreaStatus(level="grid", name=zone, zone=zone, **_status(zones[zone])))
        for (z, community), counts in sorted(cells.items(), key=lambda kv: (kv[0][1] is None, kv[0][1] or "")):
            if z == zone and community is not None:
                result.append(AreaStatus(level="community", name=community, zone=zone, **_status(counts)))
    return result


def _status(counts: dict[str, int]) -> dict[str, int]:
    return {k: counts.get(k, 0) for k in ("open", "overdue", "cleared")}
