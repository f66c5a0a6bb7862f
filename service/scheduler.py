"""Scheduled jobs: deadline sweep, alert delivery, callback delivery and (when switched on) the weekly retrain.

Jobs are module-level functions that open their own sessions. `hotline serve` starts them in-process for the
single-machine default; `hotline scheduler` runs them as their own process and web workers are then started with
HOTLINE_SCHEDULER=0. On PostgreSQL each run holds an advisory lock, so two schedulers never run the same job at
once; the outbox claims rows atomically besides, so nothing is sent twice either way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import zlib
from collections.abc import Callable, Iterator

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import text
from sqlalchemy.engine import Engine

from service.clock import utcnow
from service.deadlines.service import DeadlinePolicy
from service.flows.sweep import sweep
from service.flows.warn_instants import stamp as stamp_warn_instants
from service.notify.people import deliver_alerts
from service.notify.service import DeliveryPolicy, deliver_due
from service.rules import ServiceRules
from service.settings import Settings

log = logging.getLogger(__name__)


@contextlib.contextmanager
def job_lock(engine: Engine, name: str) -> Iterator[bool]:
    """True when this process may run `name` now (PostgreSQL advisory lock; SQLite runs on one machine)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = zlib.crc32(f"hotline:{name}".encode())
    with engine.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        url=settings.callback_url,
        secret=settings.webhook_secret.get_secret_value(),
        timeout=settings.callback_timeout_seconds,
        max_attempts=settings.outbox_max_attempts,
        backoff_seconds=settings.outbox_backoff_seconds,
        backoff_max_seconds=settings.outbox_backoff_max_seconds,
    )


def run_sweep(engine: Engine, rules: ServiceRules, settings: Settings, now: Callable[[], dt.datetime] = utcnow) -> None:
    with job_lock(engine, "sweep") as mine:
        if not mine:
            return
        policy = DeadlinePolicy(rules)
        sweep(engine, rules, now=now(), policy=policy)
        stamp_warn_instants(engine, policy)
        deliver_alerts(engine, rules, settings.notify_webhooks, now=now(), calendar=policy.calendar)


def run_outbox(engine: Engine, settings: Settings, now: Callable[[], dt.datetime] = utcnow) -> None:
    with job_lock(engine, "outbox") as mine:
        if mine:
            deliver_due(engine, delivery_policy(settings), now=now)


def run_report_push(
    engine: Engine, rules: ServiceRules, settings: Settings, now: Callable[[], dt.datetime] = utcnow
) -> None:
    from service.reports.push import push_yesterday

    with job_lock(engine, "report") as mine:
        if mine:
            push_yesterday(engine, rules, settings.notify_webhooks, now=now())


def run_rollup(engine: Engine, rules: ServiceRules, now: Callable[[], dt.datetime] = utcnow) -> None:
    """Rebuild the report rollup's days that writes have touched, and build a month of history never built."""
    from service.reports.rollup import refresh

    with job_lock(engine, "rollup") as mine:
        if mine:
            done = refresh(engine, rules, now=now())
            if done.rebuilt or done.backfilled:
                log.info("report_rollup", extra={"rebuilt": done.rebuilt, "backfilled": done.backfilled})


def run_retrain(
    engine: Engine, rules: ServiceRules, settings: Settings, now: Callable[[], dt.datetime] = utcnow
) -> None:
    """The weekly retrain: once per ISO week whichever scheduler gets there first (a card records the week)."""
    from service.learning.registry import ModelStore
    from service.learning.retrain import retrain

    with job_lock(engine, "retrain") as mine:
        if not mine:
            return
        at = now()
        year, number, _ = at.isocalendar()
        week = f"{year}-W{number:02d}"
        store = ModelStore(settings.models_root, settings.model)
        if any(m.card.get("retrain", {}).get("week") == week for m in store.models()):
            return  # already done this week (by this or another scheduler)
        result = retrain(
            engine=engine,
            rules=rules,
            learning=rules.learning,
            store=store,
            corpus_path=settings.retrain_corpus,
            real_path=settings.retrain_real,
            now=at,
            actor="scheduler",
            notes={"week": week},
        )
        log.info("weekly_retrain", extra={"challenger": result.challenger_version, "promoted": result.promoted})


def _safe(job: Callable[[], None], name: str) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:  # a failing run is logged; the next interval tries again
            log.exception("job_failed", extra={"job": name})

    return run


def add_jobs(
    scheduler: BackgroundScheduler | BlockingScheduler, engine: Engine, rules: ServiceRules, settings: Settings
) -> None:
    options = {"coalesce": True, "max_instances": 1, "replace_existing": True, "misfire_grace_time": 30}
    scheduler.add_job(
        _safe(lambda: run_sweep(engine, rules, settings), "sweep"),
        "interval",
        seconds=settings.sweep_interval_seconds,
        id="sweep",
        **options,
    )
    scheduler.add_job(
        _safe(lambda: run_outbox(engine, settings), "outbox"),
        "interval",
        seconds=settings.outbox_interval_seconds,
        id="outbox",
        **options,
    )
    scheduler.add_job(
        _safe(lambda: run_rollup(engine, rules), "rollup"),
        "interval",
        seconds=settings.rollup_interval_seconds,
        id="rollup",
        **options,
    )
    # the leaders' daily report: yesterday's snapshot, stored and sent once, at the rules' local push time
    push = rules.reports.push_time
    scheduler.add_job(
        _safe(lambda: run_report_push(engine, rules, settings), "report_push"),
        "cron",
        hour=push.hour,
        minute=push.minute,
        timezone=rules.timezone,
        id="report_push",
        **(options | {"misfire_grace_time": 3600}),
    )
    if settings.retrain_weekly:
        # Sunday night, local time: the week's corrections are in and nobody is dispatching
        scheduler.add_job(
            _safe(lambda: run_retrain(engine, rules, settings), "retrain"),
            "cron",
            day_of_week="sun",
            hour=3,
            timezone=rules.timezone,
            id="retrain",
            **(options | {"misfire_grace_time": 6 * 3600}),
        )


def start_background(engine: Engine, rules: ServiceRules, settings: Settings) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler, engine, rules, settings)
    scheduler.start()
    return scheduler
