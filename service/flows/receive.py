"""Intake: store, classify, route and set deadlines for deliveries, many in one transaction (docs/WEBHOOK.md).

The hot path builds plain rows and inserts them with a few Core statements: constructing SQLModel table objects
and flushing them through the unit of work cost more than classifying the text."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, select

from classifier.decision import Classifier, Decision
from classifier.pipeline import TITLE_SEPARATOR
from service.areas.service import area_index, place_row
from service.clock import utcnow
from service.db import one_of
from service.deadlines.service import DeadlinePolicy
from service.errors import ConflictError, InvalidInputError
from service.notify.models import Alert
from service.places.address import building_key
from service.places.hotspots import Candidate, PlaceIndex
from service.routing.service import Route, fallback_route, route
from service.rules import ServiceRules
from service.tickets import changes, search
from service.tickets.models import IntakeResponse, State, Ticket, TicketCreate, TicketEvent
from service.tickets.service import SYSTEM_ACTOR, get_by_external_id
from service.tickets.statemachine import SYSTEM

log = logging.getLogger(__name__)

_TICKETS = Ticket.__table__  # type: ignore[attr-defined]
_EVENTS = TicketEvent.__table__  # type: ignore[attr-defined]
_ALERTS = Alert.__table__  # type: ignore[attr-defined]
Row = dict[str, Any]
# built once: intake runs them for every batch, and building a statement costs more than running it on SQLite
_INSERT_TICKETS = insert(_TICKETS).returning(_TICKETS.c.id, sort_by_parameter_order=True)
# PostgreSQL: ids drawn from the sequence first, then a plain executemany (pipelined, prepared once), because the
# single many-row INSERT … RETURNING above has a different text for every batch size and psycopg parses it anew
_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence('ticket', 'id')) FROM generate_series(1, :n)")
_INSERT_TICKETS_WITH_IDS = insert(_TICKETS)
_INSERT_EVENTS = insert(_EVENTS)
_INSERT_ALERTS = insert(_ALERTS)
_KNOWN = {
    postgres: select(*(_TICKETS.c[name] for name in ("content_hash", *IntakeResponse.model_fields))).where(
        one_of(_TICKETS.c.external_id, "ids", postgres)
    )
    for postgres in (False, True)
}


def content_hash(payload: TicketCreate) -> str:
    canonical = payload.model_dump_json(exclude_none=False).encode()
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class Accepted:
    ticket: IntakeResponse
    created: bool


IntakeOutcome = Accepted | ConflictError


def _known_outcome(existing: Ticket | Row, digest: str) -> IntakeOutcome:
    fields = existing if isinstance(existing, dict) else existing.model_dump()
    if fields["content_hash"] != digest:
        return ConflictError(f"工单编号 {fields['external_id']} 已存在且内容不同（重复推送必须与首次内容一致）")
    return Accepted(IntakeResponse.model_validate(fields), False)


Decided = tuple[Decision | None, str | None]  # the decision, or why there is none


def _text(payload: TicketCreate) -> str:
    return f"{payload.title}{TITLE_SEPARATOR}{payload.content}" if payload.title else payload.content


def _decide_one(classifier: Classifier, payload: TicketCreate) -> Decided:
    try:
        return classifier.decide(_text(payload)), None
    except Exception as exc:  # any classifier failure must still store the ticket, for a person to route
        log.exception("classification_failed")
        return None, f"{type(exc).__name__}: {exc}"[:500]


def decide_all(classifier: Classifier, payloads: Sequence[TicketCreate]) -> list[Decided]:
    """Classify a batch; a failure is returned per ticket, not raised: such a ticket is still stored, for review."""
    try:
        return [(d, None) for d in classifier.decide_batch([_text(p) for p in payloads])]
    except Exception:  # find the text that broke the batch: every other one is still classified
        return [_decide_one(classifier, p) for p in payloads]


def _decision_fields(decision: Decision | None, error: str | None, where: Route) -> Row:
    fields: Row = {"category": where.category, "office": where.office, "grid": where.grid, "is_urgent": where.urgent}
    if decision is None:
        return fields | {
            "confidence": None,
            "needs_review": True,
            "review_reasons": ["自动分类失败，需人工派单"],
            "classification": {},
            "classification_error": error,
            "model_version": None,
        }
    return fields | {
        "confidence": decision.confidence,
        "needs_review": decision.needs_review,
        "review_reasons": list(decision.review_reasons),
        "classification": decision.as_dict(),
        "classification_error": None,
        "model_version": decision.model_version,
    }


def check_received(payload: TicketCreate, rules: ServiceRules, now: dt.datetime) -> None:
    """Refuse a received_at too far in the future: the clocks start there, so a wrong upstream clock would move
    every deadline."""
    skew = rules.intake.future_skew_minutes
    if payload.received_at > now + dt.timedelta(minutes=skew):
        message = f"热线受理时间 received_at 晚于当前时间超过 {skew:g} 分钟，请检查上游时钟"
        raise InvalidInputError("received_at", message)


def _new_row(
    payload: TicketCreate,
    digest: str,
    decided: Decided,
    *,
    policy: DeadlinePolicy,
    rules: ServiceRules,
    source: str,
    now: dt.datetime,
) -> Row:
    decision, error = decided
    if decision is not None:
        where = route(decision=decision, address=payload.address, upstream_urgency=payload.urgency, rules=rules)
    else:
        where = fallback_route(address=payload.address, upstream_urgency=payload.urgency, rules=rules)
    row = payload.model_dump() | _decision_fields(decision, error, where)
    # the clocks start when the citizen called, not at the push (docs/DEADLINES.md)
    start = min(payload.received_at, now)
    clocks = policy.initial(
        start=start, category=where.category, kind=payload.kind, urgent=where.urgent, upstream=payload.deadline
    )
    return row | {
        "source": source,
        "content_hash": digest,
        "created_at": now,
        "updated_at": now,
        "first_contact_due": clocks.first_contact_due,
        "resolve_due": clocks.resolve_due,
        "calendar_estimated": bool(clocks.uncovered_years),
        "contact_basis": clocks.contact_basis,
        "resolve_basis": clocks.resolve_basis,
        "resolve_clock_start": start,
        "clock_start": start,
        "received_late": now - payload.received_at > dt.timedelta(days=rules.intake.stale_days),
        "building_key": building_key(payload.address),
        "hotspot": False,
        "hotspot_reason": None,
        "recurrence": False,
        "duplicate_of_id": None,
        "version": 1,
    }


def _duplicate_reason(of: int, score: float) -> str:
    return f"疑似重复：与工单 #{of} 相似度 {score:.2f}"


def _mark_place(row: Row, places: PlaceIndex, rules: ServiceRules) -> tuple[Row, float] | None:
    """Duplicate, 回潮 and hotspot; returns a duplicate of the same batch, whose id is known only once stored."""
    mark = places.mark(row["category"], row["building_key"], row["content"], row)
    row["recurrence"] = mark.recurrence
    if mark.recurrence or mark.count >= rules.hotspots.min_tickets:
        row["hotspot"] = True
        row["hotspot_reason"] = (
            f"回潮：{rules.hotspots.recurrence_days} 天内同楼栋同类工单已办结后再次出现"
            if mark.recurrence
            else f"{rules.hotspots.window_days} 天内同楼栋同类工单 {mark.count} 件"
        )
    duplicate: Candidate | None = mark.duplicate
    if duplicate is None:
        return None
    row["needs_review"] = True
    if duplicate.row is not None:
        return duplicate.row, mark.score
    assert duplicate.id is not None
    row["duplicate_of_id"] = duplicate.id
    row["review_reasons"] = [*row["review_reasons"], _duplicate_reason(duplicate.id, mark.score)]
    return None


def _events(row: Row, source: str, now: dt.datetime) -> list[Row]:
    common = {"ticket_id": row["id"], "at": now, "office": row["office"], "category": row["category"]}
    receive = {"actor": source, "actor_role": SYSTEM, "action": "receive", "from_state": None}
    classify = {"actor": SYSTEM_ACTOR.name, "actor_role": SYSTEM_ACTOR.role, "action": "classify"}
    return [
        common | receive | {"to_state": State.received, "note": None, "data": {}},
        common
        | classify
        | {
            "from_state": State.received,
            "to_state": row["state"],
            "note": "；".join(row["review_reasons"]) or None,
            "data": {
                "category": row["category"],
                "office": row["office"],
                "confidence": row["confidence"],
                "calendar_estimated": row["calendar_estimated"],
            },
        },
    ]


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _insert_tickets(session: Session, rows: list[Row]) -> None:
    """Insert and give each row its id, in batch order (later tickets get larger ids, as the checks expect)."""
    if _postgres(session):
        ids = sorted(session.execute(_NEXT_IDS, {"n": len(rows)}).scalars().all())
        for row, ticket_id in zip(rows, ids, strict=True):
            row["id"] = ticket_id
        session.execute(_INSERT_TICKETS_WITH_IDS, rows)
        return
    for row, ticket_id in zip(rows, session.execute(_INSERT_TICKETS, rows).scalars().all(), strict=True):
        row["id"] = ticket_id


def _index(session: Session, rows: list[Row]) -> None:
    """The text search index, in the same transaction (a stored ticket is found at once). A ticket the index
    refuses is still stored: the search is what waits, for `hotline search reindex`."""
    try:
        with session.begin_nested():
            search.index_rows(session.connection(), rows)
    except DBAPIError:
        log.warning("search_index_failed", extra={"tickets": [r["id"] for r in rows]}, exc_info=True)


def _store(session: Session, rows: list[Row], duplicates: list[tuple[Row, float] | None], source: str) -> None:
    """Insert a batch's tickets, their events and alerts with a few statements."""
    now = rows[0]["created_at"]
    _insert_tickets(session, rows)
    _index(session, rows)
    fixes = []
    for row, pending in zip(rows, duplicates, strict=True):
        if pending is not None:
            other, score = pending
            row["duplicate_of_id"] = other["id"]
            row["review_reasons"] = [*row["review_reasons"], _duplicate_reason(other["id"], score)]
            fixes.append({"b_id": row["id"], "b_dup": other["id"], "b_reasons": row["review_reasons"]})
    if fixes:
        session.execute(
            update(_TICKETS)
            .where(_TICKETS.c.id == bindparam("b_id"))
            .values(duplicate_of_id=bindparam("b_dup"), review_reasons=bindparam("b_reasons")),
            fixes,
        )
    session.execute(_INSERT_EVENTS, [event for row in rows for event in _events(row, source, now)])
    alerts = [
        {"ticket_id": r["id"], "clock": "intake", "kind": "hotspot", "office": r["office"], "created_at": now}
        | {"next_attempt_at": now}
        for r in rows
        if r["hotspot"]
    ]
    if alerts:
        session.execute(_INSERT_ALERTS, alerts)
    touched = changes.days_of(row.get(name) for row in rows for name in changes.TICKET_TIMES)
    changes.mark(session.connection(), touched | changes.days_of([now]))


