"""The scheduler's jobs: the sweep, the outbox and the leaders' daily report push at the rules' local time."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import Session, select

from service.reports.models import ReportSnapshot
from service.scheduler import add_jobs
from service.state import AppState
from tests.conftest import receive
from tests.service.notify.receiver import robot


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


def test_the_scheduler_holds_every_job_the_settings_ask_for(state: AppState) -> None:
    settings = state.settings.model_copy(
        update={
            "retrain_weekly": True,
            "sweep_interval_seconds": 30,
            "outbox_interval_seconds": 7,
            "rollup_interval_seconds": 90,
        }
    )
    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler, state.engine, state.rules, settings)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"sweep", "outbox", "rollup", "report_push", "retrain"}
    assert jobs["sweep"].trigger.interval == dt.timedelta(seconds=30)
    assert jobs["rollup"].trigger.interval == dt.timedelta(seconds=90)
    assert jobs["outbox"].trigger.interval == dt.timedelta(seconds=7)
    without = BackgroundScheduler(timezone="UTC")
    add_jobs(without, state.engine, state.rules, state.settings)
    assert "retrain" not in {job.id for job in without.get_jobs()}  # only when the settings ask for it


def test_the_running_scheduler_pushes_yesterdays_report_to_the_robot_at_push_time(state: AppState) -> None:
    """On a simulated clock two seconds before 08:30 Shanghai time, the started scheduler fires the push itself."""
    import time_machine

    zone = ZoneInfo(state.rules.timezone)
    receive(state, "PUSH1", dt.datetime(2026, 12, 2, 10, tzinfo=zone), "上南二村有二房东按床位出租，住了十几个人")
    received: list[dict[str, Any]] = []
    bot = robot(received)
    url = f"http://127.0.0.1:{bot.server_address[1]}/cgi-bin/webhook/send"
    settings = state.settings.model_copy(update={"notify_webhooks": {"leaders": [url]}})
    try:
        with time_machine.travel(dt.datetime(2026, 12, 3, 8, 29, 58, tzinfo=zone), tick=True):
            scheduler = BackgroundScheduler(timezone="UTC")
            add_jobs(scheduler, state.engine, state.rules, settings)
            scheduler.start()
            try:
                waited = time.monotonic()
                while not received and time.monotonic() - waited < 20:
                    time.sleep(0.1)
                fired_at = dt.datetime.now(zone)
            finally:
                scheduler.shutdown(wait=True)
    finally:
        bot.shutdown()
    assert len(received) == 1, received
    text = json.dumps(received[0], ensure_ascii=False)
    assert "2026-12-02" in text and "受理" in text
    assert dt.time(8, 30) <= fired_at.time() < dt.time(8, 31)
    with Session(state.engine) as s:
        snap = s.exec(select(ReportSnapshot)).one()
        assert snap.day == dt.date(2026, 12, 2) and snap.pushed
