"""The scheduler's jobs: the sweep, the outbox and the leaders' daily report push at the rules' local time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

from service.scheduler import add_jobs
from service.state import AppState


def test_the_daily_report_is_pushed_at_the_rules_local_time(state: AppState) -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler, state.engine, state.rules, state.settings)
    assert {"sweep", "outbox", "report_push"} <= {job.id for job in scheduler.get_jobs()}
    job = scheduler.get_job("report_push")
    assert job is not None
    zone = ZoneInfo(state.rules.timezone)
    after = dt.datetime(2026, 12, 3, 8, 31, tzinfo=zone)  # just after today's push: the next one is tomorrow's
    fire = job.trigger.get_next_fire_time(None, after)
    assert fire is not None and fire.astimezone(zone) == dt.datetime(2026, 12, 4, 8, 30, tzinfo=zone)
    utc = fire.astimezone(dt.UTC)
    assert (utc.hour, utc.minute) == (0, 30)  # 08:30 in Shanghai is 00:30 UTC, whatever the machine's zone
