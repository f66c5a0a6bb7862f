"""JSON API over the 五违四必 key points: the list, one point with its tickets and photos, changes, the 违建 ledger."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from pydantic import Field

from service.deps import CurrentUser, SessionDep, StateDep
from service.evidence.models import TicketPhotoPublic
from service.evidence.service import photo_view
from service.keypoints.models import KeyPointChangePublic, KeyPointLedger, KeyPointPublic, KeyPointUpdate
from service.keypoints.service import (
    KeyPointFilter,
    get_key_point,
    key_point_changes,
    key_point_photos,
    key_point_tickets,
    key_point_view,
    ledger,
    list_key_points,
    update_key_point,
)
from service.tickets.models import TicketPublic
from service.tickets.service import Actor
from service.tickets.visibility import public_view


class KeyPointDetail(KeyPointPublic):
    # the tickets at the point's building that the reader may see, newest first, and their photos
    tickets: list[TicketPublic] = Field(default_factory=list)
    photos: list[TicketPhotoPublic] = Field(default_factory=list)
    # every change by a dispatcher or an import, newest first
    history: list[KeyPointChangePublic] = Field(default_factory=list)


router = APIRouter(prefix="/api/v1/keypoints", tags=["五违四必"])
KeyPointId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("", response_model=list[KeyPointPublic])
def list_route(
    session: SessionDep,
    user: CurrentUser,
    status: Annotated[str | None, Query(max_length=16, description="pending / working / cleared")] = None,
    zone: Annotated[str | None, Query(max_length=32, description="片区")] = None,
    community: Annotated[str | None, Query(max_length=64, description="居民区")] = None,
    cell: Annotated[str | None, Query(max_length=64, description="网格")] = None,
    category: Annotated[str | None, Query(alias="type", max_length=64, description="问题类型（分类代码）")] = None,
    kind: Annotated[str | None, Query(max_length=16, description="existing（存量）/ new（新增）")] = None,
) -> list[KeyPointPublic]:
    """Key points by the street's number, filtered by status, place, type and kind."""
    filters = KeyPointFilter(status=status, zone=zone, community=community, cell=cell, category=category, kind=kind)
    return [key_point_view(p) for p in list_key_points(session=session, filters=filters)]


@router.get("/ledger", response_model=KeyPointLedger)
def ledger_route(
    session: SessionDep,
    user: CurrentUser,
    state: StateDep,
    year: Annotated[int | None, Query(ge=2000, le=2099, description="年份（本地时间自然年，缺省今年）")] = None,
) -> KeyPointLedger:
    """违建台账: m² demolished against the year's target, new 违建, cleared, open and overdue points."""
    zone = ZoneInfo(state.rules.timezone)
    now = state.clock()
    return ledger(
        session=session, rules=state.rules.key_points, zone=zone, year=year or now.astimezone(zone).year, now=now
    )


@router.get("/{key_point_id}", response_model=KeyPointDetail)
def detail_route(session: SessionDep, user: CurrentUser, key_point_id: KeyPointId) -> KeyPointDetail:
    """One key point with the tickets at its building the reader may see, and their photos."""
    point = get_key_point(session=session, key_point_id=key_point_id)
    tickets = key_point_tickets(session=session, key_point_id=key_point_id, actor=Actor.of(user))
    return KeyPointDetail.model_validate(
        key_point_view(point),
        from_attributes=True,
        update={
            "tickets": [public_view(t, user) for t in tickets],
            "photos": [photo_view(p) for p in key_point_photos(session=session, tickets=tickets)],
            "history": [
                KeyPointChangePublic.model_validate(c, from_attributes=True)
                for c in key_point_changes(session=session, key_point_id=key_point_id)
            ],
        },
    )


@router.patch(
    "/{key_point_id}",
    response_model=KeyPointPublic,
    responses={
        403: {"description": "只有派单员和管理员可以更新点位"},
        422: {"description": "字段无效（detail 指出字段）"},
    },
)
def update_route(
    session: SessionDep, user: CurrentUser, state: StateDep, key_point_id: KeyPointId, body: KeyPointUpdate
) -> KeyPointPublic:
    """Change a key point's status, demolished m², target date or note (dispatcher)."""
    point = update_key_point(
        session=session,
        key_point_id=key_point_id,
        change=body,
        actor=Actor.of(user),
        rules=state.rules.key_points,
        now=state.clock(),
    )
    return key_point_view(point)
