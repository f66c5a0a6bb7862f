"""The daily closure-rate report (docs/METRICS.md) and the 动态清零 ledger, computed in SQL on SQLite and PostgreSQL.

Counts are aggregated by the database (conditional sums grouped by office × category, a window-function median);
Python only divides the sums into rates and lays out the result.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, and_, case, func, literal, select, true, tuple_
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlmodel import Session, col

from service.clock import utcnow
from service.reports.models import DailyReport, Figures, LedgerDay, LedgerLine, Period, ReportRow, ReportSnapshot
from service.rules import ServiceRules
from service.tickets.models import State, Ticket, TicketEvent

COUNTS = (
    "received",
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
    "mean_hours": "平均办结时长(小时)",
    "median_hours": "办结时长中位数(小时)",
}
# a reopened ticket keeps its earlier resolved_at but is open again
_REOPENED = [str(State.reopened), str(State.accepted), str(State.contacted)]
RATES = (
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


TOTAL = ("*", "*")


def _grouped(
    conn: Connection, where: ColumnElement[bool], *, with_total: bool = False, **metrics: Any
) -> dict[tuple[str, str], dict[str, float]]:
    """Metrics per (office, category); with_total adds the all-rows group under TOTAL in the same pass (PostgreSQL's
    GROUPING SETS), for what cannot be summed from the groups, such as a median."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    columns = [m.label(k) for k, m in metrics.items()]
    base = select(t.office, t.category, *columns).where(t.merged_into_id.is_(None), where)
    if with_total:
        sets = func.grouping_sets(tuple_(t.office, t.category), tuple_())
        query = base.add_columns(func.grouping(t.office, t.category).label("is_total")).group_by(sets)
    else:
        query = base.group_by(t.office, t.category)
    result = {}
    for r in conn.execute(query):
        key = TOTAL if with_total and r.is_total else (r.office or "", r.category or "")
        result[key] = {k: float(r._mapping[k] or 0) for k in metrics}
    return result