def intake_many(
    *,
    session: Session,
    payloads: Sequence[TicketCreate],
    classifier: Classifier,
    policy: DeadlinePolicy,
    rules: ServiceRules,
    source: str = "hotline",
    now: dt.datetime | None = None,
    decided: Sequence[Decided] | None = None,
) -> list[IntakeOutcome]:
    """Store, classify, route and set deadlines for a batch of deliveries in one transaction; outcomes in order.

    Idempotent on external_id: a known id answers with its ticket (created=False), or a conflict if its content
    differs; the same id twice in one batch is stored once. `decided`, aligned with `payloads`, are decisions made
    beforehand (the webhook classifies the next batch while this one waits on the database)."""
    now = now or utcnow()
    digests = [content_hash(p) for p in payloads]
    ids = {p.external_id for p in payloads}
    found = session.execute(_KNOWN[_postgres(session)], {"ids": sorted(ids)}).mappings()
    known = {r["external_id"]: dict(r) for r in found}
    first: dict[str, int] = {}
    for i, payload in enumerate(payloads):
        if payload.external_id not in known:
            first.setdefault(payload.external_id, i)
    new = [payloads[i] for i in first.values()]
    decisions = [decided[i] for i in first.values()] if decided is not None else decide_all(classifier, new)
    rows = [
        _new_row(p, digests[i], d, policy=policy, rules=rules, source=source, now=now)
        for p, i, d in zip(new, first.values(), decisions, strict=True)
    ]
    if rows:
        areas = area_index(session)
        for row in rows:
            place_row(row, areas)
    places = PlaceIndex.load(session, {(r["category"], r["building_key"]) for r in rows}, rules, now)
    duplicates = [_mark_place(r, places, rules) for r in rows]
    for row in rows:
        row["state"] = State.pending_review if row["needs_review"] else State.dispatched
        row["dispatched_at"] = now if row["state"] == State.dispatched else None
    try:
        if rows:
            _store(session, rows, duplicates, source)
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        kw = {"classifier": classifier, "policy": policy, "rules": rules, "source": source, "now": now}
        return _one_by_one(session, payloads, digests, decided, exc, **kw)
    stored = {r["external_id"]: r for r in rows}
    outcomes: list[IntakeOutcome] = []
    for i, payload in enumerate(payloads):
        if first.get(payload.external_id) == i:
            row = stored[payload.external_id]
            outcomes.append(Accepted(IntakeResponse.model_validate(row), True))
            log.info("ticket_received", extra={"ticket_id": row["id"], "state": row["state"]})
        else:
            outcomes.append(_known_outcome(known.get(payload.external_id) or stored[payload.external_id], digests[i]))
    return outcomes


