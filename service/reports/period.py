"""The one rule for a report's period, for the API and the page alike: dates within 2000–2099, the end not before
the start, and at most 366 days counted inclusively (a leap year)."""

from __future__ import annotations

import datetime as dt

from service.errors import InvalidInputError

MAX_DAYS = 366
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2099, 12, 31)


def check_period(start: dt.date, end: dt.date | None, *, start_field: str = "date", end_field: str = "end") -> None:
    """Raise InvalidInputError naming the field when the period is not one a report can cover."""
    for name, value in ((start_field, start), (end_field, end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise InvalidInputError(name, f"日期须在 {EARLIEST} 至 {LATEST} 之间")
    if end is not None and (end < start or (end - start).days + 1 > MAX_DAYS):
        raise InvalidInputError(end_field, f"结束日期不能早于开始日期，且跨度不超过 {MAX_DAYS} 天（含首尾）")