def _open_at(t: Any, moment: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    """Disjoint conditions for "still open at `moment`" — never resolved, resolved only later, or resolved before
    but reopened — each of which an index answers (partial index on unresolved, resolved_at, state)."""
    return (
        t.resolved_at.is_(None),
        t.resolved_at >= moment,
        and_(t.resolved_at < moment, t.state.in_(_REOPENED)),
    )


def _ticket_counts(
    conn: Connection, rules: ServiceRules, lo: dt.datetime, hi: dt.datetime
) -> dict[tuple[str, str], dict[str, float]]:
    """One narrow, index-backed query per clock: each reads only the rows its metric can count."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    not_cancelled = t.state != State.cancelled
    solved_label, *others = rules.lifecycle.resolve_results
    weights = case(*[(t.satisfaction == k, v) for k, v in rules.lifecycle.satisfaction.items()], else_=0.0)
    still_open = and_(t.created_at < hi, not_cancelled, t.resolve_due < hi)
    hours = hours_between(t.created_at, t.resolved_at)
    # PostgreSQL computes the median in the same pass; elsewhere _medians does it with a window
    median = {"median": func.percentile_cont(0.5).within_group(hours)} if conn.dialect.name == "postgresql" else {}
    parts = [
        _grouped(conn, _within(t.received_at, lo, hi), received=func.count()),
        _grouped(
            conn,
            _within(t.resolved_at, lo, hi),
            resolved=func.count(),
            on_time=_count(t.resolved_at <= t.resolve_due),
            solved=_count(t.resolve_result == solved_label),
            explained=_count(t.resolve_result.in_(others or ["-"])),
            hours_sum=func.sum(hours),
            with_total=bool(median),
            **median,
        ),
        _grouped(conn, and_(_within(t.resolve_due, lo, hi), not_cancelled), due=func.count()),
        _grouped(
            conn,
            and_(_within(t.first_contact_due, lo, hi), not_cancelled),
            contact_due=func.count(),
            contact_on_time=_count(and_(t.first_contact_at.is_not(None), t.first_contact_at <= t.first_contact_due)),
        ),
        _grouped(
            conn,
            and_(_within(t.followed_up_at, lo, hi), t.satisfaction.is_not(None)),
            rated=func.count(),
            satisfaction_sum=func.sum(weights),
        ),
        *[_grouped(conn, and_(still_open, part), overdue_open=func.count()) for part in _open_at(t, hi)],
    ]
    merged: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for part in parts:
        for key, values in part.items():
            for metric, value in values.items():
                merged[key][metric] = merged[key].get(metric, 0.0) + value
    return merged


def _event_counts(conn: Connection, lo: dt.datetime, hi: dt.datetime) -> dict[tuple[str, str], dict[str, float]]:
    """Dispatches, returns and reopenings in the period, by the office and category recorded on each event."""
    e, t = TicketEvent.__table__.c, Ticket.__table__.c  # type: ignore[attr-defined]
    dispatched = (e.to_state == State.dispatched) & e.action.in_(["classify", "confirm", "reroute", "split"])
    merged = select(t.id).where(t.merged_into_id.is_not(None)).scalar_subquery()
    query = (
        select(
            e.office,
            e.category,
            _count(dispatched).label("dispatched"),
            _count(e.action == "return").label("returned"),
            _count(e.to_state == State.reopened).label("reopened"),
        )
        .where(_within(e.at, lo, hi), e.ticket_id.not_in(merged))
        .group_by(e.office, e.category)
    )
    return {
        (r.office or "", r.category or ""): {
            k: float(v or 0) for k, v in r._mapping.items() if k not in ("office", "category")
        }
        for r in conn.execute(query)
    }


def _medians(
    conn: Connection, lo: dt.datetime, hi: dt.datetime, grouped: bool, office: str | None = None
) -> dict[tuple[str, str], float]:
    """Median hours to resolve: PostgreSQL's percentile_cont, elsewhere the middle rows of a window (same value)."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    mine = t.office == office if office else true()
    if conn.dialect.name == "postgresql":
        hours_pg = hours_between(t.created_at, t.resolved_at)
        median = func.percentile_cont(0.5).within_group(hours_pg)
        where = and_(_within(t.resolved_at, lo, hi), t.merged_into_id.is_(None), mine)
        if grouped:
            rows = conn.execute(select(t.office, t.category, median).where(where).group_by(t.office, t.category))
            return {(o or "", c or ""): float(m) for o, c, m in rows}
        value = conn.execute(select(median).where(where)).scalar_one()
        return {} if value is None else {("", ""): float(value)}
    keys = [t.office, t.category] if grouped else [literal("").label("office"), literal("").label("category")]
    partition = [t.office, t.category] if grouped else []
    hours = hours_between(t.created_at, t.resolved_at)
    inner = (
        select(
            *keys,
            hours.label("h"),
            func.row_number().over(partition_by=partition, order_by=hours).label("rn"),
            func.count().over(partition_by=partition).label("cnt"),
        )
        .where(_within(t.resolved_at, lo, hi), t.merged_into_id.is_(None), mine)
        .subquery()
    )
    middle = inner.c.rn.in_([(inner.c.cnt + 1) // 2, (inner.c.cnt + 2) // 2])
    query = (
        select(inner.c.office, inner.c.category, func.avg(inner.c.h))
        .where(middle)
        .group_by(inner.c.office, inner.c.category)
    )
    return {(o or "", c or ""): float(m) for o, c, m in conn.execute(query)}


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def _finish(counts: dict[str, float], median: float | None) -> dict[str, Any]:
    row: dict[str, Any] = {k: int(counts.get(k, 0)) for k in COUNTS if k not in ("satisfaction_sum", "hours_sum")}
    row.update(
        {
            "closure_rate": _ratio(counts.get("resolved", 0), counts.get("due", 0)),
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


def _per_day(
    conn: Connection, column: Any, where: ColumnElement[bool], offset: int, **extra: Any
) -> dict[tuple[str, str], dict[str, int]]:
    """Counts per (category, local day), plus any extra conditional counts."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    day = local_date(column, literal(offset))
    query = select(t.category, day.label("day"), func.count().label("n"), *[v.label(k) for k, v in extra.items()])
    rows = conn.execute(query.where(where).group_by(t.category, day))
    return {(r.category, str(r.day)): {k: int(r._mapping[k] or 0) for k in ("n", *extra)} for r in rows}


def ledger(
    conn: Connection, rules: ServiceRules, start: dt.date, end: dt.date, office: str | None = None
) -> list[LedgerLine]:
    """动态清零 ledger for the clearance categories: per day open at day end, new, closed, 回潮.

    Five grouped queries whatever the period and the number of categories: open at the start, then new (with 回潮)
    and closed per category and day. Open at a day's end = open at the start + new so far − closed so far; a
    reopened ticket was never cleared.
    """
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    codes = [c for c, cat in rules.categories.items() if cat.clearance]
    if not codes:
        return []
    zone = ZoneInfo(rules.timezone)
    lo, hi = period_bounds(start, end, zone)
    # the zone's offset at the period start; the ledger's zones (Asia/Shanghai) keep one offset all year
    offset = int((lo.astimezone(zone).utcoffset() or dt.timedelta()).total_seconds() // 3600)
    counted = and_(t.category.in_(codes), t.merged_into_id.is_(None), t.state != State.cancelled)
    if office:
        counted = and_(counted, t.office == office)
    opening: dict[str, int] = defaultdict(int)
    for part in _open_at(t, lo):
        query = select(t.category, func.count()).where(counted, t.created_at < lo, part).group_by(t.category)
        for code, n in conn.execute(query):
            opening[code] += int(n)
    new = _per_day(
        conn,
        t.created_at,
        and_(counted, _within(t.created_at, lo, hi)),
        offset,
        recurrence=_count(t.recurrence.is_(True)),
    )
    closed = _per_day(
        conn, t.resolved_at, and_(counted, t.state.not_in(_REOPENED), _within(t.resolved_at, lo, hi)), offset
    )
    result: list[LedgerLine] = []
    for code in codes:
        days: list[LedgerDay] = []
        open_now, day = opening[code], start
        while day <= end:
            key = (code, day.isoformat())
            fresh, gone = new.get(key, {}), closed.get(key, {})
            open_now += fresh.get("n", 0) - gone.get("n", 0)
            days.append(
                LedgerDay(
                    date=key[1],
                    open=open_now,
                    new=fresh.get("n", 0),
                    closed=gone.get("n", 0),
                    recurrence=fresh.get("recurrence", 0),
                )
            )
            day += dt.timedelta(days=1)
        result.append(LedgerLine(category=code, name=rules.categories[code].name, days=days))
    return result


def daily_report(
    conn: Connection, rules: ServiceRules, start: dt.date, end: dt.date | None = None, office: str | None = None
) -> DailyReport:
    """Every metric of docs/METRICS.md per office × category, with totals and the 动态清零 ledger."""
    end = end or start
    lo, hi = period_bounds(start, end, ZoneInfo(rules.timezone))
    merged: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for source in (_ticket_counts(conn, rules, lo, hi), _event_counts(conn, lo, hi)):
        for key, values in source.items():
            merged[key].update(values)
    overall_pg = merged.pop(TOTAL, {}).get("median")
    medians = {key: counts.pop("median") for key, counts in merged.items() if "median" in counts}
    if conn.dialect.name != "postgresql":
        medians = _medians(conn, lo, hi, grouped=True)
    rows: list[ReportRow] = []
    totals: dict[str, float] = defaultdict(float)
    for (office_code, category), counts in sorted(merged.items()):
        if office and office_code != office:
            continue
        if not any(counts.get(k) for k in COUNTS):
            continue
        for k, v in counts.items():
            totals[k] += v
        rows.append(
            ReportRow(
                office=office_code,
                office_name=rules.office_name(office_code) if office_code in rules.offices else office_code,
                category=category,
                category_name=rules.categories[category].name if category in rules.categories else category,
                **_finish(counts, medians.get((office_code, category))),
            )
        )
    if office:
        overall = _medians(conn, lo, hi, grouped=False, office=office).get(("", ""))
    elif conn.dialect.name == "postgresql":
        overall = overall_pg
    else:
        overall = _medians(conn, lo, hi, grouped=False).get(("", ""))
    return DailyReport(
        period=Period(start=start.isoformat(), end=end.isoformat(), timezone=rules.timezone),
        generated_at=utcnow().replace(microsecond=0).isoformat(),
        rows=rows,
        totals=Figures(**_finish(totals, overall)),
        ledger=ledger(conn, rules, start, end, office=office),
    )


def load_report(
    engine: Engine, rules: ServiceRules, start: dt.date, end: dt.date | None, office: str | None
) -> DailyReport:
    """A stored snapshot for a whole-street single day when there is one, else computed now."""
    if (end is None or end == start) and office is None:
        with Session(engine) as session:
            stored = session.scalars(select(ReportSnapshot).where(col(ReportSnapshot.day) == start)).first()
            if stored is not None:
                return DailyReport.model_validate(stored.report)
    with engine.connect() as conn:
        return daily_report(conn, rules, start, end, office=office)