def _one_by_one(
    session: Session,
    payloads: Sequence[TicketCreate],
    digests: list[str],
    decided: Sequence[Decided] | None,
    error: IntegrityError,
    **kw: Any,
) -> list[IntakeOutcome]:
    """Another process stored one of these ids meanwhile: each delivery on its own finds the winner."""
    if len(payloads) > 1:
        return [
            intake_many(session=session, payloads=[p], decided=None if decided is None else [decided[i]], **kw)[0]
            for i, p in enumerate(payloads)
        ]
    winner = get_by_external_id(session=session, external_id=payloads[0].external_id)
    if winner is None:  # not a duplicate id after all
        raise error
    return [_known_outcome(winner, digests[0])]


def intake(
    *,
    session: Session,
    payload: TicketCreate,
    classifier: Classifier,
    policy: DeadlinePolicy,
    rules: ServiceRules,
    source: str = "hotline",
    now: dt.datetime | None = None,
) -> tuple[Ticket, bool]:
    """One delivery: (ticket, created); raises ConflictError for a known id with different content and
    InvalidInputError for a received_at too far in the future."""
    check_received(payload, rules, now or utcnow())
    outcome = intake_many(
        session=session, payloads=[payload], classifier=classifier, policy=policy, rules=rules, source=source, now=now
    )[0]
    if isinstance(outcome, ConflictError):
        raise outcome
    ticket = session.get(Ticket, outcome.ticket.id)
    assert ticket is not None
    return ticket, outcome.created
