"""The 五违四必 pages: the key point list with the 违建 ledger, and one point with its tickets, photos and the
dispatcher's status form."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from service.auth.models import DISPATCH_ROLES, User
from service.deps import SessionDep, StateDep
from service.errors import DomainError, InvalidInputError, NotFoundError
from service.keypoints.models import (
    KIND_LABELS,
    STATUS_LABELS,
    KeyPoint,
    KeyPointChange,
    KeyPointLedger,
    KeyPointUpdate,
)
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
from service.state import AppState
from service.tickets.models import Ticket
from service.tickets.service import Actor
from service.tickets.statemachine import label
from service.tickets.visibility import public_view
from service.web.routes import WebUser, _back, _check_csrf, _local, _page, _photo_row, _zone

router = APIRouter(prefix="/ui", include_in_schema=False)
FIELD_LABELS = {"status": "状态", "demolished_m2": "拆除面积", "target_date": "整治期限", "note": "备注"}
BAR_WIDTH = 360


def _category(state: AppState, code: str) -> str:
    categories = state.rules.categories
    return categories[code].name if code in categories else code


def _year(raw: str | None, state: AppState) -> int:
    """The ledger's year: the one asked for, else this local year."""
    if raw and raw.isdigit() and 2000 <= int(raw) <= 2099:
        return int(raw)
    return state.clock().astimezone(_zone(state)).year


def _bar(data: KeyPointLedger) -> dict[str, Any]:
    """The SVG progress bar of m² demolished against the target (full at the target, never past it)."""
    share = min(data.progress or 0.0, 1.0)
    return {"width": BAR_WIDTH, "done": round(share * BAR_WIDTH, 1), "percent": f"{(data.progress or 0) * 100:.1f}"}


