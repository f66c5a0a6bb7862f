"""Placing tickets in the area registry: the address index, intake placement, dispatcher corrections, imports."""

from __future__ import annotations

import datetime as dt
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col, delete, select

from service.areas.models import (
    PLACEMENT_LABELS,
    Area,
    AreaNode,
    AreaPattern,
    AreaPatternPublic,
    Level,
    Placement,
    TicketPlace,
)
from service.areas.registry import Registry
from service.auth.models import DISPATCH_ROLES
from service.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from service.tickets import changes
from service.tickets.models import OPEN_STATES, Ticket
from service.tickets.service import Actor, area_subtree, get_ticket, note_event

_SPACES = re.compile(r"\s+")
# the 弄/号 right after a road or estate name: 上南路3855弄12号 → 3855, 上南二村45号302室 → 45
_NUMBER = re.compile(r"(\d{1,5})(?:弄|号|幢|栋|座|支弄)")
_PARITY = {"all": None, "odd": 1, "even": 0}
_DEPTH = {Level.zone: 0, Level.community: 1, Level.cell: 2}


@dataclass(frozen=True)
class Spot:
    """An area as placement needs it: its level, name, ancestors' names and its leader."""

    id: int
    level: Level
    name: str
    zone: str
    community: str | None
    cell: str | None
    leader: str
    leader_phone: str


@dataclass(frozen=True)
class Found:
    """Where an address sits: the area (None when nothing or more than one area matched) and how."""

    spot: Spot | None
    placement: Placement

    def fields(self) -> dict[str, Any]:
        """The ticket columns this placement sets (the 片区 only when the registry found one)."""
        if self.spot is None:
            return {"area_id": None, "community": None, "cell": None, "placement": self.placement}
        s = self.spot
        return {"area_id": s.id, "grid": s.zone, "community": s.community, "cell": s.cell, "placement": self.placement}


def normalized(address: str) -> str:
    return _SPACES.sub("", unicodedata.normalize("NFKC", address or ""))


