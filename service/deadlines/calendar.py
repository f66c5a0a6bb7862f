"""Working-day calendar for 12345 hotline ticket deadlines.

A deadline of "n working days" is measured in whole local days: every second
of a local calendar day that is a workday counts, every second of a rest day
counts zero.  Official holidays and 调休 make-up days come from
``chinese_calendar``; for years it has no data for we fall back to Monday to
Friday and report those years so callers can flag the deadline as provisional.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import chinese_calendar  # type: ignore[import-untyped, unused-ignore]

from service.clock import today_in

_K = TypeVar("_K")
_V = TypeVar("_V")

_ONE_DAY = timedelta(days=1)
_ONE_HOUR = timedelta(hours=1)
_MIDNIGHT = time()
# Real traffic touches a few hundred days; the cap only stops arbitrary
# caller-supplied dates from growing a long-lived calendar without bound.
_CACHE_LIMIT = 100_000


@dataclass(frozen=True)
class Deadline:
    """A computed due instant plus the years whose calendar had to be guessed."""

    due: datetime
    uncovered_years: tuple[int, ...]


class _DayFacts(NamedTuple):
    workday: bool
    covered: bool
    # Fallback decided the day and nobody vouched for its year: the caller
    # must learn about it through Deadline.uncovered_years.
    guessed: bool


def _today(tz: ZoneInfo) -> date:
    # Module-level so tests can pin "today" for coverage_end().
    return today_in(tz)


def _official_workday(day: date) -> bool | None:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        # The library's own "no data" signal; relying on it instead of a
        # hard-coded year range lets a library upgrade extend coverage.
        return None


def _memo(cache: dict[_K, _V], key: _K, compute: Callable[[_K], _V]) -> _V:
    value = cache.get(key)
    if value is None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        value = cache[key] = compute(key)
    return value


def _plain_date(day: date) -> date:
    # datetime is a date subclass but never equals a date, so it would
    # silently miss every set/cache lookup.
    return date(day.year, day.month, day.day)


def _require_aware(moment: datetime) -> None:
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime is ambiguous for a deadline: {moment!r}")


def _span(amount: float, unit: timedelta) -> timedelta:
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"duration must be finite and non-negative, got {amount!r}")
    # timedelta arithmetic is exact to the microsecond, unlike float seconds.
    return amount * unit


class WorkCalendar:
    """Decides workdays and walks working time in one local timezone."""

    def __init__(
        self,
        *,
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
        covered_years: Iterable[int] = (),
        timezone: str = "Asia/Shanghai",
    ) -> None:
        self._extra_holidays = frozenset(map(_plain_date, extra_holidays))
        self._extra_workdays = frozenset(map(_plain_date, extra_workdays))
        self._covered_years = frozenset(covered_years)
        self._tz = ZoneInfo(timezone)
        self._facts: dict[date, _DayFacts] = {}
        self._day_ends: dict[date, datetime] = {}

    def is_workday(self, day: date) -> bool:
        return self._facts_for(_plain_date(day)).workday

    def is_covered(self, day: date) -> bool:
        return self._facts_for(_plain_date(day)).covered

    def coverage_end(self) -> date:
        """Last day of the unbroken run of covered years starting this year."""
        year = _today(self._tz).year
        # chinese_calendar publishes and range-checks whole years, so one
        # probe per year is exact.
        while year <= MAXYEAR and self.is_covered(date(year, 1, 1)):
            year += 1
        return date(year - 1, 12, 31)

    def add_working_days(self, start: datetime, days: float) -> Deadline:
        """Earliest instant at which ``days`` whole working days have elapsed."""
        _require_aware(start)
        remaining = _span(days, _ONE_DAY)
        cursor = start.astimezone(UTC)
        if not remaining:
            # Even a rest-day start is already "due": nothing needs to elapse.
            return Deadline(cursor, ())
        day = cursor.astimezone(self._tz).date()
        guessed: set[int] = set()
        while True:
            facts, day_end = self._facts_for(day), self._end_of(day)
            if facts.guessed:
                guessed.add(day.year)
            if facts.workday:
                available = day_end - cursor
                # "<=" so a deadline ending exactly at midnight stays on the
                # workday instead of jumping to the next workday's start.
                if remaining <= available:
                    return Deadline(cursor + remaining, tuple(sorted(guessed)))
                remaining -= available
            cursor, day = day_end, day + _ONE_DAY

    def add_hours(self, start: datetime, hours: float) -> Deadline:
        """Plain elapsed hours, used where the rule says "whatever the calendar"."""
        _require_aware(start)
        return Deadline(start.astimezone(UTC) + _span(hours, _ONE_HOUR), ())

    def working_seconds_between(self, start: datetime, end: datetime) -> float:
        _require_aware(start)
        _require_aware(end)
        cursor, stop = start.astimezone(UTC), end.astimezone(UTC)
        day = cursor.astimezone(self._tz).date()
        total = timedelta()
        while cursor < stop:
            day_end = self._end_of(day)
            if self._facts_for(day).workday:
                total += min(day_end, stop) - cursor
            cursor, day = day_end, day + _ONE_DAY
        return total.total_seconds()

    def _facts_for(self, day: date) -> _DayFacts:
        return _memo(self._facts, day, self._resolve)

    def _resolve(self, day: date) -> _DayFacts:
        official = _official_workday(day)
        covered = official is not None or day.year in self._covered_years
        # Order matters: local overrides beat official data, which beats the
        # weekday guess.
        if day in self._extra_workdays:
            return _DayFacts(workday=True, covered=covered, guessed=False)
        if day in self._extra_holidays:
            return _DayFacts(workday=False, covered=covered, guessed=False)
        if official is not None:
            return _DayFacts(workday=official, covered=True, guessed=False)
        return _DayFacts(workday=day.weekday() < 5, covered=covered, guessed=not covered)

    def _end_of(self, day: date) -> datetime:
        return _memo(self._day_ends, day, self._next_midnight_utc)

    def _next_midnight_utc(self, day: date) -> datetime:
        # Converting through the zone (not adding 24h) keeps day lengths
        # right even if a zone with DST is configured.
        local = datetime.combine(day + _ONE_DAY, _MIDNIGHT, tzinfo=self._tz)
        return local.astimezone(UTC)
