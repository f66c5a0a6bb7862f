"""The daily closure-rate report (DESIGN §5) and the 动态清零 ledger, computed in SQL on SQLite and PostgreSQL.

Counts are aggregated by the database (conditional sums grouped by office × category, a window-function median);
Python only divides the sums into rates and lays out the result.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, and_, case, func, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from classifier.config import Rules
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


def _ticket_counts(
    conn: Connection, rules: Rules, lo: dt.datetime, hi: dt.datetime
) -> dict[tuple[str, str], dict[str, float]]:
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    live = t.merged_into_id.is_(None)
    not_cancelled = t.state != State.cancelled
    resolved = _within(t.resolved_at, lo, hi)
    solved_label, *others = rules.lifecycle.resolve_results
    weights = case(*[(t.satisfaction == k, v) for k, v in rules.lifecycle.satisfaction.items()], else_=None)
    rated = and_(t.satisfaction.is_not(None), _within(t.followed_up_at, lo, hi))
    query = (
        select(
            t.office,
            t.category,
            _count(_within(t.created_at, lo, hi)).label("received"),
            _count(resolved).label("resolved"),
            _count(and_(_within(t.resolve_due, lo, hi), not_cancelled)).label("due"),
            _count(and_(resolved, t.resolved_at <= t.resolve_due)).label("on_time"),
            _count(
                and_(
                    t.created_at < hi,
                    not_cancelled,
                    t.resolve_due < hi,
                    t.resolved_at.is_(None) | (t.resolved_at >= hi) | t.state.in_(_REOPENED),
                )
            ).label("overdue_open"),
            _count(and_(_within(t.first_contact_due, lo, hi), not_cancelled)).label("contact_due"),
            _count(
                and_(
                    _within(t.first_contact_due, lo, hi),
                    t.first_contact_at.is_not(None),
                    t.first_contact_at <= t.first_contact_due,
                )
            ).label("contact_on_time"),
            _count(and_(resolved, t.resolve_result == solved_label)).label("solved"),
            _count(and_(resolved, t.resolve_result.in_(others or ["-"]))).label("explained"),
            _count(rated).label("rated"),
            func.sum(case((rated, weights), else_=0.0)).label("satisfaction_sum"),
            func.sum(case((resolved, hours_between(t.created_at, t.resolved_at)), else_=0.0)).label("hours_sum"),
        )
        .where(live)
        .group_by(t.office, t.category)
    )
    return {
        (r.office or "", r.category or ""): {
            k: float(v or 0) for k, v in r._mapping.items() if k not in ("office", "category")
        }
        for r in conn.execute(query)
    }


def _event_counts(conn: Connection, lo: dt.datetime, hi: dt.datetime) -> dict[tuple[str, str], dict[str, float]]:
    e, t = TicketEvent.__table__.c, Ticket.__table__.c  # type: ignore[attr-defined]
    dispatched = (e.to_state == State.dispatched) & e.action.in_(["classify", "confirm", "reroute", "split"])
    query = (
        select(
            e.office,
            t.category,
            _count(dispatched).label("dispatched"),
            _count(e.action == "return").label("returned"),
            _count(e.to_state == State.reopened).label("reopened"),
        )
        .select_from(TicketEvent.__table__.join(Ticket.__table__, e.ticket_id == t.id))  # type: ignore[attr-defined]
        .where(_within(e.at, lo, hi), t.merged_into_id.is_(None))
        .group_by(e.office, t.category)
    )
    return {
        (r.office or "", r.category or ""): {
            k: float(v or 0) for k, v in r._mapping.items() if k not in ("office", "category")
        }
        for r in conn.execute(query)
    }


def _medians(conn: Connection, lo: dt.datetime, hi: dt.datetime, grouped: bool) -> dict[tuple[str, str], float]:
    t = Ticket.__table__.c  # type: ignore[attr-defined]
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
        .where(_within(t.resolved_at, lo, hi), t.merged_into_id.is_(None))
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


def ledger(conn: Connection, rules: Rules, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    """动态清零 ledger for the clearance categories: per day open at day end, new, closed, 回潮."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    zone = ZoneInfo(rules.timezone)
    codes = [code for code, cat in rules.categories.items() if cat.clearance]
    result = []
    for code in codes:
        days = []
        day = start
        while day <= end:
            lo, hi = period_bounds(day, day, zone)
            query = select(
                _count(
                    and_(
                        t.created_at < hi,
                        t.state != State.cancelled,
                        t.resolved_at.is_(None) | (t.resolved_at >= hi) | t.state.in_(_REOPENED),
                    )
                ).label("open"),
                _count(_within(t.created_at, lo, hi)).label("new"),
                _count(_within(t.resolved_at, lo, hi)).label("closed"),
                _count(and_(_within(t.created_at, lo, hi), t.recurrence.is_(True))).label("recurrence"),
            ).where(t.category == code, t.merged_into_id.is_(None))
            row = conn.execute(query).one()
            days.append({"date": day.isoformat(), **{k: int(v or 0) for k, v in row._mapping.items()}})
            day += dt.timedelta(days=1)
        result.append({"category": code, "name": rules.categories[code].name, "days": days})
    return result


def daily_report(
    conn: Connection, rules: Rules, start: dt.date, end: dt.date | None = None, office: str | None = None
) -> dict[str, Any]:
    """Every DESIGN §5 metric per office × category, with totals and the 动态清零 ledger."""
    end = end or start
    lo, hi = period_bounds(start, end, ZoneInfo(rules.timezone))
    merged: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for source in (_ticket_counts(conn, rules, lo, hi), _event_counts(conn, lo, hi)):
        for key, values in source.items():
            merged[key].update(values)
    medians = _medians(conn, lo, hi, grouped=True)
    rows = []
    totals: dict[str, float] = defaultdict(float)
    for (office_code, category), counts in sorted(merged.items()):
        if office and office_code != office:
            continue
        if not any(counts.get(k) for k in COUNTS):
            continue
        for k, v in counts.items():
            totals[k] += v
        rows.append(
            {
                "office": office_code,
                "office_name": rules.office_name(office_code) if office_code in rules.offices else office_code,
                "category": category,
                "category_name": rules.categories[category].name if category in rules.categories else category,
                **_finish(counts, medians.get((office_code, category))),
            }
        )
    overall = None if office else _medians(conn, lo, hi, grouped=False).get(("", ""))
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat(), "timezone": rules.timezone},
        "generated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "rows": rows,
        "totals": _finish(totals, overall),
        "ledger": ledger(conn, rules, start, end),
    }
