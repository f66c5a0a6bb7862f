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

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlmodel import Session

from classifier.config import Rules
from classifier.normalize import normalize_text
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


def similarity(a: str, b: str) -> float:
    return jaccard(bigrams(a), bigrams(b))


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
    rules: Rules
    candidates: dict[Place, list[Candidate]] = field(default_factory=lambda: defaultdict(list))
    recurring: set[Place] = field(default_factory=set)
    counts: dict[Place, int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    def load(
        cls, session: Session, places: Iterable[tuple[str | None, str | None]], rules: Rules, now: dt.datetime
    ) -> PlaceIndex:
        """What the checks need about these (category, building) places, in two queries."""
        index = cls(rules)
        known: set[Place] = {(c, k) for c, k in places if c and k}
        if known:
            where = and_(
                _T.category.in_({c for c, _ in known}),
                _T.building_key.in_({k for _, k in known}),
                _T.merged_into_id.is_(None),
            )
            index._load_candidates(session, where, known, now)
            index._load_history(session, where, known, now)
        return index

    def _load_candidates(
        self, session: Session, where: ColumnElement[bool], places: set[Place], now: dt.datetime
    ) -> None:
        since = now - dt.timedelta(hours=self.rules.duplicates.window_hours)
        # a busy building must not make every intake slower: compare with its most recent open tickets only
        rank = func.row_number().over(partition_by=(_T.category, _T.building_key), order_by=_T.id.desc())
        recent = (
            select(_T.id, _T.category, _T.building_key, _T.content, rank.label("rank"))
            .where(where, _T.created_at >= since, _T.state.in_([str(s) for s in OPEN_STATES]))
            .subquery()
        )
        rows = session.execute(
            select(recent.c.id, recent.c.category, recent.c.building_key, recent.c.content)
            .where(recent.c.rank <= _MAX_CANDIDATES)
            .order_by(recent.c.id)
        )
        for ticket_id, category, key, content in rows:
            if (category, key) in places:
                self.candidates[(category, key)].append(Candidate(grams=bigrams(content), id=ticket_id))

    def _load_history(self, session: Session, where: ColumnElement[bool], places: set[Place], now: dt.datetime) -> None:
        """Per place: tickets in the hotspot window, and whether one was closed within the recurrence window."""
        window = now - dt.timedelta(days=self.rules.hotspots.window_days)
        recurrence = now - dt.timedelta(days=self.rules.hotspots.recurrence_days)
        counted = and_(_T.created_at >= window, _T.state != str(State.cancelled))
        closed = and_(_T.state.in_([str(State.resolved), str(State.closed)]), _T.resolved_at >= recurrence)
        rows = session.execute(
            select(
                _T.category,
                _T.building_key,
                func.sum(case((counted, 1), else_=0)),
                func.max(case((closed, 1), else_=0)),
            )
            .where(where, or_(counted, closed))
            .group_by(_T.category, _T.building_key)
        )
        for category, key, count, recurred in rows:
            if (category, key) in places:
                self.counts[(category, key)] = int(count or 0)
                if recurred:
                    self.recurring.add((category, key))

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