@router.get("/keypoints", response_class=HTMLResponse)
def keypoints_page(
    request: Request,
    web: WebUser,
    session: SessionDep,
    state: StateDep,
    status_code: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    zone: Annotated[str | None, Query(max_length=32)] = None,
    category: Annotated[str | None, Query(alias="type", max_length=64)] = None,
    year: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    """The key points and the year's 违建 ledger."""
    user, sess = web
    rules = state.rules
    filters = KeyPointFilter(status=status_code or None, zone=zone or None, category=category or None)
    points = [key_point_view(p) for p in list_key_points(session=session, filters=filters)]
    the_year = _year(year, state)
    data = ledger(session=session, rules=rules.key_points, zone=_zone(state), year=the_year, now=state.clock())
    return _page(
        request,
        "keypoints.html",
        user,
        sess.csrf,
        state,
        points=points,
        ledger=data,
        bar=_bar(data),
        names={p.category: _category(state, p.category) for p in points}
        | {p.category: _category(state, p.category) for p in data.overdue},
        types=[(code, _category(state, code)) for code in rules.key_points.types],
        zones=list(rules.places.grids),
        statuses={s.value: text for s, text in STATUS_LABELS.items()},
        chosen={"status": status_code or "", "zone": zone or "", "type": category or ""},
    )


def _ticket_row(ticket: Ticket, user: User, state: AppState, zone: ZoneInfo) -> dict[str, Any]:
    view = public_view(ticket, user)
    return {
        "id": ticket.id,
        "received": _local(ticket.received_at, zone),
        "category": _category(state, ticket.category or "") if ticket.category else "—",
        "state": label(ticket.state),
        "text": (view.title or view.content)[:60],
    }


def _detail(session: Session, state: AppState, user: User, point: KeyPoint) -> dict[str, Any]:
    zone = _zone(state)
    assert point.id is not None
    tickets = key_point_tickets(session=session, key_point_id=point.id, actor=Actor.of(user))
    return {
        "p": key_point_view(point),
        "category": _category(state, point.category),
        "tickets": [_ticket_row(t, user, state, zone) for t in tickets],
        "photos": [_photo_row(p, zone) for p in key_point_photos(session=session, tickets=tickets)],
        "cleared_at": _local(point.cleared_at, zone) if point.cleared_at else "",
        "may_edit": user.role in DISPATCH_ROLES,
        "statuses": {s.value: text for s, text in STATUS_LABELS.items()},
        "kinds": {k.value: text for k, text in KIND_LABELS.items()},
        "construction": point.category == state.rules.key_points.construction_type,
        "history": [_change_row(c, zone) for c in key_point_changes(session=session, key_point_id=point.id)],
    }


_FIELD_LABELS = {
    "address": "地址",
    "category": "问题类型",
    "kind": "存量/新增",
    "area_m2": "面积（㎡）",
    "found_at": "发现日期",
    "target_date": "整治期限",
    "note": "备注",
    "zone": "片区",
    "community": "居民区",
    "cell": "网格",
    "status": "状态",
    "demolished_m2": "拆除面积（㎡）",
    "cleared_at": "完成时间",
}


def _shown(field: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    if field == "status" and value in STATUS_LABELS:
        return STATUS_LABELS[value]
    if field == "kind" and value in KIND_LABELS:
        return KIND_LABELS[value]
    return str(value)


def _change_row(change: KeyPointChange, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "at": _local(change.at, zone),
        "by": change.actor,
        "source": "导入" if change.source == "import" else "更新",
        "what": [
            f"{_FIELD_LABELS.get(k, k)}：{_shown(k, before)} → {_shown(k, after)}"
            for k, (before, after) in change.changes.items()
        ],
    }


@router.get("/keypoints/{ref}", response_class=HTMLResponse)
def keypoint_page(request: Request, ref: str, web: WebUser, session: SessionDep, state: StateDep) -> Response:
    """One key point: its place, type, m², status, tickets and photos."""
    user, sess = web
    point_id = int(ref) if ref.isascii() and ref.isdigit() and len(ref) <= 18 else 0
    try:
        point = get_key_point(session=session, key_point_id=point_id)
    except NotFoundError:
        return _back("/ui/keypoints", state, err=f"点位 {ref[:20]} 不存在")
    return _page(request, "keypoint.html", user, sess.csrf, state, **_detail(session, state, user, point))


def _change(values: dict[str, str]) -> KeyPointUpdate:
    """The form as a change: every field is sent, a blank one clears it (the form shows the current values)."""
    demolished = values["demolished_m2"].strip()
    try:
        m2: float | str | None = float(demolished) if demolished else None
    except ValueError:
        m2 = demolished  # refused below, naming the field
    target = values["target_date"].strip() or None
    return KeyPointUpdate.model_validate(
        {"status": values["status"], "demolished_m2": m2, "target_date": target, "note": values["note"]}
    )


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    return f"{FIELD_LABELS.get(field, field)}（{field}）无效：{first['msg']}"


@router.post("/keypoints/{point_id}")
def keypoint_update(
    point_id: int,
    web: WebUser,
    session: SessionDep,
    state: StateDep,
    csrf: Annotated[str, Form(max_length=100)],
    status_value: Annotated[str, Form(alias="status", max_length=16)] = "",
    demolished_m2: Annotated[str, Form(max_length=32)] = "",
    target_date: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    user, sess = web
    _check_csrf(csrf, sess.csrf)
    back = f"/ui/keypoints/{point_id}"
    values = {"status": status_value, "demolished_m2": demolished_m2, "target_date": target_date, "note": note}
    try:
        change = _change(values)
        update_key_point(
            session=session,
            key_point_id=point_id,
            change=change,
            actor=Actor.of(user),
            rules=state.rules.key_points,
            now=state.clock(),
        )
    except ValidationError as exc:
        return _back(back, state, err=f"未保存：{_problem(exc)}")
    except InvalidInputError as exc:
        return _back(back, state, err=f"未保存：{FIELD_LABELS.get(exc.field, exc.field)}（{exc.field}）：{exc.message}")
    except NotFoundError as exc:
        return _back("/ui/keypoints", state, err=exc.message)
    except DomainError as exc:
        return _back(back, state, err=f"未保存：{exc.message}")
    return _back(back, state, msg="点位已更新")
