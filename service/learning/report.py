"""The learning page's numbers: by ISO week and category, how much was dispatched automatically, how much of that
people corrected, how many returns were misrouting; and the model history with each card's test metrics."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from service.learning.models import LabelKind, RoutingLabel
from service.learning.registry import ModelStore, _read_card
from service.learning.registry import history as activation_history
from service.rules import ServiceRules
from service.tickets.models import State, TicketEvent

ACTIVATION_KINDS = {"baseline": "初始模型", "promote": "手动启用", "rollback": "回退", "retrain": "重新训练后启用"}


@dataclass
class WeekRow:
    week: str
    category: str
    name: str
    classified: int = 0
    auto: int = 0
    auto_corrected: int = 0
    misroute_returns: int = 0

    @property
    def auto_rate(self) -> float | None:
        return self.auto / self.classified if self.classified else None

    @property
    def correction_rate(self) -> float | None:
        return self.auto_corrected / self.auto if self.auto else None


def _week(at: dt.datetime, zone: ZoneInfo) -> str:
    year, week, _ = at.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def weekly(engine: Engine, rules: ServiceRules, *, now: dt.datetime, weeks: int = 12) -> list[WeekRow]:
    """Newest week first; within a week, categories in rules order."""
    zone = ZoneInfo(rules.timezone)
    start = now - dt.timedelta(weeks=weeks)
    events = TicketEvent.__table__  # type: ignore[attr-defined]
    labels = RoutingLabel.__table__  # type: ignore[attr-defined]
    classified = select(events.c.ticket_id, events.c.at, events.c.category, events.c.to_state).where(
        events.c.action == "classify", events.c.at >= start
    )
    corrections = select(labels.c.ticket_id, labels.c.kind, labels.c.at, labels.c.model_category).where(
        col(labels.c.kind).in_([LabelKind.reroute, LabelKind.returned]), labels.c.auto_dispatched
    )
    returns = select(labels.c.at, labels.c.model_category).where(
        labels.c.kind == LabelKind.returned, labels.c.at >= start
    )
    with engine.connect() as conn:
        intake = conn.execute(classified).all()
        corrected = {r.ticket_id for r in conn.execute(corrections)}
        returned = conn.execute(returns).all()
    rows: dict[tuple[str, str], WeekRow] = {}

    def row(week: str, category: str | None) -> WeekRow:
        code = category or "—"
        key = (week, code)
        if key not in rows:
            name = rules.categories[code].name if code in rules.categories else "未分类"
            rows[key] = WeekRow(week, code, name)
        return rows[key]

    for ticket_id, at, category, to_state in intake:
        r = row(_week(at, zone), category)
        r.classified += 1
        if to_state == State.dispatched:
            r.auto += 1
            r.auto_corrected += ticket_id in corrected
    for at, category in returned:
        row(_week(at, zone), category).misroute_returns += 1
    order = {code: i for i, code in enumerate(rules.categories)}
    return sorted(rows.values(), key=lambda r: (_neg(r.week), order.get(r.category, len(order))))


def _neg(week: str) -> tuple[int, int]:
    year, number = week.split("-W")
    return -int(year), -int(number)


def week_totals(rows: list[WeekRow]) -> list[WeekRow]:
    totals: dict[str, WeekRow] = defaultdict(lambda: WeekRow("", "", "合计"))
    for r in rows:
        t = totals[r.week]
        t.week = r.week
        t.classified += r.classified
        t.auto += r.auto
        t.auto_corrected += r.auto_corrected
        t.misroute_returns += r.misroute_returns
    return sorted(totals.values(), key=lambda r: _neg(r.week))


def card_metrics(card: dict[str, Any] | None) -> dict[str, Any]:
    """What a card says about held-out performance (real test split; else cross-validation)."""
    metrics = (card or {}).get("metrics") or {}
    test = metrics.get("real_test") or {}
    if test.get("n"):
        return {"basis": "真实测试集", "n": test["n"], "macro_f1": test["macro_f1"], "accuracy": test["accuracy"]}
    cv = (metrics.get("cv") or {}).get("decision") or {}
    if cv.get("n"):
        return {"basis": "交叉验证", "n": cv["n"], "macro_f1": cv["macro_f1"], "accuracy": cv["accuracy"]}
    return {}


def model_history(session: Any, store: ModelStore, rules: ServiceRules) -> list[dict[str, Any]]:
    """Every activation, newest first, with its model's card metrics; the configured model when none yet."""
    zone = ZoneInfo(rules.timezone)
    rows = activation_history(session=session)
    out = []
    for i, row in enumerate(rows):
        card = _read_card(store.root / row.version) if store.root.is_dir() else None
        out.append(
            {
                "version": row.version,
                "kind": ACTIVATION_KINDS.get(row.kind, "其他"),
                "at": row.at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                "actor": row.actor,
                "active": i == len(rows) - 1,
                "note": row.note or "",
                "metrics": card_metrics(card),
            }
        )
    if not out:
        card = _read_card(store.configured)
        version = str((card or {}).get("model_version", "—"))
        out.append({"version": version, "kind": "初始模型", "at": "—", "actor": "—", "active": True, "note": ""})
        out[0]["metrics"] = card_metrics(card)
    return list(reversed(out))
