"""Stamp open tickets with the instants their lights turn yellow (临期), for the dispatcher queue's query.

Run by the sweep job. A ticket is stamped when it is open and its `warn_basis` is not the current calendar's: new
tickets, tickets whose clock a write just moved (service/tickets/warn_instants.py cleared it), and every open
ticket once after the calendar or the warning share changed. The UPDATE is a plain one on the row's version and
does not bump it: a person's concurrent write is never turned into a conflict, and a stamp worked out from values
that changed meanwhile matches no row and is left for the next run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.deadlines.lights import warn_instants
from service.deadlines.service import DeadlinePolicy
from service.tickets.models import OPEN_STATES, Ticket

BATCH = 2000


def stamp(engine: Engine, policy: DeadlinePolicy, *, batch: int = BATCH) -> int:
    """Stamp every open ticket not stamped under the current calendar, a batch per transaction; how many."""
    basis = policy.warn_basis
    table = Ticket.__table__  # type: ignore[attr-defined]
    write = (
        update(table)
        .where(table.c.id == bindparam("tid"), table.c.version == bindparam("seen"))
        .values(contact_warn_at=bindparam("contact"), resolve_warn_at=bindparam("resolve"), warn_basis=basis)
    )
    done, after = 0, 0
    while True:
        with Session(engine) as session:
            found = session.exec(
                select(Ticket)
                .where(
                    col(Ticket.state).in_([str(s) for s in OPEN_STATES]),
                    or_(col(Ticket.warn_basis).is_(None), col(Ticket.warn_basis) != basis),
                    col(Ticket.id) > after,
                )
                .order_by(col(Ticket.id))
                .limit(batch)
            ).all()
            if not found:
                return done
            rows: list[dict[str, Any]] = []
            for ticket in found:
                contact, resolve = warn_instants(ticket, policy)
                rows.append({"tid": ticket.id, "seen": ticket.version, "contact": contact, "resolve": resolve})
            session.connection().execute(write, rows)
            session.commit()
        done += len(rows)
        after = int(rows[-1]["tid"])
