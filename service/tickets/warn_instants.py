"""A write that moves a ticket's clock clears its stored 临期 instants (docs/SCALING.md#派单审核队列).

The instants a ticket's lights turn yellow are worked out by the sweep job (service/flows/warn_instants.py) and kept on
the ticket for the dispatcher queue's query. This hook sees every ORM flush: when one of the values those instants
are computed from changes, it clears `warn_basis` in the same UPDATE, so the queue never reads a stale instant: it
works such a ticket's lights out itself until the job has caught up.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from service.tickets.models import Ticket

# what service.deadlines.lights.warn_instants reads
WARN_INPUTS = (
    "created_at",
    "clock_start",
    "resolve_clock_start",
    "reopen_count",
    "first_contact_due",
    "resolve_due",
    "contact_basis",
    "resolve_basis",
)


def _moved_clock(obj: Ticket) -> bool:
    attrs = inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in WARN_INPUTS)


@event.listens_for(Session, "before_flush")
def _clear_moved(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in session.dirty:
        if isinstance(obj, Ticket) and _moved_clock(obj):
            obj.warn_basis = None
            # written even when this session read it empty: the job may have stamped the row since (a stamp does
            # not bump the version, so this write still goes through and must clear it)
            flag_modified(obj, "warn_basis")
