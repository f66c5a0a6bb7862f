"""At intake: suspected duplicates, 回潮 (recurrence) and hotspots at one building (冒头就打).

Intake works in batches (one transaction for many deliveries), so what the checks need to know about the batch's
buildings is read in two queries up front; tickets of the same batch then see each other in memory, in order."""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Executable,
    Select,
    TextClause,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlmodel import Session

from classifier.normalize import normalize_text
from service.db import UTCDateTime
from service.rules import ServiceRules
from service.tickets.models import OPEN_STATES, State, Ticket

_MAX_CANDIDATES = 50
Place = tuple[str, str]  # (category, building_key)
_T = Ticket.__table__.c  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=8192)  # the same open tickets are compared again and again while they stay open
def bigrams(text: str) -> frozenset[str]:
    norm = normalize_text(text).replace(" ", "")
    return frozenset({norm[i : i + 2] for i in range(len(norm) - 1)} or {norm})


def jaccard(x: frozenset[str], y: frozenset[str]) -> float:
    union = len(x | y)
    return len(x & y) / union if union else 0.0


def _postgres_statements() -> tuple[TextClause, TextClause]:
    """PostgreSQL: one index probe per (category, building) pair, newest first, through ix_ticket_place. Written
    per place rather than as IN-lists, so the plan does not depend on fresh statistics (a new or fast-growing
    table otherwise gets scanned whole until autovacuum has analyzed it)."""
    places = "unnest(CAST(:cats AS varchar[]), CAST(:keys AS varchar[])) AS p(category, building_key)"
    same = "t.category = p.category AND t.building_key = p.building_key AND t.merged_into_id IS NULL"
    open_states = ", ".join(f"'{s}'" for s in OPEN_STATES)
    candidates = text(
        f"SELECT c.id, p.category, p.building_key, c.content FROM {places} CROSS JOIN LATERAL ("
        f" SELECT t.id, t.content FROM ticket t WHERE {same} AND t.created_at >= :since"
        f" AND t.state IN ({open_states}) ORDER BY t.id DESC LIMIT {_MAX_CANDIDATES}) AS c ORDER BY c.id"
    ).bindparams(bindparam("since", type_=UTCDateTime))
    history = text(
        f"SELECT p.category, p.building_key,"
        f" (SELECT count(*) FROM ticket t WHERE {same} AND t.created_at >= :window"
        f"  AND t.state <> '{State.cancelled}'),"
        f" EXISTS (SELECT 1 FROM ticket t WHERE {same} AND t.state IN ('{State.resolved}', '{State.closed}')"
        f"  AND t.resolved_at >= :recurrence)"
        f" FROM {places}"
    ).bindparams(bindparam("window", type_=UTCDateTime), bindparam("recurrence", type_=UTCDateTime))
    return candidates, history


# SQLite has no statistics unless ANALYZE ran, and without them it prefers the merged_into_id IS NULL or the state
# index, which match most tickets; a unary + keeps such a term out of index selection, so the place index is used
_NOT_MERGED = literal_column("+ticket.merged_into_id").is_(None)


def _sqlite_statements() -> tuple[Select[Any], Select[Any]]:
    """The two place queries, built once: only their parameters change from batch to batch."""
    same_places = and_(
        _T.category.in_(bindparam("cats", expanding=True)),
        _T.building_key.in_(bindparam("keys", expanding=True)),
        _NOT_MERGED,
    )
    # a busy building must not make every intake slower: compare with its most recent open tickets only
    rank = func.row_number().over(partition_by=(_T.category, _T.building_key), order_by=_T.id.desc())
    recent = (
        select(_T.id, _T.category, _T.building_key, _T.content, rank.label("rank"))
        .where(
            # only the building may choose the index here: with the category as well SQLite walks the category
            # index to save the window's sort
            literal_column("+ticket.category").in_(bindparam("cats", expanding=True)),
            _T.building_key.in_(bindparam("keys", expanding=True)),
            _NOT_MERGED,
            literal_column("+ticket.created_at", UTCDateTime) >= bindparam("since", type_=UTCDateTime),
            literal_column("+ticket.state").in_([str(s) for s in OPEN_STATES]),
        )
        .subquery()
    )
    candidates = (
        select(recent.c.id, recent.c.category, recent.c.building_key, recent.c.content)
        .where(recent.c.rank <= _MAX_CANDIDATES)
        .order_by(recent.c.id)
    )
    # per place: tickets in the hotspot window, and whether one was closed within the recurrence window (回潮)
    counted = and_(_T.created_at >= bindparam("window", type_=UTCDateTime), _T.state != str(State.cancelled))
    closed = and_(
        _T.state.in_([str(State.resolved), str(State.closed)]),
        _T.resolved_at >= bindparam("recurrence", type_=UTCDateTime),
    )
    history = (
        select(
            _T.category, _T.building_key, func.sum(case((counted, 1), else_=0)), func.max(case((closed, 1), else_=0))
        )
        .where(same_places, or_(counted, closed))
        .group_by(_T.category, _T.building_key)
    )
    return candidates, history


