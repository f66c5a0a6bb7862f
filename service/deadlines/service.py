"""Ticket clocks (先行联系 and 办结 deadlines) from the rules file and the working-day calendar."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.metadata
import json
import logging
from dataclasses import dataclass

from classifier.config import Clock
from service.deadlines.calendar import Deadline, WorkCalendar
from service.rules import ServiceRules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clocks:
    first_contact_due: dt.datetime
    resolve_due: dt.datetime
    uncovered_years: tuple[int, ...]
    # "working" when the due instant came from working-day arithmetic, "hours" when from plain time
    contact_basis: str = "working"
    resolve_basis: str = "working"


def _basis(clock: Clock) -> str:
    return "working" if clock.working_days is not None else "hours"


def _clocks(
    contact: Deadline,
    contact_due: dt.datetime,
    contact_basis: str,
    resolve: Deadline,
    resolve_due: dt.datetime,
    resolve_basis: str,
) -> Clocks:
    if resolve_due < contact_due:
        # contact can never be owed after the 办结 it precedes
        contact_due, contact_basis = resolve_due, resolve_basis
    years = tuple(sorted(set(contact.uncovered_years) | set(resolve.uncovered_years)))
    return Clocks(
        first_contact_due=contact_due,
        resolve_due=resolve_due,
        uncovered_years=years,
        contact_basis=contact_basis,
        resolve_basis=resolve_basis,
    )


class DeadlinePolicy:
    def __init__(self, rules: ServiceRules) -> None:
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

    def _contact(self, *, start: dt.datetime, category: str | None, urgent: bool) -> tuple[Deadline, dt.datetime, str]:
        """The 先行联系 clock of a category from `start`: its deadline and basis (the first action may be sooner)."""
        rules = self.rules.deadlines
        cat = self.rules.categories.get(category) if category else None
        clock = (
            rules.first_contact_urgent
            if urgent
            else (cat.first_contact if cat and cat.first_contact else rules.first_contact)
        )
        contact = self.add(start, clock)
        due, basis = contact.due, _basis(clock)
        if cat is not None and cat.first_action_hours is not None:
            # "冒头就打": first action within N hours whatever the calendar
            first_action = start + dt.timedelta(hours=cat.first_action_hours)
            if first_action < due:
                due, basis = first_action, "hours"
        return contact, due, basis

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
        contact, contact_due, contact_basis = self._contact(start=start, category=category, urgent=urgent)
        resolve_clock = cat.resolve if cat and cat.resolve else rules.resolve_by_kind[kind or rules.default_kind]
        resolve = self.add(start, resolve_clock)
        resolve_due, resolve_basis = resolve.due, _basis(resolve_clock)
        if upstream is not None and upstream < resolve_due:
            resolve_due, resolve_basis = upstream, "hours"
        return _clocks(contact, contact_due, contact_basis, resolve, resolve_due, resolve_basis)

    def reopened(self, *, start: dt.datetime, category: str | None, urgent: bool) -> Clocks:
        """The clocks of a 重办 round from `start`: the category's 先行联系 clock and the 重办 办结 clock."""
        contact, contact_due, contact_basis = self._contact(start=start, category=category, urgent=urgent)
        resolve = self.reopen(start)
        basis = _basis(self.rules.deadlines.reopen)
        return _clocks(contact, contact_due, contact_basis, resolve, resolve.due, basis)

    def elapsed_fraction(self, *, start: dt.datetime, due: dt.datetime, now: dt.datetime, basis: str) -> float:
        """How much of the allowed time has passed: working time for working-day clocks, plain time otherwise."""
        if basis == "working":
            total = self.calendar.working_seconds_between(start, due)
            used = self.calendar.working_seconds_between(start, min(now, due))
        else:
            total = (due - start).total_seconds()
            used = (min(now, due) - start).total_seconds()
        if total <= 0:
            return 1.0 if now >= due else 0.0
        return max(0.0, used / total)

    def warn_at(self, *, start: dt.datetime, due: dt.datetime, basis: str) -> dt.datetime:
        """The instant light() turns yellow: the warning fraction of the clock's time (working or plain) passed."""
        share = self.rules.deadlines.warn_fraction
        if basis == "working":
            total = self.calendar.working_seconds_between(start, due)
            if total <= 0:
                return due
            return min(due, self.calendar.add_working_days(start, share * total / 86400).due)
        if due <= start:
            return due
        return start + (due - start) * share

    @functools.cached_property
    def warn_basis(self) -> str:
        """A fingerprint of what warn_at() depends on: the warning fraction and the calendar's working days."""
        cal = self.rules.calendar
        facts = {
            "warn_fraction": self.rules.deadlines.warn_fraction,
            "extra_holidays": sorted(map(str, cal.extra_holidays)),
            "extra_workdays": sorted(map(str, cal.extra_workdays)),
            "covered_years": sorted(cal.covered_years),
            "timezone": self.rules.timezone,
            "official": importlib.metadata.version("chinesecalendar"),
        }
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]

    def light(self, *, start: dt.datetime, due: dt.datetime, now: dt.datetime, basis: str) -> str:
        """Traffic light: red once overdue, yellow from the warning fraction on (临期), green before."""
        if now > due:
            return "red"
        fraction = self.elapsed_fraction(start=start, due=due, now=now, basis=basis)
        return "yellow" if fraction >= self.rules.deadlines.warn_fraction else "green"

    def reopen(self, start: dt.datetime) -> Deadline:
        return self.add(start, self.rules.deadlines.reopen)

    def extended(self, *, start: dt.datetime, current_due: dt.datetime, days: float) -> Deadline:
        """The resolve deadline after an approved extension, capped at the configured total from the clocks' start."""
        wanted = self.calendar.add_working_days(current_due, days)
        cap = self.add(start, self.rules.deadlines.extension_max_total)
        due = min(wanted.due, cap.due)
        years = tuple(sorted(set(wanted.uncovered_years) | set(cap.uncovered_years)))
        return Deadline(due=due, uncovered_years=years)

    def return_window_end(self, dispatched_at: dt.datetime) -> dt.datetime:
        return self.add(dispatched_at, self.rules.deadlines.return_window).due
