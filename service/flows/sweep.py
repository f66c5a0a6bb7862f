"""The deadline sweep: traffic lights for both clocks, 临期预警 and 超期 alerts, escalation (督办).

Module-level jobs that open their own sessions and take "now" from the caller, so they run the same from the
scheduler, `hotline sweep` and tests. Idempotent: alerts are unique per ticket, clock, kind and round, and an
escalation happens once per round; two processes sweeping at once change nothing more than one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col, select

from service.deadlines.lights import lights
from service.deadlines.service import DeadlinePolicy
from service.notify.models import Alert
from service.rules import ServiceRules
from service.tickets.models import OPEN_STATES, Ticket
from service.tickets.service import system_event

log = logging.getLogger(__name__)


def _alert(session: Session, ticket: Ticket, clock: str, kind: str, now: dt.datetime) -> bool:
    """Record an alert once; False when it already exists (also when another sweep just wrote it)."""
    assert ticket.id is not None
    existing = session.exec(
        select(Alert.id).where(
            Alert.ticket_id == ticket.id, Alert.clock == clock, Alert.kind == kind, Alert.round == ticket.reopen_count
        )
    ).first()
    if existing is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                Alert(
                    ticket_id=ticket.id,
                    clock=clock,
                    kind=kind,
                    round=ticket.reopen_count,
                    office=ticket.office,
                    created_at=now,
                    next_attempt_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def _escalate(session: Session, ticket: Ticket, policy: DeadlinePolicy, rules: ServiceRules, now: dt.datetime) -> bool:
    assert ticket.resolve_due is not None
    threshold = policy.add(ticket.resolve_due, rules.deadlines.escalate_after).due
    if ticket.supervised_at is not None or now <= threshold:
        return False
    supervised = policy.add(now, rules.deadlines.supervise)
    before = ticket.resolve_due
    # a clock of its own: resolve_due stays, so the ticket stays overdue and a late 办结 counts as late
    ticket.supervised_at = now
    ticket.supervise_due = supervised.due
    ticket.calendar_estimated = ticket.calendar_estimated or bool(supervised.uncovered_years)
    ticket.updated_at = now
    session.add(ticket)
    data = {"overdue_due": before.isoformat(), "supervise_due": supervised.due.isoformat()}
    session.add(system_event(ticket, action="supervise", note="超期升级督办", data=data, now=now))
    _alert(session, ticket, "resolve", "escalated", now)
    return True


def sweep(
    engine: Engine, rules: ServiceRules, *, now: dt.datetime, policy: DeadlinePolicy | None = None
) -> Counter[str]:
    """One pass over the open tickets; returns what it did."""
    policy = policy or DeadlinePolicy(rules)
    done: Counter[str] = Counter()
    with Session(engine, expire_on_commit=False) as session:
        ids = list(session.exec(select(Ticket.id).where(col(Ticket.state).in_([str(s) for s in OPEN_STATES]))))
    for ticket_id in ids:
        with Session(engine, expire_on_commit=False) as session:
            ticket = session.get(Ticket, ticket_id)
            if ticket is None:
                continue
            for clock, light in lights(ticket, policy, now).items():
                done[f"{clock}:{light}"] += 1
                if light == "yellow" and _alert(session, ticket, clock, "due_soon", now):
                    done["alert:due_soon"] += 1
                elif light == "red" and _alert(session, ticket, clock, "overdue", now):
                    done["alert:overdue"] += 1
            if ticket.resolve_due and _escalate(session, ticket, policy, rules, now):
                done["escalated"] += 1
            try:
                session.commit()
            except (StaleDataError, IntegrityError):
                # another sweep or a person changed the ticket meanwhile; the next pass sees the new state
                session.rollback()
                done["skipped"] += 1
    if done["escalated"] or done["alert:overdue"]:
        log.info("sweep", extra={k.replace(":", "_"): v for k, v in done.items()})
    return done