_QUERIES: dict[bool, tuple[Executable, Executable]] = {False: _sqlite_statements(), True: _postgres_statements()}


@dataclass
class Candidate:
    """An open ticket a new one may duplicate: stored (``id``) or earlier in the same batch (its ``row``)."""

    grams: frozenset[str]
    id: int | None = None
    row: dict[str, Any] | None = None


@dataclass
class PlaceMark:
    duplicate: Candidate | None
    score: float
    recurrence: bool
    count: int


@dataclass
class PlaceIndex:
    rules: ServiceRules
    candidates: dict[Place, list[Candidate]] = field(default_factory=lambda: defaultdict(list))
    recurring: set[Place] = field(default_factory=set)
    counts: dict[Place, int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    def load(
        cls, session: Session, places: Iterable[tuple[str | None, str | None]], rules: ServiceRules, now: dt.datetime
    ) -> PlaceIndex:
        """What the checks need about these (category, building) places, in two queries."""
        index = cls(rules)
        known: set[Place] = {(c, k) for c, k in places if c and k}
        if not known:
            return index
        postgres = session.get_bind().dialect.name == "postgresql"
        candidates_query, history_query = _QUERIES[postgres]
        pairs = sorted(known)
        params: dict[str, Any] = (
            {"cats": [c for c, _ in pairs], "keys": [k for _, k in pairs]}  # parallel arrays: one row per place
            if postgres
            else {"cats": sorted({c for c, _ in pairs}), "keys": sorted({k for _, k in pairs})}
        )
        duplicates_since = now - dt.timedelta(hours=rules.duplicates.window_hours)
        for ticket_id, category, key, content in session.execute(
            candidates_query, params | {"since": duplicates_since}
        ):
            if (category, key) in known:
                index.candidates[(category, key)].append(Candidate(grams=bigrams(content), id=ticket_id))
        history = {
            "window": now - dt.timedelta(days=rules.hotspots.window_days),
            "recurrence": now - dt.timedelta(days=rules.hotspots.recurrence_days),
        }
        for category, key, count, recurred in session.execute(history_query, params | history):
            if (category, key) in known:
                index.counts[(category, key)] = int(count or 0)
                if recurred:
                    index.recurring.add((category, key))
        return index

    def mark(self, category: str | None, key: str | None, content: str, row: dict[str, Any]) -> PlaceMark:
        """What intake found at this ticket's building; the ticket then counts for the batch's later tickets."""
        if not category or not key:
            return PlaceMark(duplicate=None, score=0.0, recurrence=False, count=1)
        place = (category, key)
        grams = bigrams(content)
        best, score = None, 0.0
        for candidate in reversed(self.candidates[place][-_MAX_CANDIDATES:]):  # the most recent wins a tie
            s = jaccard(grams, candidate.grams)
            if s > score:
                best, score = candidate, s
        if score < self.rules.duplicates.similarity:
            best = None
        self.counts[place] += 1
        self.candidates[place].append(Candidate(grams=grams, row=row))
        return PlaceMark(duplicate=best, score=score, recurrence=place in self.recurring, count=self.counts[place])
