"""Ticket clocks from rules.yaml: kinds, urgency, 冒头就打, upstream deadlines, extensions, 2027 fallback."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from service.deadlines.service import DeadlinePolicy
from service.rules import ServiceRules

SH = ZoneInfo("Asia/Shanghai")


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


def test_complaint_before_national_day_skips_the_holiday(rules: ServiceRules) -> None:
    clocks = DeadlinePolicy(rules).initial(
        start=at(2026, 9, 30, 10), category="garbage", kind="投诉", urgent=False, upstream=None
    )
    # 9-30 is one working day; 10-01..07 are holidays; 10-08, 10-09 and the 调休 Saturday 10-10 work
    assert clocks.first_contact_due == at(2026, 10, 8, 10)
    assert clocks.resolve_due == at(2026, 10, 13, 10)
    assert clocks.uncovered_years == ()


def test_consultation_urgent_and_first_action_clocks(rules: ServiceRules) -> None:
    policy = DeadlinePolicy(rules)
    friday = at(2026, 11, 20, 15)
    consult = policy.initial(start=friday, category="other", kind="咨询", urgent=False, upstream=None)
    assert consult.resolve_due == at(2026, 11, 23, 15)
    urgent = policy.initial(start=friday, category="road_facility", kind="求助", urgent=True, upstream=None)
    assert urgent.first_contact_due == friday + dt.timedelta(hours=2)
    renting = policy.initial(start=friday, category="group_renting", kind="投诉", urgent=False, upstream=None)
    assert renting.first_contact_due == friday + dt.timedelta(hours=24)


def test_stricter_upstream_deadline_wins(rules: ServiceRules) -> None:
    start = at(2026, 11, 16, 9)
    upstream = at(2026, 11, 17, 12)
    clocks = DeadlinePolicy(rules).initial(
        start=start, category="parking", kind="投诉", urgent=False, upstream=upstream
    )
    assert clocks.resolve_due == upstream
    assert clocks.first_contact_due <= upstream


def test_year_without_calendar_data_is_computed_and_flagged(rules: ServiceRules) -> None:
    clocks = DeadlinePolicy(rules).initial(
        start=at(2026, 12, 28, 9), category="parking", kind="投诉", urgent=False, upstream=None
    )
    assert clocks.resolve_due == at(2027, 1, 4, 9)
    assert clocks.uncovered_years == (2027,)


def test_rules_can_add_next_years_holidays(rules: ServiceRules) -> None:
    calendar = rules.calendar.model_copy(update={"extra_holidays": (dt.date(2027, 1, 1),), "covered_years": (2027,)})
    policy = DeadlinePolicy(rules.model_copy(update={"calendar": calendar}))
    clocks = policy.initial(start=at(2026, 12, 28, 9), category="parking", kind="投诉", urgent=False, upstream=None)
    assert clocks.resolve_due == at(2027, 1, 5, 9)
    assert clocks.uncovered_years == ()


def test_extension_is_capped_at_fifteen_working_days(rules: ServiceRules) -> None:
    policy = DeadlinePolicy(rules)
    dispatched = at(2026, 11, 2, 9)
    current = at(2026, 11, 9, 9)
    extended = policy.extended(start=dispatched, current_due=current, days=30)
    assert extended.due == at(2026, 11, 23, 9)
    small = policy.extended(start=dispatched, current_due=current, days=2)
    assert small.due == at(2026, 11, 11, 9)
