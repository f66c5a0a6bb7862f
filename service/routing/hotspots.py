"""At intake: suspected duplicates, 回潮 (recurrence) and hotspots at one building (冒头就打)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, and_, func
from sqlmodel import Session, col, select

from classifier.config import Rules
from classifier.normalize import normalize_text
from service.tickets.models import OPEN_STATES, State, Ticket

_MAX_CANDIDATES = 50


def bigrams(text: str) -> set[str]:
    norm = normalize_text(text).replace(" ", "")
    return {norm[i : i + 2] for i in range(len(norm) - 1)} or {norm}


def similarity(a: str, b: str) -> float:
    x, y = bigrams(a), bigrams(b)
    return len(x & y) / len(x | y) if x | y else 0.0


def _same_place(ticket: Ticket) -> ColumnElement[bool]:
    return and_(
        col(Ticket.category) == ticket.category,
        col(Ticket.building_key) == ticket.building_key,
        col(Ticket.merged_into_id).is_(None),
    )


def find_duplicate(session: Session, ticket: Ticket, rules: Rules, now: dt.datetime) -> tuple[Ticket, float] | None:
    """The most similar open ticket of the same category at the same building within the window."""
    if not ticket.building_key or not ticket.category:
        return None
    since = now - dt.timedelta(hours=rules.duplicates.window_hours)
    candidates = session.exec(
        select(Ticket)
        .where(
            _same_place(ticket), col(Ticket.created_at) >= since, col(Ticket.state).in_([str(s) for s in OPEN_STATES])
        )
        # a busy building must not make every intake slower: compare with the most recent ones only
        .order_by(col(Ticket.id).desc())
        .limit(_MAX_CANDIDATES)
    ).all()
    scored = [(other, similarity(ticket.content, other.content)) for other in candidates if other.id != ticket.id]
    best = max(scored, key=lambda pair: pair[1], default=None)
    if best is None or best[1] < rules.duplicates.similarity:
        return None
    return best


def is_recurrence(session: Session, ticket: Ticket, rules: Rules, now: dt.datetime) -> bool:
    """回潮: an earlier ticket of the same category at this building was closed within the recurrence window."""
    if not ticket.building_key or not ticket.category:
        return False
    since = now - dt.timedelta(days=rules.hotspots.recurrence_days)
    closed = [str(State.resolved), str(State.closed)]
    found = session.exec(
        select(Ticket.id)
        .where(_same_place(ticket), col(Ticket.state).in_(closed), col(Ticket.resolved_at) >= since)
        .limit(1)
    ).first()
    return found is not None


def recent_count(session: Session, ticket: Ticket, rules: Rules, now: dt.datetime) -> int:
    """Tickets of this category at this building in the hotspot window, this one included."""
    if not ticket.building_key or not ticket.category:
        return 0
    since = now - dt.timedelta(days=rules.hotspots.window_days)
    statement = (
        select(func.count())
        .select_from(Ticket)
        .where(_same_place(ticket), col(Ticket.created_at) >= since, Ticket.state != State.cancelled)
    )
    return int(session.exec(statement).one())
