"""Traffic lights (红黄绿灯) of a ticket's two clocks: which clocks still run for it, and how close each is."""

from __future__ import annotations

import datetime as dt

from service.deadlines.service import DeadlinePolicy
from service.tickets.models import OPEN_STATES, State, Ticket

# The first-contact clock runs until contact is recorded; these states still owe it.
CONTACT_OWED = frozenset({State.dispatched, State.accepted, State.reopened, State.pending_review, State.returned})


def contact_owed(ticket: Ticket) -> bool:
    return bool(ticket.first_contact_due) and ticket.first_contact_at is None and State(ticket.state) in CONTACT_OWED


def _starts(ticket: Ticket) -> tuple[dt.datetime, dt.datetime]:
    """Where the 先行联系 and the 办结 clock start."""
    start = ticket.resolve_clock_start or ticket.created_at
    # a 重办 round's 先行联系 clock starts with the round; the original one at the original start
    return (start if ticket.reopen_count else (ticket.clock_start or ticket.created_at)), start


def lights(ticket: Ticket, policy: DeadlinePolicy, now: dt.datetime) -> dict[str, str]:
    """Lights of the clocks that still run for this ticket: {"contact": …, "resolve": …}."""
    result: dict[str, str] = {}
    if State(ticket.state) not in OPEN_STATES:
        return result
    contact_start, start = _starts(ticket)
    if ticket.first_contact_due and contact_owed(ticket):
        result["contact"] = policy.light(
            start=contact_start, due=ticket.first_contact_due, now=now, basis=ticket.contact_basis
        )
    if ticket.resolve_due:
        result["resolve"] = policy.light(start=start, due=ticket.resolve_due, now=now, basis=ticket.resolve_basis)
    return result


def warn_instants(ticket: Ticket, policy: DeadlinePolicy) -> tuple[dt.datetime | None, dt.datetime | None]:
    """When the 先行联系 and the 办结 light turn yellow (None: no such clock); the light is red after the due."""
    contact_start, start = _starts(ticket)
    contact = resolve = None
    if ticket.first_contact_due:
        contact = policy.warn_at(start=contact_start, due=ticket.first_contact_due, basis=ticket.contact_basis)
    if ticket.resolve_due:
        resolve = policy.warn_at(start=start, due=ticket.resolve_due, basis=ticket.resolve_basis)
    return contact, resolve
