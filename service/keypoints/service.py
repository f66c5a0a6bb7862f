"""Key point data access: import, the tickets and photos at each point's building, status changes, the 违建 ledger."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.areas.service import ZoneOf, area_index, place_row
from service.auth.models import DISPATCH_ROLES
from service.clock import utcnow
from service.errors import ForbiddenError, InvalidInputError, NotFoundError
from service.evidence.models import TicketPhoto
from service.keypoints.models import (
    KIND_LABELS,
    STATUS_LABELS,
    KeyPoint,
    KeyPointBrief,
    KeyPointChange,
    KeyPointKind,
    KeyPointLedger,
    KeyPointPublic,
    KeyPointStatus,
    KeyPointUpdate,
    OverduePoint,
    control_char,
)
from service.keypoints.registry import KeyPointFile, KeyPointSpec
from service.rules import KeyPointRules
from service.tickets.models import State, Ticket
from service.tickets.service import Actor, TicketFilter, matching_tickets

# a building's tickets shown on a key point's page, newest first
TICKET_LIMIT = 200
_DIGITS = re.compile(r"(\d+)")


def _label(labels: dict[Any, str], value: str) -> str:
    return labels.get(value, value)


def key_point_view(point: KeyPoint) -> KeyPointPublic:
    return KeyPointPublic.model_validate(
        point,
        from_attributes=True,
        update={"status_label": _label(STATUS_LABELS, point.status), "kind_label": _label(KIND_LABELS, point.kind)},
    )


def key_point_brief(point: KeyPoint) -> KeyPointBrief:
    assert point.id is not None
    return KeyPointBrief(
        id=point.id,
        code=point.code,
        address=point.address,
        category=point.category,
        kind=point.kind,
        kind_label=_label(KIND_LABELS, point.kind),
        status=point.status,
        status_label=_label(STATUS_LABELS, point.status),
        area_m2=point.area_m2,
        demolished_m2=point.demolished_m2,
        target_date=point.target_date,
        url=f"/api/v1/keypoints/{point.id}",
        page=f"/ui/keypoints/{point.id}",
    )


def _code_order(point: KeyPoint) -> tuple[Any, ...]:
    """The street's numbers in their natural order: 2 before 12, 12-1 before 12-2."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _DIGITS.split(point.code) if p)


# Import -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    # placed in no 网格 (待定位) and with no building (no ticket links): the rows to look at again
    unplaced: list[str]
    unlinked: list[str]


def _local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


_TRACKED = (
    "address",
    "category",
    "kind",
    "area_m2",
    "found_at",
    "target_date",
    "note",
    "zone",
    "community",
    "cell",
    "status",
    "demolished_m2",
    "cleared_at",
)


def _snapshot(point: KeyPoint | None) -> dict[str, Any]:
    """The tracked fields as JSON-ready values (dates and times as ISO text)."""
    if point is None:
        return dict.fromkeys(_TRACKED)
    values = {name: getattr(point, name) for name in _TRACKED}
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}


def _record(
    session: Session, point: KeyPoint, before: dict[str, Any], *, actor: Actor, source: str, now: dt.datetime
) -> None:
    """Keep what changed (KeyPointChange); nothing when nothing did."""
    after = _snapshot(point)
    changes = {k: [before[k], after[k]] for k in _TRACKED if before[k] != after[k]}
    if changes:
        assert point.id is not None
        session.add(
            KeyPointChange(
                key_point_id=point.id,
                at=now,
                actor=actor.name,
                actor_role=actor.role,
                source=source,
                changes=changes,
            )
        )


def key_point_changes(*, session: Session, key_point_id: int) -> list[KeyPointChange]:
    """A key point's changes, newest first."""
    statement = (
        select(KeyPointChange)
        .where(KeyPointChange.key_point_id == key_point_id)
        .order_by(col(KeyPointChange.id).desc())
    )
    return list(session.exec(statement))


def _apply(point: KeyPoint, spec: KeyPointSpec, place: dict[str, Any], zone: ZoneInfo, now: dt.datetime) -> None:
    for key in ("address", "building_key", "category", "kind", "area_m2", "found_at", "target_date", "note"):
        setattr(point, key, getattr(spec, key))
    point.zone, point.community, point.cell = place.get("grid"), place.get("community"), place.get("cell")
    point.area_id, point.placement = place.get("area_id"), place.get("placement")
    # blank 状态/拆除面积 columns keep what the point has: the file is the street's list, the app its progress
    if spec.demolished_m2 is not None:
        point.demolished_m2 = spec.demolished_m2
    if spec.status is not None:
        point.status = spec.status
        # the parser demands a 完成日期 with 已整治, and refuses one without
        point.cleared_at = _local_midnight(spec.cleared_on, zone) if spec.cleared_on else None
    point.updated_at = now


