"""The one wall clock. Code that serves a request uses the app's injectable `AppState.clock` (which defaults to
this); jobs, the CLI and data-access defaults use `utcnow`. Nothing else calls `datetime.now`."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def today_in(zone: ZoneInfo, now: dt.datetime | None = None) -> dt.date:
    """The calendar date in `zone` at `now` (default: the wall clock)."""
    return (now or utcnow()).astimezone(zone).date()
