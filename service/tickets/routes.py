"""JSON API over tickets: list, detail with timeline, and lifecycle actions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query, status
from pydantic import BaseModel

from service.areas.service import ticket_place
from service.auth.models import User
from service.deps import CurrentUser, SessionDep, StateDep
from service.errors import InvalidInputError
from service.evidence.service import photo_view, photos
from service.flows.assist import add_assist, assist_view, assists, record_part, remove_assist
from service.flows.lifecycle import Lifecycle
from service.keypoints.service import key_point_for_ticket
from service.state import AppState
from service.tickets.models import (
    ACTION_BODIES,
    AssistBody,
    AssistPartBody,
    AssistPublic,
    State,
    TicketDetail,
    TicketPage,
    TicketPublic,
)
from service.tickets.service import Actor, Cursor, TicketFilter, get_ticket, list_tickets, rounds, timeline
from service.tickets.visibility import event_view, public_view, round_view

router = APIRouter(prefix="/api/v1/tickets", tags=["工单"])


@router.get("", response_model=TicketPage)
def list_route(
    session: SessionDep,
    user: CurrentUser,
    state: Annotated[State | None, Query(description="状态")] = None,
    office: Annotated[str | None, Query(max_length=64)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    grid: Annotated[str | None, Query(max_length=32, description="片区")] = None,
    community: Annotated[str | None, Query(max_length=64, description="居民区")] = None,
    cell: Annotated[str | None, Query(max_length=64, description="网格")] = None,
    unplaced: Annotated[bool, Query(description="仅待定位（地址未匹配到网格或匹配到多个）")] = False,
    overdue: Annotated[bool | None, Query(description="仅超期未办结（true）或未超期（false）")] = None,
    due_before: Annotated[dt.datetime | None, Query(description="办结时限早于该时间（带时区）")] = None,
    q: Annotated[
        str | None,
        Query(max_length=100, description="在标题、内容、地址、编号中搜索（全部词都要出现，见 docs/WEB.md）"),
    ] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="上一页返回的 next_cursor（深翻页用它代替 page）")
    ] = None,
    sort: Annotated[
        Literal["due", "newest", "relevance"],
        Query(description="排序：due 按办结时限（缺省）、newest 最新受理在前、relevance 按与 q 的相关度"),
    ] = "due",
) -> dict[str, Any]:
    """List tickets visible to the caller, filtered and paginated."""
    if due_before is not None and due_before.tzinfo is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["query", "due_before"], "msg": "时间必须带时区", "type": "value_error"}],
        )
    filters = TicketFilter(
        state=state,
        office=office,
        category=category,
        grid=grid,
        community=community,
        cell=cell,
        unplaced=unplaced,
        overdue=overdue,
        due_before=due_before,
        q=q,
    )
    try:
        if cursor is not None and page != 1:
            raise InvalidInputError("cursor", "cursor 与 page 只能用一个")
        if sort == "relevance" and not (q or "").strip():
            raise InvalidInputError("sort", "按相关度排序需要搜索词 q")
        found = list_tickets(
            session=session,
            actor=Actor.of(user),
            filters=filters,
            page=page,
            page_size=page_size,
            cursor=Cursor.decode(cursor) if cursor else None,
            newest_first=sort == "newest",
            relevance=sort == "relevance",
        )
    except InvalidInputError as exc:
        # the cursor is a query parameter: say so, as FastAPI does for the others
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["query", exc.field], "msg": exc.message, "type": "value_error"}],
        ) from exc
    return {
        "items": [public_view(t, user) for t in found.rows],
        "total": found.total,
        "total_exact": found.total_exact,
        "page": page,
        "page_size": page_size,
        "next_cursor": found.next_cursor,
    }


@router.get("/{ticket_id}", response_model=TicketDetail)
def detail_route(
    session: SessionDep, user: CurrentUser, state: StateDep, ticket_id: Annotated[int, Path(ge=1, le=2**62)]
) -> TicketDetail:
    """One ticket with its classification explanation, timeline and earlier rounds."""
    ticket = get_ticket(session=session, ticket_id=ticket_id, actor=Actor.of(user))
    events = [event_view(e, ticket, user) for e in timeline(session=session, ticket_id=ticket_id)]
    earlier = [round_view(r, ticket, user) for r in rounds(session=session, ticket_id=ticket_id)]
    public = public_view(ticket, user)
    place = ticket_place(session=session, ticket=ticket)
    pictures = [photo_view(p) for p in photos(session=session, ticket_id=ticket_id)]
    return TicketDetail(
        **public.model_dump(),
        classification=ticket.classification,
        timeline=events,
        rounds=earlier,
        place=place,
        photos=pictures,
        assists=[assist_view(a, state.rules) for a in assists(session=session, ticket_id=ticket_id)],
        key_point=key_point_for_ticket(session=session, ticket=ticket),
    )


def _act(
    session: SessionDep, user: User, state: AppState, ticket_id: int, action: str, body: BaseModel
) -> TicketPublic:
    lifecycle = Lifecycle(
        session=session,
        rules=state.rules,
        policy=state.policy,
        now=state.clock(),
        misroute_reasons=state.rules.learning.misroute_reasons,
    )
    ticket = lifecycle.perform(ticket_id=ticket_id, action=action, actor=Actor.of(user), body=body)
    return public_view(ticket, user)


TicketId = Annotated[int, Path(ge=1, le=2**62)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "角色无权执行"},
    404: {"description": "工单不存在或不可见"},
    409: {"description": "当前状态不允许该操作"},
}


def _register(action: str, body_model: type[BaseModel], summary: str) -> None:
    def endpoint(
        session: SessionDep,
        user: CurrentUser,
        state: StateDep,
        ticket_id: TicketId,
        body: Annotated[Any, Body()] = None,
    ) -> TicketPublic:
        try:
            parsed = body_model.model_validate(body or {})
        except Exception as exc:
            errors: list[Any] = getattr(exc, "errors", list)()
            detail = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors]
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail or str(exc)) from exc
        return _act(session, user, state, ticket_id, action, parsed)

    endpoint.__doc__ = summary
    endpoint.__annotations__["body"] = Annotated[body_model | None, Body()]
    router.add_api_route(
        f"/{{ticket_id}}/{action}",
        endpoint,
        methods=["POST"],
        response_model=TicketPublic,
        name=action,
        summary=summary,
        responses=_RESPONSES,
    )


_ASSIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "只有派单员可以添加或移除协办科室；只有协办科室可以记录协办情况"},
    404: {"description": "工单不存在或不可见"},
    409: {"description": "工单已办结或作废"},
    422: {"description": "科室未知、是主办科室，或协办情况为空"},
}


def _assist_list(session: SessionDep, state: AppState, ticket_id: int) -> list[AssistPublic]:
    return [assist_view(a, state.rules) for a in assists(session=session, ticket_id=ticket_id)]


@router.post("/{ticket_id}/assists", response_model=list[AssistPublic], responses=_ASSIST_RESPONSES)
def add_assist_route(
    session: SessionDep, user: CurrentUser, state: StateDep, ticket_id: TicketId, body: AssistBody
) -> list[AssistPublic]:
    """Ask another office to assist (联勤联动, dispatcher); asking again changes nothing."""
    add_assist(
        session=session, rules=state.rules, ticket_id=ticket_id, actor=Actor.of(user), body=body, now=state.clock()
    )
    return _assist_list(session, state, ticket_id)


@router.delete("/{ticket_id}/assists/{office}", response_model=list[AssistPublic], responses=_ASSIST_RESPONSES)
def remove_assist_route(
    session: SessionDep,
    user: CurrentUser,
    state: StateDep,
    ticket_id: TicketId,
    office: Annotated[str, Path(min_length=1, max_length=64)],
) -> list[AssistPublic]:
    """Take an assisting office off the ticket before it recorded its part (dispatcher)."""
    remove_assist(
        session=session, rules=state.rules, ticket_id=ticket_id, actor=Actor.of(user), office=office, now=state.clock()
    )
    return _assist_list(session, state, ticket_id)


@router.post("/{ticket_id}/assists/part", response_model=list[AssistPublic], responses=_ASSIST_RESPONSES)
def assist_part_route(
    session: SessionDep, user: CurrentUser, state: StateDep, ticket_id: TicketId, body: AssistPartBody
) -> list[AssistPublic]:
    """Record what an assisting office did (its own part; a dispatcher names the office)."""
    record_part(
        session=session, rules=state.rules, ticket_id=ticket_id, actor=Actor.of(user), body=body, now=state.clock()
    )
    return _assist_list(session, state, ticket_id)


SUMMARIES = {
    "confirm": "确认派单（派单员）",
    "reroute": "改派到其他科室或分类（派单员，需说明理由）",
    "merge": "作为重复工单合并到主工单（派单员）",
    "split": "疑似重复工单确认不重复，拆分并派单（派单员）",
    "cancel": "作废工单（派单员，需说明原因）",
    "approve-extension": "批准延期（派单员）",
    "refuse-extension": "驳回延期（派单员）",
    "accept": "签收（承办科室）",
    "contact": "记录先行联系（承办科室）",
    "resolve": "办结并填写结果（承办科室）",
    "return": "退单并说明理由（承办科室）",
    "request-extension": "申请延期（承办科室）",
    "follow-up": "回访满意度（不满意则重办）",
    "reopen": "重办（派单员，需说明原因）",
    "approve-resolution": "办结审核通过（派单员）：办结生效并反馈热线系统",
    "reject-resolution": "驳回办结（派单员，需说明理由）：退回承办科室重新办理",
}
for _action, _model in ACTION_BODIES.items():
    _register(_action, _model, SUMMARIES[_action])
