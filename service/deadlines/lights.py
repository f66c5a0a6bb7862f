"""Traffic lights (红黄绿灯) of a ticket's two clocks: which clocks still run for it, and how close each is."""

from __future__ import annotations

import datetime as dt

from service.deadlines.service import DeadlinePolicy
from service.tickets.models import OPEN_STATES, State, Ticket

# The first-contact clock runs until contact is recorded; these states still owe it.
_CONTACT_OWED = frozenset({State.dispatched, State.accepted, State.reopened, State.pending_review, State.returned})


def lights(ticket: Ticket, policy: DeadlinePolicy, now: dt.datetime) -> dict[str, str]:
    """Lights of the clocks that still run for this ticket: {"contact": …, "resolve": …}."""
    result: dict[str, str] = {}
    if State(ticket.state) not in OPEN_STATES:
        return result
    start = ticket.resolve_clock_start or ticket.created_at
    if ticket.first_contact_due and ticket.first_contact_at is None and State(ticket.state) in _CONTACT_OWED:
        # a 重办 round's 先行联系 clock starts with the round; the original one at the original start
        start_contact = start if ticket.reopen_count else (ticket.clock_start or ticket.created_at)
        result["contact"] = policy.light(
            start=start_contact, due=ticket.first_contact_due, now=now, basis=ticket.contact_basis
        )
    if ticket.resolve_due:
        result["resolve"] = policy.light(start=start, due=ticket.resolve_due, now=now, basis=ticket.resolve_basis)
    return result