IMPORTER = Actor(name="hotline keypoints import", role="system")


def import_key_points(
    *,
    session: Session,
    points: KeyPointFile,
    zone_of: ZoneOf,
    zone: ZoneInfo,
    now: dt.datetime,
    actor: Actor = IMPORTER,
) -> ImportResult:
    """Upsert the file's key points by 编号 in one transaction, each placed in the area registry as a ticket would
    be. Points the file does not name are kept (a cleared point stays in the ledger)."""
    index = area_index(session)
    existing = {p.code: p for p in session.exec(select(KeyPoint))}
    created = 0
    unplaced: list[str] = []
    for spec in points.points:
        place: dict[str, Any] = {"address": spec.address}
        place_row(place, index, zone_of)
        point = existing.get(spec.code)
        before = _snapshot(point)
        if point is None:
            point = KeyPoint(
                code=spec.code,
                address=spec.address,
                category=spec.category,
                kind=spec.kind,
                created_at=now,
                updated_at=now,
            )
            created += 1
        _apply(point, spec, place, zone, now)
        session.add(point)
        session.flush()
        _record(session, point, before, actor=actor, source="import", now=now)
        if point.cell is None:
            unplaced.append(spec.code)
    session.commit()
    return ImportResult(
        created=created,
        updated=len(points.points) - created,
        unplaced=unplaced,
        unlinked=[p.code for p in points.unlinked()],
    )


# Reading ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPointFilter:
    status: str | None = None
    zone: str | None = None
    community: str | None = None
    cell: str | None = None
    category: str | None = None
    kind: str | None = None


def list_key_points(*, session: Session, filters: KeyPointFilter = KeyPointFilter()) -> list[KeyPoint]:
    """Key points matching every filter given, by the street's number."""
    statement = select(KeyPoint)
    for column, value in (
        (KeyPoint.status, filters.status),
        (KeyPoint.zone, filters.zone),
        (KeyPoint.community, filters.community),
        (KeyPoint.cell, filters.cell),
        (KeyPoint.category, filters.category),
        (KeyPoint.kind, filters.kind),
    ):
        if value:
            statement = statement.where(column == value)
    return sorted(session.exec(statement), key=_code_order)


def get_key_point(*, session: Session, key_point_id: int) -> KeyPoint:
    point = session.get(KeyPoint, key_point_id)
    if point is None:
        raise NotFoundError(f"点位 {key_point_id} 不存在")
    return point


def key_point_for_ticket(*, session: Session, ticket: Ticket) -> KeyPointBrief | None:
    """The key point at the ticket's building, or None. Several at one building: the one of the ticket's category
    first, then an open one, then the lowest number."""
    if not ticket.building_key:
        return None
    found = list(session.exec(select(KeyPoint).where(KeyPoint.building_key == ticket.building_key)))
    if not found:
        return None
    best = min(
        found,
        key=lambda p: (p.category != ticket.category, p.status == KeyPointStatus.cleared, _code_order(p)),
    )
    return key_point_brief(best)


def key_point_tickets(
    *, session: Session, key_point_id: int, actor: Actor, limit: int = TICKET_LIMIT, now: dt.datetime | None = None
) -> list[Ticket]:
    """The tickets at the key point's building that `actor` may see (an office its own), newest first. A point
    whose address names no building has none."""
    point = get_key_point(session=session, key_point_id=key_point_id)
    if not point.building_key:
        return []
    wanted = TicketFilter(building=point.building_key)
    return matching_tickets(session=session, actor=actor, filters=wanted, now=now or utcnow(), limit=limit)


def key_point_photos(*, session: Session, tickets: list[Ticket]) -> list[TicketPhoto]:
    """The photos of these tickets (a key point's: found, 先行联系, 办结), oldest first."""
    ids = [t.id for t in tickets if t.id is not None]
    if not ids:
        return []
    statement = select(TicketPhoto).where(col(TicketPhoto.ticket_id).in_(ids)).order_by(col(TicketPhoto.id))
    return list(session.exec(statement))


# Changes ------------------------------------------------------------------------------------------------------


def _new_status(change: KeyPointUpdate, point: KeyPoint) -> str:
    if "status" not in change.model_fields_set:
        return point.status
    if change.status not in set(KeyPointStatus):
        raise InvalidInputError("status", "状态只能是 待整治（pending）、整治中（working）或 已整治（cleared）")
    return str(change.status)


