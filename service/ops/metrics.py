"""Prometheus metrics: intake count and latency, classification outcomes, open and overdue gauges."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.clock import utcnow
from service.tickets.models import OPEN_STATES, Ticket


class _TicketGauges(Collector):
    """Open and overdue counts per office, read from the database at scrape time (so every worker agrees)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        open_g = GaugeMetricFamily("hotline_tickets_open", "未办结工单数", labels=["office"])
        overdue_g = GaugeMetricFamily("hotline_tickets_overdue", "超期未办结工单数", labels=["office"])
        now = utcnow()
        states = [str(s) for s in OPEN_STATES]
        try:
            with Session(self.engine) as session:
                base = select(Ticket.office, func.count()).where(col(Ticket.state).in_(states)).group_by(Ticket.office)
                for office, count in session.exec(base):
                    open_g.add_metric([office or ""], count)
                late = base.where(col(Ticket.resolve_due) < now)
                for office, count in session.exec(late):
                    overdue_g.add_metric([office or ""], count)
        except Exception:  # a scrape during a database outage reports what it can, never fails the endpoint
            pass
        yield open_g
        yield overdue_g


class Metrics:
    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.intake = Counter("hotline_intake_total", "收到的工单推送", ["outcome"], registry=self.registry)
        self.intake_latency = Histogram(
            "hotline_intake_seconds",
            "工单接收耗时（秒）",
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
        )
        self.classification = Counter(
            "hotline_classification_total", "分类结果", ["category", "outcome"], registry=self.registry
        )
        self.registry.register(_TicketGauges(engine))
