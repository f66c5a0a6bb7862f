"""The daily push: yesterday's report stored as a snapshot and sent to the group robots as markdown."""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from service.clock import utcnow
from service.notify.people import post_markdown
from service.reports.models import DailyReport, ReportSnapshot
from service.reports.service import daily_report
from service.rules import ServiceRules

log = logging.getLogger(__name__)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def markdown(report: DailyReport) -> str:
    t = report.totals
    lines = [
        f"### 12345 工单日报 {report.period.start}",
        f"> 受理 {t.received} 件，办结 {t.resolved} 件，办结率 {_pct(t.closure_rate)}，"
        f"按时办结率 {_pct(t.on_time_rate)}，超期未办结 {t.overdue_open} 件",
        f"> 先行联系率 {_pct(t.contact_rate)}，实际解决率 {_pct(t.solved_rate)}，满意率 {_pct(t.satisfaction_rate)}",
    ]
    for item in report.ledger:
        last = item.days[-1]
        lines.append(
            f"> 动态清零·{item.name}：日末在办 {last.open}，新增 {last.new}，重办 {last.reopened}，"
            f"办结 {last.closed}，回潮 {last.recurrence}"
        )
    return "\n".join(lines)


def snapshot(engine: Engine, rules: ServiceRules, day: dt.date) -> ReportSnapshot:
    """The stored report of `day`, computed and stored on first use; later reads return it unchanged."""
    with Session(engine, expire_on_commit=False) as session:
        existing = session.exec(select(ReportSnapshot).where(ReportSnapshot.day == day)).first()
        if existing is not None:
            return existing
        with engine.connect() as conn:
            report = daily_report(conn, rules, day)
        stored = ReportSnapshot(day=day, created_at=utcnow(), report=report.model_dump())
        session.add(stored)
        try:
            session.commit()
        except IntegrityError:  # another process stored it first: theirs is the one
            session.rollback()
            winner = session.exec(select(ReportSnapshot).where(ReportSnapshot.day == day)).one()
            return winner
        session.refresh(stored)
        return stored


def push_yesterday(
    engine: Engine,
    rules: ServiceRules,
    webhooks: dict[str, list[str]],
    *,
    now: dt.datetime,
    client: httpx.Client | None = None,
) -> ReportSnapshot:
    """Store yesterday's snapshot and send it once to the dispatcher and leader robots."""
    day = now.astimezone(ZoneInfo(rules.timezone)).date() - dt.timedelta(days=1)
    stored = snapshot(engine, rules, day)
    if stored.pushed:
        return stored
    targets = [*webhooks.get("leaders", []), *webhooks.get("dispatcher", [])]
    text = markdown(DailyReport.model_validate(stored.report))
    http = client or httpx.Client(timeout=10)
    try:
        ok = not post_markdown(http, targets, f"12345 工单日报 {day}", text)
    finally:
        if client is None:
            http.close()
    if ok:
        with Session(engine) as session:
            row = session.get(ReportSnapshot, stored.id)
            if row is not None:
                row.pushed = True
                session.add(row)
                session.commit()
                stored.pushed = True
    else:
        log.warning("report_push_failed", extra={"day": day.isoformat()})
    return stored