def _checked(change: KeyPointUpdate, point: KeyPoint, rules: KeyPointRules) -> dict[str, Any]:
    """The columns the change sets, or InvalidInputError naming the first bad field (nothing is changed)."""
    sent = change.model_fields_set
    values: dict[str, Any] = {"status": _new_status(change, point)}
    if "demolished_m2" in sent:
        values["demolished_m2"] = change.demolished_m2
    if "target_date" in sent:
        if change.target_date is not None and not 2000 <= change.target_date.year < 2100:
            raise InvalidInputError("target_date", "整治期限超出合理范围（2000–2099 年）")
        values["target_date"] = change.target_date
    if "note" in sent:
        note = (change.note or "").strip()
        bad = control_char(note)
        if bad is not None:
            raise InvalidInputError("note", f"备注不能包含控制字符（U+{ord(bad):04X}）")
        values["note"] = note
    demolished = values.get("demolished_m2", point.demolished_m2)
    if values["status"] == KeyPointStatus.cleared and point.category == rules.construction_type and demolished is None:
        raise InvalidInputError("demolished_m2", "违建点位整治完成须填写实际拆除面积（demolished_m2，平方米）")
    return values


def update_key_point(
    *,
    session: Session,
    key_point_id: int,
    change: KeyPointUpdate,
    actor: Actor,
    rules: KeyPointRules,
    now: dt.datetime,
) -> KeyPoint:
    """A dispatcher's change of status, demolished m², target date or note; clearing records when."""
    if actor.role not in DISPATCH_ROLES:
        raise ForbiddenError("只有派单员和管理员可以更新点位")
    point = get_key_point(session=session, key_point_id=key_point_id)
    values = _checked(change, point, rules)
    was_cleared = point.status == KeyPointStatus.cleared
    before = _snapshot(point)
    for key, value in values.items():
        setattr(point, key, value)
    if point.status != KeyPointStatus.cleared:
        point.cleared_at = None
    elif not was_cleared:
        point.cleared_at = now
    point.updated_at = now
    session.add(point)
    _record(session, point, before, actor=actor, source="update", now=now)
    session.commit()
    session.refresh(point)
    return point


# Ledger -------------------------------------------------------------------------------------------------------


def _year_bounds(year: int, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The local calendar year as a UTC interval [start, end)."""
    return _local_midnight(dt.date(year, 1, 1), zone), _local_midnight(dt.date(year + 1, 1, 1), zone)


def _new_clues(session: Session, construction: str, start: dt.datetime, end: dt.datetime) -> int:
    """违建 tickets received in [start, end) at no key point's building (cancelled and merged ones left out)."""
    known = select(KeyPoint.building_key).where(col(KeyPoint.building_key).is_not(None))
    statement = select(func.count()).where(
        Ticket.category == construction,
        col(Ticket.received_at) >= start,
        col(Ticket.received_at) < end,
        Ticket.state != State.cancelled,
        col(Ticket.merged_into_id).is_(None),
        col(Ticket.building_key).is_(None) | col(Ticket.building_key).not_in(known),
    )
    return int(session.exec(statement).one())


def _overdue(points: list[KeyPoint], today: dt.date) -> list[OverduePoint]:
    late = [
        (p.target_date, p)
        for p in points
        if p.status != KeyPointStatus.cleared and p.target_date is not None and p.target_date < today
    ]
    return [
        OverduePoint(
            id=p.id or 0,
            code=p.code,
            address=p.address,
            category=p.category,
            status=p.status,
            status_label=_label(STATUS_LABELS, p.status),
            target_date=due,
            days_overdue=(today - due).days,
        )
        for due, p in sorted(late, key=lambda pair: (pair[0], _code_order(pair[1])))
    ]


def ledger(*, session: Session, rules: KeyPointRules, zone: ZoneInfo, year: int, now: dt.datetime) -> KeyPointLedger:
    """违建台账 for a local calendar year: m² demolished against the target, new 违建, points cleared and open, and
    the open points past their target date (as of `now`)."""
    start, end = _year_bounds(year, zone)
    points = list(session.exec(select(KeyPoint)))
    cleared = [
        p
        for p in points
        if p.status == KeyPointStatus.cleared and p.cleared_at is not None and start <= p.cleared_at < end
    ]
    construction = rules.construction_type
    demolished = sum(
        p.demolished_m2 or 0.0 for p in cleared if p.category == construction and p.kind == KeyPointKind.existing
    )
    target = rules.yearly_demolition_target_m2
    new_found = [
        p
        for p in points
        if p.category == construction and p.kind == KeyPointKind.new and p.found_at and p.found_at.year == year
    ]
    return KeyPointLedger(
        year=year,
        target_m2=target,
        demolished_m2=round(demolished, 2),
        new_demolished_m2=round(
            sum(p.demolished_m2 or 0.0 for p in cleared if p.category == construction and p.kind == KeyPointKind.new),
            2,
        ),
        progress=round(demolished / target, 4) if target else None,
        new_found=len(new_found),
        new_clues=_new_clues(session, construction, start, end),
        cleared=len(cleared),
        open=sum(1 for p in points if p.status != KeyPointStatus.cleared),
        overdue=_overdue(points, now.astimezone(zone).date()),
    )
