"""The patrol's phone page (巡查上报): a 网格员, 平安志愿者 or 城管 files a problem with photos from the camera."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from service.areas.service import area_choices
from service.auth.models import DISPATCH_ROLES, Role, User, WebSession
from service.deps import SessionDep, StateDep
from service.errors import DomainError
from service.flows.discover import PatrolReport, file_patrol
from service.state import AppState
from service.tickets.models import STATE_LABELS, State, Ticket, TicketEvent
from service.tickets.service import Actor
from service.web.routes import _back, _check_csrf, _local, _page, _zone, page_for, web_user

router = APIRouter(prefix="/ui", include_in_schema=False)
PatrolPage = Annotated[tuple[User, WebSession], Depends(page_for(Role.patrol, *DISPATCH_ROLES))]
FIELDS = ("category", "text", "area_id", "address")


def _mine(session: Session, state: AppState, user: User) -> list[dict[str, Any]]:
    """What this user filed lately, newest first."""
    filed = select(TicketEvent.ticket_id).where(TicketEvent.action == "discover", TicketEvent.actor == user.name)
    tickets = session.exec(
        select(Ticket).where(col(Ticket.id).in_(filed)).order_by(col(Ticket.id).desc()).limit(20)
    ).all()
    rules = state.rules
    return [
        {
            "id": t.id,
            "when": _local(t.created_at, _zone(state)),
            "category": rules.categories[t.category].name if t.category in rules.categories else "—",
            "office": rules.office_name(t.office) if t.office in rules.offices else "—",
            "state": STATE_LABELS.get(State(t.state), t.state),
        }
        for t in tickets
    ]


def _form_page(
    request: Request,
    session: Session,
    state: AppState,
    web: tuple[User, WebSession],
    form: dict[str, str],
    error: str | None = None,
) -> HTMLResponse:
    user, sess = web
    root = user.area_id if user.role == Role.patrol else None
    return _page(
        request,
        "report.html",
        user,
        sess.csrf,
        state,
        form=form,
        categories=[(code, cat.name) for code, cat in state.rules.categories.items()],
        areas=area_choices(session=session, root_id=root),
        max_count=state.rules.evidence.max_count,
        mine=_mine(session, state, user),
        **({"error": error} if error else {}),
    )


@router.get("/report", response_class=HTMLResponse)
def report_page(request: Request, web: PatrolPage, session: SessionDep, state: StateDep) -> Response:
    """The patrol's filing form and what the patrol filed lately."""
    return _form_page(request, session, state, web, dict.fromkeys(FIELDS, ""))


@router.post("/report")
async def report_submit(request: Request, session: SessionDep, state: StateDep) -> Response:
    form = await request.form()
    user, sess = await run_in_threadpool(web_user, request, session, state)
    if user.role != Role.patrol and user.role not in DISPATCH_ROLES:
        return _back("/ui/", state, err="只有巡查人员和派单员可以上报")
    _check_csrf(str(form.get("csrf", "")), sess.csrf)
    values = {k: str(form.get(k, ""))[:5000] for k in FIELDS}
    limit = state.rules.evidence.max_bytes
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    uploads = [await f.read(limit + 1) for f in files[: state.rules.evidence.max_count + 1]]
    if not values["area_id"].isdigit():
        return _back("/ui/report", state, err="请选择位置（area_id）")
    report = PatrolReport(
        text=values["text"],
        area_id=int(values["area_id"]),
        category=values["category"] or None,
        address=values["address"],
    )
    try:
        ticket = await run_in_threadpool(
            lambda: file_patrol(
                session=session,
                classifier=state.classifier,
                policy=state.policy,
                rules=state.rules,
                store=state.photos,
                actor=Actor.of(user),
                report=report,
                uploads=uploads,
                now=state.clock(),
            )
        )
    except DomainError as exc:
        # the form comes back as it was typed (the photos must be chosen again), with what is wrong
        page = _form_page(request, session, state, (user, sess), values, error=f"上报失败：{exc.message}")
        page.status_code = 422
        return page
    office = state.rules.office_name(ticket.office) if ticket.office in state.rules.offices else "派单员审核"
    where = "已派单到" if ticket.state == State.dispatched else "待派单员审核，建议承办"
    return _back("/ui/report", state, msg=f"已上报：工单 #{ticket.id}，{where} {office}")