class AreaIndex:
    """Every active area's patterns, ready to match addresses against (a few hundred grids: a linear scan)."""

    def __init__(self, spots: dict[int, Spot], patterns: list[tuple[str, int | None, int | None, str, int]]) -> None:
        self.spots = spots
        self.patterns = patterns

    @classmethod
    def build(cls, session: Session) -> AreaIndex:
        areas = {a.id: a for a in session.exec(select(Area)) if a.id is not None}
        spots = {i: _spot(a, areas) for i, a in areas.items()}
        active = {i for i, a in areas.items() if a.active}
        patterns = [
            (p.name, p.lo, p.hi, p.parity, p.area_id)
            for p in session.exec(select(AreaPattern).order_by(col(AreaPattern.id)))
            if p.area_id in active
        ]
        return cls(spots, patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def place(self, address: str) -> Found:
        """The best-matching area: a 弄/号 range beats a bare name, then the longer name, then the deeper area."""
        text = normalized(address)
        best: tuple[int, int, int] | None = None
        winners: set[int] = set()
        for name, lo, hi, parity, area_id in self.patterns:
            at = text.find(name)
            if at < 0 or not _in_range(text, at + len(name), lo, hi, parity):
                continue
            score = (0 if lo is None else 1, len(name), _DEPTH[self.spots[area_id].level])
            if best is None or score > best:
                best, winners = score, {area_id}
            elif score == best:
                winners.add(area_id)
        if not winners:
            return Found(None, Placement.unmatched)
        if len(winners) > 1:
            return Found(None, Placement.ambiguous)
        return Found(self.spots[winners.pop()], Placement.auto)


def _in_range(text: str, end: int, lo: int | None, hi: int | None, parity: str) -> bool:
    if lo is None or hi is None:
        return True
    found = _NUMBER.match(text, end)
    if found is None:
        return False
    number = int(found.group(1))
    side = _PARITY.get(parity)
    return lo <= number <= hi and (side is None or number % 2 == side)


def _spot(area: Area, areas: dict[int, Area]) -> Spot:
    chain = [area]
    while chain[-1].parent_id is not None and chain[-1].parent_id in areas and len(chain) < 3:
        chain.append(areas[chain[-1].parent_id])
    names = {Level(a.level): a.name for a in chain}
    assert area.id is not None
    return Spot(
        id=area.id,
        level=Level(area.level),
        name=area.name,
        zone=names.get(Level.zone, ""),
        community=names.get(Level.community),
        cell=names.get(Level.cell),
        leader=area.leader,
        leader_phone=area.leader_phone,
    )


ZoneOf = Callable[[str], str | None]
_cache: dict[str, tuple[tuple[Any, ...], AreaIndex]] = {}
_cache_lock = threading.Lock()


def area_index(session: Session) -> AreaIndex:
    """The index for this database, rebuilt when the registry changed (any process's import): one small query per
    call checks that, so every API process places by the same registry without a restart."""
    # every import rewrites the patterns, whose ids only grow: their max id changes whenever the registry does
    stamp = tuple(
        session.exec(
            select(
                select(func.count()).select_from(Area).scalar_subquery(),
                select(func.max(Area.updated_at)).scalar_subquery(),
                select(func.count()).select_from(AreaPattern).scalar_subquery(),
                select(func.max(AreaPattern.id)).scalar_subquery(),
            )
        ).one()
    )
    key = str(session.get_bind().engine.url)
    cached = _cache.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    index = AreaIndex.build(session)
    with _cache_lock:
        _cache[key] = (stamp, index)
    return index


def place_row(row: dict[str, Any], index: AreaIndex, zone_of: ZoneOf | None = None) -> None:
    """Place a ticket (as a row of its columns) by its address; an empty address falls back to the text, which
    names the place in many hotline tickets. Unplaced, its 片区 is `zone_of(address)` when given (the rules'
    road names), else left as it is."""
    address = row.get("address") or ""
    found = index.place(address) if index else Found(None, Placement.unmatched)
    if index and found.spot is None and not address.strip():
        found = index.place(f"{row.get('title') or ''}{row.get('content') or ''}")
    row.update(found.fields())
    if found.spot is None and zone_of is not None:
        row["grid"] = zone_of(address)


def ticket_place(*, session: Session, ticket: Ticket) -> TicketPlace:
    """The ticket's 片区/居民区/网格 and the leader of the finest of them."""
    leader = phone = None
    if ticket.area_id is not None:
        area = session.get(Area, ticket.area_id)
        if area is not None:
            leader, phone = area.leader or None, area.leader_phone or None
    placement = Placement(ticket.placement) if ticket.placement else None
    return TicketPlace(
        placement=placement,
        placement_label=PLACEMENT_LABELS[placement] if placement else "未定位",
        zone=ticket.grid,
        community=ticket.community,
        cell=ticket.cell,
        leader=leader,
        leader_phone=phone,
    )


def get_area(*, session: Session, area_id: int) -> Area:
    area = session.get(Area, area_id)
    if area is None or not area.active:
        raise NotFoundError(f"区域 {area_id} 不存在或已停用")
    return area


def spot_of(*, session: Session, area_id: int) -> Spot:
    area = get_area(session=session, area_id=area_id)
    areas = {a.id: a for a in session.exec(select(Area)) if a.id is not None}
    return _spot(area, areas)


def area_tree(*, session: Session, include_inactive: bool = False) -> list[AreaNode]:
    """The registry as a tree of 片区 → 居民区 → 网格, with each area's patterns."""
    areas = [a for a in session.exec(select(Area).order_by(col(Area.id))) if include_inactive or a.active]
    patterns: dict[int, list[AreaPatternPublic]] = {}
    for p in session.exec(select(AreaPattern).order_by(col(AreaPattern.id))):
        patterns.setdefault(p.area_id, []).append(AreaPatternPublic.model_validate(p, from_attributes=True))
    nodes = {
        a.id: AreaNode.model_validate(a, from_attributes=True).model_copy(
            update={"patterns": patterns.get(a.id or 0, [])}
        )
        for a in areas
    }
    roots: list[AreaNode] = []
    for a in areas:
        node = nodes[a.id]
        parent = nodes.get(a.parent_id) if a.parent_id is not None else None
        (parent.children if parent is not None else roots).append(node)
    return roots


@dataclass(frozen=True)
class ImportResult:
    zones: int
    communities: int
    cells: int
    patterns: int
    retired: int
    replaced: int


def import_registry(*, session: Session, registry: Registry, zone_of: ZoneOf, now: dt.datetime) -> ImportResult:
    """Make the stored registry the file's, in one transaction: areas are matched by level and name (their ids,
    and so tickets' places, survive re-imports), patterns are replaced, areas the file no longer has are retired,
    and open tickets not placed by hand are placed again."""
    existing = {(a.level, a.name): a for a in session.exec(select(Area))}
    ids: dict[tuple[str, str], int] = {}
    seen: set[int] = set()
    parent_level = {Level.community: Level.zone, Level.cell: Level.community}
    for spec in registry.areas:
        area = existing.get((spec.level, spec.name)) or Area(level=spec.level, name=spec.name, updated_at=now)
        area.parent_id = ids[(parent_level[spec.level], spec.parent)] if spec.parent else None
        area.leader, area.leader_phone, area.members = spec.leader, spec.leader_phone, list(spec.members)
        area.active, area.updated_at = True, now
        session.add(area)
        session.flush()
        assert area.id is not None
        ids[(spec.level, spec.name)] = area.id
        seen.add(area.id)
    session.exec(delete(AreaPattern))
    for spec in registry.areas:
        for p in spec.patterns:
            session.add(
                AreaPattern(area_id=ids[(spec.level, spec.name)], name=p.name, lo=p.lo, hi=p.hi, parity=p.parity)
            )
    retired = 0
    for area in existing.values():
        if area.id not in seen and area.active:
            area.active, area.updated_at = False, now
            session.add(area)
            retired += 1
    session.flush()
    replaced = replace_open(session=session, index=AreaIndex.build(session), zone_of=zone_of)
    session.commit()
    return ImportResult(
        zones=registry.count(Level.zone),
        communities=registry.count(Level.community),
        cells=registry.count(Level.cell),
        patterns=sum(len(a.patterns) for a in registry.areas),
        retired=retired,
        replaced=replaced,
    )


def replace_open(*, session: Session, index: AreaIndex, zone_of: ZoneOf) -> int:
    """Place again every open ticket that no dispatcher placed by hand; returns how many changed place."""
    open_states = [str(s) for s in OPEN_STATES]
    columns = ("area_id", "grid", "community", "cell", "placement")
    query = select(Ticket).where(
        col(Ticket.state).in_(open_states), col(Ticket.placement).is_distinct_from(Placement.manual)
    )
    changed = 0
    pending: list[tuple[int | None, dict[str, Any]]] = []
    touched: set[dt.date] = set()
    for ticket in session.exec(query.execution_options(yield_per=1000)):
        row: dict[str, Any] = {"address": ticket.address, "title": ticket.title, "content": ticket.content}
        place_row(row, index, zone_of)
        values = {k: row[k] for k in columns if k in row}
        if all(getattr(ticket, k) == v for k, v in values.items()):
            continue
        # a plain UPDATE: a placement is no change to the ticket's handling, so its version (and a concurrent
        # office action on it) is left alone
        pending.append((ticket.id, values))
        touched |= changes.days_of(getattr(ticket, name) for name in changes.TICKET_TIMES)
    for ticket_id, values in pending:
        session.exec(update(Ticket).where(col(Ticket.id) == ticket_id).values(**values))
        changed += 1
    # a plain UPDATE bypasses the ORM's change tracking: the report rollup is told of the 片区 moves here
    ids = [ticket_id for ticket_id, _ in pending if ticket_id is not None]
    changes.mark(session.connection(), touched | changes.attached_days(session.connection(), ids))
    return changed


def within(*, session: Session, area_id: int, root_id: int) -> bool:
    """Whether an area is `root_id` or lies under it."""
    return area_id in set(session.execute(area_subtree(root_id)).scalars().all())


def area_choices(*, session: Session, root_id: int | None = None) -> list[tuple[int, str]]:
    """Active areas as a person picks them, "片区 / 居民区 / 网格", in registry order; under `root_id` only when
    given (a patrol picks within its own area)."""
    allowed = set(session.execute(area_subtree(root_id)).scalars().all()) if root_id is not None else None
    choices: list[tuple[int, str]] = []

    def walk(nodes: list[AreaNode], path: str) -> None:
        for node in nodes:
            label = f"{path} / {node.name}" if path else node.name
            if allowed is None or node.id in allowed:
                choices.append((node.id, label))
            walk(node.children, label)

    walk(area_tree(session=session), "")
    return choices


def check_area(*, session: Session, area_id: int) -> Spot:
    """The area a dispatcher picked, or InvalidInputError naming area_id."""
    try:
        return spot_of(session=session, area_id=area_id)
    except NotFoundError as exc:
        raise InvalidInputError("area_id", exc.message) from exc


def relocate(
    *, session: Session, ticket_id: int, area_id: int, note: str | None, actor: Actor, now: dt.datetime
) -> Ticket:
    """A dispatcher places a ticket by hand; the place is kept through later imports and recorded in the timeline."""
    if actor.role not in (DISPATCH_ROLES):
        raise ForbiddenError("只有派单员可以更正工单位置")
    ticket = get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    spot = check_area(session=session, area_id=area_id)
    before = {"zone": ticket.grid, "community": ticket.community, "cell": ticket.cell, "placement": ticket.placement}
    for key, value in Found(spot, Placement.manual).fields().items():
        setattr(ticket, key, value)
    ticket.updated_at = now
    after = {"zone": ticket.grid, "community": ticket.community, "cell": ticket.cell, "area_id": spot.id}
    session.add(ticket)
    text = note or f"位置更正为 {spot.zone} / {spot.community or '—'} / {spot.cell or '—'}"
    data = {"before": before, "after": after}
    session.add(note_event(ticket, actor=actor, action="place", note=text, data=data, now=now))
    try:
        session.commit()
    except (StaleDataError, IntegrityError) as exc:
        session.rollback()
        raise ConflictError("工单已被他人修改，请刷新后重试") from exc
    session.refresh(ticket)
    return ticket
