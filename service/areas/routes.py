"""JSON API over the area registry, and the dispatcher's correction of a ticket's place."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from service.areas.models import AreaNode, PlaceBody
from service.areas.service import area_tree, relocate
from service.deps import CurrentUser, SessionDep, StateDep
from service.tickets.models import TicketPublic
from service.tickets.service import Actor
from service.tickets.visibility import public_view

router = APIRouter(prefix="/api/v1", tags=["区域"])


@router.get("/areas", response_model=list[AreaNode])
def areas_route(
    session: SessionDep,
    user: CurrentUser,
    inactive: Annotated[bool, Query(description="包括已停用的区域")] = False,
) -> list[AreaNode]:
    """The area registry as a tree: 片区 → 居民区 → 网格, with people and address patterns."""
    return area_tree(session=session, include_inactive=inactive)


@router.post(
    "/tickets/{ticket_id}/place",
    response_model=TicketPublic,
    responses={403: {"description": "只有派单员可以更正位置"}, 404: {"description": "工单不存在或不可见"}},
)
def place_route(
    session: SessionDep,
    user: CurrentUser,
    state: StateDep,
    ticket_id: Annotated[int, Path(ge=1, le=2**62)],
    body: PlaceBody,
) -> TicketPublic:
    """Correct a ticket's 片区/居民区/网格 (dispatcher); kept through later registry imports."""
    ticket = relocate(
        session=session,
        ticket_id=ticket_id,
        area_id=body.area_id,
        note=body.note,
        actor=Actor.of(user),
        now=state.clock(),
    )
    return public_view(ticket, user)
