"""Ticket clocks (先行联系 and 办结 deadlines) from the rules file and the working-day calendar."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from classifier.config import Clock, Rules
from service.deadlines.calendar import Deadline, WorkCalendar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clocks:
    first_contact_due: dt.datetime
    resolve_due: dt.datetime
    uncovered_years: tuple[int, ...]


class DeadlinePolicy:
    def __init__(self, rules: Rules) -> None:
        extras = rules.calendar
        self.rules = rules
        self.calendar = WorkCalendar(
            extra_holidays=extras.extra_holidays,
            extra_workdays=extras.extra_workdays,
            covered_years=extras.covered_years,
            timezone=rules.timezone,
        )

    def add(self, start: dt.datetime, clock: Clock) -> Deadline:
        if clock.working_days is not None:
            result = self.calendar.add_working_days(start, clock.working_days)
        else:
            result = self.calendar.add_hours(start, clock.hours or 0.0)
        if result.uncovered_years:
            # never an error: the deadline is computed Monday–Friday and flagged on the ticket
            log.warning("calendar_estimated", extra={"years": list(result.uncovered_years)})
        return result

    def initial(
        self,
        *,
        start: dt.datetime,
        category: str | None,
        kind: str | None,
        urgent: bool,
        upstream: dt.datetime | None,
    ) -> Clocks:
        """Deadlines of a newly dispatched ticket; the stricter of ours and the hotline's wins."""
        rules = self.rules.deadlines
        cat = self.rules.categories.get(category) if category else None
        contact_clock = (
            rules.first_contact_urgent
            if urgent
            else (cat.first_contact if cat and cat.first_contact else rules.first_contact)
        )
        contact = self.add(start, contact_clock)
        contact_due = contact.due
        if cat is not None and cat.first_action_hours is not None:
            # "冒头就打": first action within N hours whatever the calendar
            contact_due = min(contact_due, start + dt.timedelta(hours=cat.first_action_hours))
        resolve_clock = cat.resolve if cat and cat.resolve else rules.resolve_by_kind[kind or rules.default_kind]
        resolve = self.add(start, resolve_clock)
        resolve_due = resolve.due if upstream is None else min(resolve.due, upstream)
        contact_due = min(contact_due, resolve_due)
        years = tuple(sorted(set(contact.uncovered_years) | set(resolve.uncovered_years)))
        return Clocks(first_contact_due=contact_due, resolve_due=resolve_due, uncovered_years=years)

    def reopen(self, start: dt.datetime) -> Deadline:
        return self.add(start, self.rules.deadlines.reopen)

    def extended(self, *, dispatched_at: dt.datetime, current_due: dt.datetime, days: float) -> Deadline:
        """The resolve deadline after an approved extension, capped at the configured total."""
        wanted = self.calendar.add_working_days(current_due, days)
        cap = self.add(dispatched_at, self.rules.deadlines.extension_max_total)
        due = min(wanted.due, cap.due)
        years = tuple(sorted(set(wanted.uncovered_years) | set(cap.uncovered_years)))
        return Deadline(due=due, uncovered_years=years)

    def return_window_end(self, dispatched_at: dt.datetime) -> dt.datetime:
        return self.add(dispatched_at, self.rules.deadlines.return_window).due
