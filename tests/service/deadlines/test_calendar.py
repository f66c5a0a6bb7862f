"""Tests for the 12345 working-day calendar.

2026 facts relied on (chinesecalendar 1.11.0, matching the State Council
notice): 国庆 is Thu 2026-10-01 .. Wed 2026-10-07; its 调休 make-up workdays
are Sun 2026-09-20 and Sat 2026-10-10.  中秋 is Fri 2026-09-25 .. Sun
2026-09-27.  The library has no data for 2027 (or before 2004).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import chinese_calendar  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.deadlines import calendar as deadline_calendar
from service.deadlines.calendar import Deadline, WorkCalendar

SH = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
DAY = 86_400.0
MICROSECOND = timedelta(microseconds=1)

# No example database: the test run must not write files into the repo.
PROPERTY = settings(database=None, max_examples=150)


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def due_local(deadline: Deadline) -> datetime:
    return deadline.due.astimezone(SH)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar()


# --- 2026 official calendar -------------------------------------------------


@pytest.mark.parametrize("day", [date(2026, 10, d) for d in range(1, 8)])
def test_national_day_2026_is_seven_rest_days(cal: WorkCalendar, day: date) -> None:
    assert not cal.is_workday(day)


@pytest.mark.parametrize(
    ("day", "workday"),
    [
        (date(2026, 9, 20), True),  # Sunday, 调休 for 国庆
        (date(2026, 10, 10), True),  # Saturday, 调休 for 国庆
        (date(2026, 10, 11), False),  # ordinary Sunday right after
        (date(2026, 9, 19), False),  # ordinary Saturday before the make-up Sunday
        (date(2026, 9, 25), False),  # Friday, 中秋
        (date(2026, 9, 30), True),
        (date(2026, 10, 8), True),
    ],
)
def test_autumn_2026_official_days(cal: WorkCalendar, day: date, workday: bool) -> None:
    assert cal.is_workday(day) is workday


def test_ticket_before_national_day_lands_after_holiday(cal: WorkCalendar) -> None:
    deadline = cal.add_working_days(sh(2026, 9, 30, 10), 1)
    assert due_local(deadline) == sh(2026, 10, 8, 10)
    assert deadline.uncovered_years == ()


def test_make_up_saturday_counts_as_workday(cal: WorkCalendar) -> None:
    deadline = cal.add_working_days(sh(2026, 10, 9, 10), 1)
    assert due_local(deadline) == sh(2026, 10, 10, 10)


def test_make_up_sunday_counts_as_workday(cal: WorkCalendar) -> None:
    # Friday -> Saturday is rest -> Sunday 09-20 is a 调休 workday.
    assert due_local(cal.add_working_days(sh(2026, 9, 18, 12), 1)) == sh(2026, 9, 20, 12)


def test_mid_autumn_friday_is_skipped(cal: WorkCalendar) -> None:
    assert due_local(cal.add_working_days(sh(2026, 9, 24, 10), 1)) == sh(2026, 9, 28, 10)


def test_working_seconds_across_national_day(cal: WorkCalendar) -> None:
    # Sep 30, Oct 8, Oct 9 and make-up Sat Oct 10 are the only workdays.
    assert cal.working_seconds_between(sh(2026, 9, 30), sh(2026, 10, 11)) == 4 * DAY


# --- ordinary weeks ---------------------------------------------------------


def test_friday_afternoon_plus_one_is_monday_afternoon(cal: WorkCalendar) -> None:
    assert due_local(cal.add_working_days(sh(2026, 3, 13, 15), 1)) == sh(2026, 3, 16, 15)


def test_weekend_start_begins_counting_on_monday(cal: WorkCalendar) -> None:
    assert due_local(cal.add_working_days(sh(2026, 3, 14, 10), 1)) == sh(2026, 3, 17)


def test_deadline_ending_at_midnight_stays_on_the_workday(cal: WorkCalendar) -> None:
    # Monday 00:00 + 5 is Saturday 00:00, not the following Monday's start.
    assert due_local(cal.add_working_days(sh(2026, 3, 16), 5)) == sh(2026, 3, 21)


def test_fractional_days(cal: WorkCalendar) -> None:
    assert due_local(cal.add_working_days(sh(2026, 3, 13, 15), 0.5)) == sh(2026, 3, 16, 3)


@pytest.mark.parametrize("start", [sh(2026, 3, 14, 10), sh(2026, 3, 16, 9, 30)])
def test_zero_days_is_start_itself(cal: WorkCalendar, start: datetime) -> None:
    deadline = cal.add_working_days(start, 0)
    assert deadline.due == start
    assert deadline.uncovered_years == ()


def test_result_is_utc(cal: WorkCalendar) -> None:
    assert cal.add_working_days(sh(2026, 3, 13, 15), 1).due.tzinfo is UTC
    assert cal.add_hours(sh(2026, 3, 13, 15), 1).due.tzinfo is UTC


def test_working_seconds_between_basics(cal: WorkCalendar) -> None:
    assert cal.working_seconds_between(sh(2026, 3, 13, 15), sh(2026, 3, 16, 15)) == DAY
    assert cal.working_seconds_between(sh(2026, 3, 16, 15), sh(2026, 3, 13, 15)) == 0
    assert cal.working_seconds_between(sh(2026, 3, 16, 15), sh(2026, 3, 16, 15)) == 0


# --- coverage ---------------------------------------------------------------


def test_crossing_into_uncovered_2027(cal: WorkCalendar) -> None:
    deadline = cal.add_working_days(sh(2026, 12, 28, 9), 5)
    # Fallback treats Fri 2027-01-01 as a workday, then skips the weekend.
    assert due_local(deadline) == sh(2027, 1, 4, 9)
    assert deadline.uncovered_years == (2027,)


def test_uncovered_years_sorted_and_unique(cal: WorkCalendar) -> None:
    deadline = cal.add_working_days(sh(2027, 12, 29), 5)
    assert deadline.uncovered_years == (2027, 2028)


def test_years_before_library_range_are_uncovered(cal: WorkCalendar) -> None:
    assert cal.add_working_days(sh(2003, 12, 30), 5).uncovered_years == (2003,)
    assert not cal.is_covered(date(2003, 12, 31))
    assert cal.is_covered(date(2004, 1, 1))


def test_fully_covered_computation_reports_nothing(cal: WorkCalendar) -> None:
    assert cal.add_working_days(sh(2026, 12, 1, 9), 5).uncovered_years == ()


@pytest.mark.parametrize("year", [2099, 2999, 9999])
def test_far_future_never_raises(cal: WorkCalendar, year: int) -> None:
    deadline = cal.add_working_days(sh(year, 12, 1, 9), 15)
    assert deadline.uncovered_years == (year,)
    assert cal.working_seconds_between(sh(year, 12, 1, 9), deadline.due) == 15 * DAY


def test_is_covered(cal: WorkCalendar) -> None:
    assert cal.is_covered(date(2026, 10, 1))
    assert not cal.is_covered(date(2027, 1, 1))
    assert WorkCalendar(covered_years=[2027]).is_covered(date(2027, 6, 1))


@pytest.mark.parametrize(
    ("today", "covered_years", "expected"),
    [
        (date(2026, 6, 1), (), date(2026, 12, 31)),
        (date(2025, 6, 1), (), date(2026, 12, 31)),
        (date(2026, 6, 1), (2027, 2028), date(2028, 12, 31)),
        (date(2026, 6, 1), (2028,), date(2026, 12, 31)),  # gap in 2027
        (date(2027, 6, 1), (), date(2026, 12, 31)),  # nothing covered this year
    ],
)
def test_coverage_end(
    monkeypatch: pytest.MonkeyPatch,
    today: date,
    covered_years: tuple[int, ...],
    expected: date,
) -> None:
    monkeypatch.setattr(deadline_calendar, "_today", lambda _tz: today)
    assert WorkCalendar(covered_years=covered_years).coverage_end() == expected


# --- overrides ----------------------------------------------------------------


def test_extra_holiday_overrides_official_workday() -> None:
    cal = WorkCalendar(extra_holidays=[date(2026, 3, 16)])
    assert not cal.is_workday(date(2026, 3, 16))
    assert due_local(cal.add_working_days(sh(2026, 3, 13, 15), 1)) == sh(2026, 3, 17, 15)


def test_extra_workday_overrides_official_holiday() -> None:
    cal = WorkCalendar(extra_workdays=[date(2026, 10, 1)])
    assert cal.is_workday(date(2026, 10, 1))
    assert due_local(cal.add_working_days(sh(2026, 9, 30, 10), 1)) == sh(2026, 10, 1, 10)


def test_extra_workday_beats_extra_holiday() -> None:
    day = date(2026, 3, 16)
    assert WorkCalendar(extra_holidays=[day], extra_workdays=[day]).is_workday(day)


def test_overrides_accept_datetimes_as_days() -> None:
    assert not WorkCalendar(extra_holidays=[datetime(2026, 3, 16, 12)]).is_workday(date(2026, 3, 16))


def test_overrides_alone_do_not_vouch_for_a_year() -> None:
    cal = WorkCalendar(extra_holidays=[date(2027, 1, 1)])
    deadline = cal.add_working_days(sh(2026, 12, 28, 9), 5)
    assert due_local(deadline) == sh(2027, 1, 5, 9)
    assert deadline.uncovered_years == (2027,)


def test_covered_years_with_local_2027_data_clears_uncovered() -> None:
    cal = WorkCalendar(extra_holidays=[date(2027, 1, 1)], covered_years=[2027])
    deadline = cal.add_working_days(sh(2026, 12, 28, 9), 5)
    assert due_local(deadline) == sh(2027, 1, 5, 9)
    assert deadline.uncovered_years == ()


# --- input validation -------------------------------------------------------


def test_naive_datetimes_rejected(cal: WorkCalendar) -> None:
    naive, aware = datetime(2026, 3, 13, 15), sh(2026, 3, 13, 15)
    with pytest.raises(ValueError, match="naive"):
        cal.add_working_days(naive, 1)
    with pytest.raises(ValueError, match="naive"):
        cal.add_hours(naive, 1)
    with pytest.raises(ValueError, match="naive"):
        cal.working_seconds_between(naive, aware)
    with pytest.raises(ValueError, match="naive"):
        cal.working_seconds_between(aware, naive)


@pytest.mark.parametrize("amount", [-1.0, math.nan, math.inf])
def test_bad_durations_rejected(cal: WorkCalendar, amount: float) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        cal.add_working_days(sh(2026, 3, 13), amount)
    with pytest.raises(ValueError, match="non-negative"):
        cal.add_hours(sh(2026, 3, 13), amount)


# --- timezones --------------------------------------------------------------


def test_utc_input_is_interpreted_in_shanghai(cal: WorkCalendar) -> None:
    # 07:00 UTC is 15:00 on Friday in Shanghai.
    deadline = cal.add_working_days(datetime(2026, 3, 13, 7, tzinfo=UTC), 1)
    assert deadline.due == datetime(2026, 3, 16, 7, tzinfo=UTC)


def test_foreign_input_uses_shanghai_days(cal: WorkCalendar) -> None:
    # Fri 20:00 EDT in New York is already Saturday 08:00 in Shanghai.
    deadline = cal.add_working_days(datetime(2026, 3, 13, 20, tzinfo=NEW_YORK), 1)
    assert due_local(deadline) == sh(2026, 3, 17)


def test_foreign_dst_change_does_not_shift_deadline(cal: WorkCalendar) -> None:
    # US clocks spring forward on Sun 2026-03-08; Shanghai has no DST, so the
    # deadline is exactly 24 Shanghai hours of workday later.
    start = datetime(2026, 3, 6, 9, tzinfo=NEW_YORK)  # Fri 22:00 Shanghai
    deadline = cal.add_working_days(start, 1)
    assert due_local(deadline) == sh(2026, 3, 9, 22)
    assert deadline.due.astimezone(NEW_YORK).hour == 10


def test_fixed_offset_input(cal: WorkCalendar) -> None:
    start = datetime(2026, 3, 13, 12, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert cal.add_working_days(start, 1).due == start + timedelta(days=3)


def test_configured_dst_zone_uses_real_day_length() -> None:
    # Berlin's Sun 2026-03-29 has 23 hours.  Make it the only workday between
    # Saturday and Tuesday so the day length, not a clipped window, is measured.
    berlin = ZoneInfo("Europe/Berlin")
    cal = WorkCalendar(extra_workdays=[date(2026, 3, 29)], extra_holidays=[date(2026, 3, 30)], timezone="Europe/Berlin")
    seconds = cal.working_seconds_between(datetime(2026, 3, 28, tzinfo=berlin), datetime(2026, 3, 31, tzinfo=berlin))
    assert seconds == 23 * 3600
    # The missing hour is made up on Tuesday.
    due = cal.add_working_days(datetime(2026, 3, 29, tzinfo=berlin), 1).due
    assert due == datetime(2026, 3, 31, 1, tzinfo=berlin)


# --- add_hours ----------------------------------------------------------------


def test_add_hours_ignores_calendar(cal: WorkCalendar) -> None:
    deadline = cal.add_hours(sh(2026, 9, 30, 10), 48)
    assert due_local(deadline) == sh(2026, 10, 2, 10)
    assert deadline.uncovered_years == ()


def test_add_hours_in_uncovered_year_reports_nothing(cal: WorkCalendar) -> None:
    deadline = cal.add_hours(sh(2027, 12, 31, 23), 2.5)
    assert deadline.due == sh(2028, 1, 1, 1, 30)
    assert deadline.uncovered_years == ()


# --- speed --------------------------------------------------------------------


def test_fifteen_days_is_fast(cal: WorkCalendar) -> None:
    start = sh(2026, 9, 24, 15)
    cal.add_working_days(start, 15)  # warm the per-day caches
    runs = 200
    best = min(_time_calls(cal, start, runs) for _ in range(5))
    # Generous bound for slow CI; a per-second or per-minute walk is >1000x slower.
    assert best / runs < 200e-6


def _time_calls(cal: WorkCalendar, start: datetime, runs: int) -> float:
    began = time.perf_counter()
    for _ in range(runs):
        cal.add_working_days(start, 15)
    return time.perf_counter() - began


# --- properties -----------------------------------------------------------------

ZONES: list[tzinfo] = [UTC, SH, NEW_YORK, timezone(timedelta(hours=-3, minutes=-30))]
starts = st.datetimes(
    min_value=datetime(2003, 6, 1),
    max_value=datetime(2031, 12, 31),
    timezones=st.sampled_from(ZONES),
    allow_imaginary=False,
)
day_counts = st.one_of(
    st.integers(min_value=0, max_value=40),
    st.floats(min_value=0, max_value=40, allow_nan=False, allow_infinity=False),
)
PROPERTY_CAL = WorkCalendar()


@PROPERTY
@given(start=starts, days=day_counts)
def test_due_never_before_start(start: datetime, days: float) -> None:
    assert PROPERTY_CAL.add_working_days(start, days).due >= start


@PROPERTY
@given(start=starts, a=day_counts, b=day_counts)
def test_monotonic_in_days(start: datetime, a: float, b: float) -> None:
    low, high = sorted((a, b))
    due_low = PROPERTY_CAL.add_working_days(start, low).due
    assert due_low <= PROPERTY_CAL.add_working_days(start, high).due


@PROPERTY
@given(start=starts, days=day_counts)
def test_working_seconds_round_trip_and_earliest(start: datetime, days: float) -> None:
    due = PROPERTY_CAL.add_working_days(start, days).due
    elapsed = PROPERTY_CAL.working_seconds_between(start, due)
    assert abs(elapsed - days * DAY) <= 1e-6
    if due > start:
        # One microsecond earlier must fall short, so due is the earliest.
        assert PROPERTY_CAL.working_seconds_between(start, due - MICROSECOND) < elapsed


@PROPERTY
@given(start=starts, days=day_counts)
def test_due_not_inside_rest_day(start: datetime, days: float) -> None:
    local = PROPERTY_CAL.add_working_days(start, days).due.astimezone(SH)
    at_midnight = local == local.replace(hour=0, minute=0, second=0, microsecond=0)
    # datetimes resolve microseconds, so anything shorter is effectively n == 0.
    effectively_zero = days * DAY < 1e-6
    assert effectively_zero or at_midnight or PROPERTY_CAL.is_workday(local.date())


@PROPERTY
@given(start=starts, days=st.integers(min_value=1, max_value=15))
def test_uncovered_years_only_lists_fallback_years(start: datetime, days: int) -> None:
    deadline = PROPERTY_CAL.add_working_days(start, days)
    first, last = start.astimezone(SH).year, deadline.due.astimezone(SH).year
    uncovered = [y for y in range(first, last + 1) if not PROPERTY_CAL.is_covered(date(y, 1, 1))]
    # `last` may only have been touched at its 00:00 boundary, so it is optional.
    assert list(deadline.uncovered_years) in (uncovered, [y for y in uncovered if y != last])


def _reference_workday(day: date, holidays: frozenset[date], workdays: frozenset[date]) -> bool:
    if day in workdays:
        return True
    if day in holidays:
        return False
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def _reference_due(start: datetime, days: int, holidays: frozenset[date], workdays: frozenset[date]) -> datetime:
    # Deliberately naive hour-by-hour walk, independent of the module's logic.
    moment, counted = start, 0
    while counted < days * 24:
        if _reference_workday(moment.astimezone(SH).date(), holidays, workdays):
            counted += 1
        moment += timedelta(hours=1)
    return moment


autumn_days = st.frozensets(st.dates(min_value=date(2026, 9, 15), max_value=date(2027, 1, 20)), max_size=8)


@PROPERTY
@given(
    start=st.datetimes(min_value=datetime(2026, 9, 15), max_value=datetime(2026, 12, 31)),
    days=st.integers(min_value=0, max_value=10),
    holidays=autumn_days,
    workdays=autumn_days,
)
def test_matches_hour_by_hour_reference(
    start: datetime, days: int, holidays: frozenset[date], workdays: frozenset[date]
) -> None:
    aligned = start.replace(minute=0, second=0, microsecond=0, tzinfo=SH)
    cal = WorkCalendar(extra_holidays=holidays, extra_workdays=workdays)
    expected = _reference_due(aligned, days, holidays, workdays)
    assert cal.add_working_days(aligned, days).due == expected
