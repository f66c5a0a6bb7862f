"""Web pages under /ui: login, the dispatcher's review queue, the office workbench and the ticket page."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from service.areas.models import UNPLACED_FILTER
from service.areas.service import area_choices, relocate, ticket_place
from service.auth.models import DISPATCH_ROLES, ROLE_LABELS, Role, User, WebSession
from service.auth.service import user_for_token
from service.auth.sessions import (
    RESUMABLE,
    SessionLimits,
    active_session,
    end_session,
    ended_session,
    keep_pending,
    set_pending,
    start_session,
    take_pending,
)
from service.deadlines.lights import lights
from service.deadlines.queue import dispatcher_queue, worst
from service.deadlines.queue import workbench as workbench_tickets
from service.deps import SessionDep, StateDep
from service.errors import DomainError, InvalidInputError, NotFoundError, http_status
from service.evidence.models import STAGE_LABELS, Stage, TicketPhoto
from service.evidence.service import attach, photos, read_photo, upload_stages
from service.flows.assist import add_assist, assist_view, assists, record_part, remove_assist
from service.flows.lifecycle import Lifecycle
from service.keypoints.service import key_point_for_ticket
from service.labels import LIGHTS, SYSTEM_ACTIONS, zh
from service.reports.models import AreaStatus, LedgerLine, ReportRow
from service.reports.period import check_period
from service.state import AppState
from service.tickets.models import (
    ACTION_BODIES,
    OPEN_STATES,
    STATE_LABELS,
    AssistBody,
    AssistPartBody,
    AssistPublic,
    State,
    Ticket,
    TicketEvent,
    TicketRoundPublic,
)
from service.tickets.service import Actor, TicketFilter, get_ticket, rounds, timeline
from service.tickets.statemachine import TRANSITIONS, label
from service.tickets.visibility import event_view, public_view, round_view
from service.web import session as web_session
from service.web.forms import ACTION_BUTTONS, FORM_FIELDS, FormProblem, domain_problem, parse_action

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
STATIC = Path(__file__).parent / "static"
# how often an open queue page asks whether tickets arrived or left
QUEUE_POLL_SECONDS = 15
# a page of the queue: the most pressing first; a dispatcher narrows a longer queue with the filters. 100, not
# more: each row carries its own action forms, and at 200 the page was 450 KB (docs/SCALING.md#派单审核队列)
QUEUE_SHOWN = 100
# an office's workbench likewise: its most pressing 200, and how many it has in all
WORKBENCH_SHOWN = 200
ACTION_LABELS = {**SYSTEM_ACTIONS, **{name: t.label for name, t in TRANSITIONS.items()}}


class LoginRequired(Exception):
    """No live session: the page sends the browser to the login page (saying so when a session had ended)."""

    def __init__(self, ended: bool, record: WebSession | None = None, parked: str = "") -> None:
        super().__init__("login required")
        self.ended = ended
        self.record = record
        self.parked = parked

    @property
    def timed_out(self) -> bool:
        return self.record is not None and self.record.ended_reason in RESUMABLE


def _secret(state: AppState) -> str:
    return state.settings.webhook_secret.get_secret_value()


def session_limits(state: AppState) -> SessionLimits:
    return SessionLimits.of(state.settings)


def web_user(request: Request, session: Session, state: AppState, *, touch: bool = True) -> tuple[User, WebSession]:
    """The user behind the page's session cookie, or LoginRequired carrying the session that just ended."""
    cookie = request.cookies.get(web_session.COOKIE)
    limits = session_limits(state)
    found = active_session(session=session, token=cookie, now=state.clock(), limits=limits, touch=touch)
    if found is None:
        raise LoginRequired(ended=bool(cookie), record=ended_session(session=session, token=cookie))
    record, user = found
    return user, record


def current_web_user(request: Request, session: SessionDep, state: StateDep) -> tuple[User, WebSession]:
    try:
        return web_user(request, session, state)
    except LoginRequired as exc:
        # a page opened after a timeout is the page to come back to after logging in
        if exc.record is not None and request.method == "GET" and _safe_path(request.url.path):
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if keep_pending(session=session, record=exc.record, pending={"kind": "page", "path": path[:1000]}):
                exc.parked = "登录后将回到刚才的页面"
        raise


WebUser = Annotated[tuple[User, WebSession], Depends(current_web_user)]
DISPATCHERS = DISPATCH_ROLES


class NotForRole(Exception):
    """A page of another role: the browser goes to the user's own landing page instead."""

    def __init__(self, user: User) -> None:
        super().__init__("not for this role")
        self.landing = _landing(user)


def page_for(*roles: Role) -> Callable[[tuple[User, WebSession]], tuple[User, WebSession]]:
    """The role check of every page: one dependency, the same everywhere."""

    def check(web: WebUser) -> tuple[User, WebSession]:
        if web[0].role not in roles:
            raise NotForRole(web[0])
        return web

    return check


DispatcherPage = Annotated[tuple[User, WebSession], Depends(page_for(*DISPATCHERS))]
OfficePage = Annotated[tuple[User, WebSession], Depends(page_for(Role.office))]


def login_redirect(state: AppState, exc: LoginRequired) -> RedirectResponse:
    """Where a request without a live session goes, saying why; a timed-out cookie stays so login can resume."""
    if exc.timed_out:
        return _back("/ui/login", state, err="会话已过期，请重新登录" + (f"；{exc.parked}" if exc.parked else ""))
    response = _back("/ui/login", state, err="会话已结束，请重新登录" if exc.ended else None)
    if exc.ended:
        response.delete_cookie(web_session.COOKIE)
    return response


def _safe_path(path: str) -> bool:
    """A local page of ours (never //host or a scheme): where a redirect may send the browser."""
    return path.startswith("/ui/") and not path.startswith("//") and "\\" not in path and "/ui/login" not in path


ERROR_TITLES = {
    status.HTTP_403_FORBIDDEN: "无法完成操作",
    status.HTTP_404_NOT_FOUND: "页面不存在",
    status.HTTP_405_METHOD_NOT_ALLOWED: "不支持的操作",
    status.HTTP_422_UNPROCESSABLE_CONTENT: "请求无效",
}


def wants_page(request: Request) -> bool:
    """A browser asking for a page under /ui (its errors are pages, not JSON)."""
    path = request.url.path
    return (path == "/ui" or path.startswith("/ui/")) and not path.startswith("/ui/queue/summary")


def error_page(request: Request, code: int, detail: str) -> HTMLResponse:
    """A Chinese error page with a way back; English framework texts are not shown to users."""
    title = ERROR_TITLES.get(code, "出错了")
    message = detail if any("\u4e00" <= ch <= "\u9fff" for ch in detail) else title
    response = templates.TemplateResponse(
        request, "error.html", {"title": title, "message": message, "user": None}, status_code=code
    )
    return response


def _check_csrf(submitted: str, expected: str) -> None:
    if not secrets.compare_digest(submitted.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试")


def _zone(state: AppState) -> ZoneInfo:
    return ZoneInfo(state.rules.timezone)


def _local(value: dt.datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%m-%d %H:%M") if value else "—"


def highlight(text: str, words: list[str]) -> Markup:
    """Escape the text, then mark the keywords that drove the classification (longest first, no overlaps)."""
    spans: list[tuple[int, int]] = []
    for word in sorted(set(words), key=len, reverse=True):
        start = text.find(word)
        while start >= 0:
            end = start + len(word)
            if all(end <= a or start >= b for a, b in spans):
                spans.append((start, end))
            start = text.find(word, end)
    out, pos = [], 0
    for a, b in sorted(spans):
        out.append(escape(text[pos:a]))
        out.append(Markup("<mark>") + escape(text[a:b]) + Markup("</mark>"))
        pos = b
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def _row(
    ticket: Ticket, state: AppState, now: dt.datetime, user: User, light: dict[str, str] | None = None
) -> dict[str, Any]:
    rules = state.rules
    light = lights(ticket, state.policy, now) if light is None else light
    return {
        "t": public_view(ticket, user),
        "cls": ticket.classification,
        "lights": light,
        "worst": worst(light),
        "category": rules.categories[ticket.category].name if ticket.category in rules.categories else "—",
        "office": rules.office_name(ticket.office) if ticket.office in rules.offices else "—",
        "state": label(ticket.state),
        "contact_due": _local(ticket.first_contact_due, _zone(state)),
        "resolve_due": _local(ticket.resolve_due, _zone(state)),
        "supervise_due": _local(ticket.supervise_due, _zone(state)) if ticket.supervise_due else None,
    }


def _flash(request: Request, state: AppState) -> dict[str, str | None]:
    found = web_session.decode_flash(request.cookies.get(web_session.FLASH_COOKIE), _secret(state))
    kind, text = found or ("", "")
    return {"flash": text if kind == "msg" else None, "error": text if kind == "err" else None}


def _render(request: Request, state: AppState, name: str, context: dict[str, Any]) -> HTMLResponse:
    """A page; a flash message it shows is shown once."""
    response = templates.TemplateResponse(request, name, {**_flash(request, state), **context})
    if web_session.FLASH_COOKIE in request.cookies:
        response.delete_cookie(web_session.FLASH_COOKIE, path="/ui")
    return response


def _page(request: Request, name: str, user: User, csrf: str, state: AppState, **context: Any) -> HTMLResponse:
    base = {
        "user": user,
        "role_label": ROLE_LABELS.get(Role(user.role), user.role),
        "csrf": csrf,
        "office_label": state.rules.office_name(user.office) if user.office in state.rules.offices else "",
        "light_labels": LIGHTS,
        "state_labels": {s.value: v for s, v in STATE_LABELS.items()},
    }
    return _render(request, state, name, {**base, **context})


def _back(path: str, state: AppState, *, msg: str | None = None, err: str | None = None) -> RedirectResponse:
    """A redirect after a form; its banner travels in a flash cookie the server signs, never in the URL."""
    response = RedirectResponse(path, status_code=status.HTTP_303_SEE_OTHER)
    if msg or err:
        value = web_session.encode_flash("err" if err else "msg", err or msg or "", _secret(state))
        response.set_cookie(
            web_session.FLASH_COOKIE,
            value,
            max_age=web_session.FLASH_MAX_AGE,
            path="/ui",
            httponly=True,
            samesite="strict",
        )
    return response


# Login --------------------------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, state: StateDep) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _render(request, state, "login.html", {"csrf": token})
    response.set_cookie(web_session.LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", max_age=600)
    return response


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    state: StateDep,
    token: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=100)],
) -> Response:
    _check_csrf(csrf, request.cookies.get(web_session.LOGIN_CSRF_COOKIE, "-"))
    client = request.client.host if request.client else "?"
    if state.throttle.blocked(client):
        return _back("/ui/login", state, err="登录失败次数过多，请稍后再试")
    user = user_for_token(session=session, token=token.strip())
    if user is None or user.id is None:
        state.throttle.fail(client)
        return _back("/ui/login", state, err="令牌无效或已吊销")
    limits = session_limits(state)
    record, value = start_session(
        session=session,
        user=user,
        now=state.clock(),
        limits=limits,
        client=client,
        user_agent=request.headers.get("user-agent", ""),
    )
    response = _back(_after_login(session, request, user, record, state), state)
    response.set_cookie(
        web_session.COOKIE,
        value,
        httponly=True,
        samesite="strict",
        max_age=int(limits.absolute.total_seconds()),
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(web_session.LOGIN_CSRF_COOKIE)
    return response


def _after_login(session: Session, request: Request, user: User, record: WebSession, state: AppState) -> str:
    """Back to what the same user was doing when their session timed out, else their landing page."""
    stale = request.cookies.get(web_session.COOKIE)
    pending = take_pending(session=session, token=stale, user=user, now=state.clock())
    if pending and pending.get("kind") == "page" and _safe_path(str(pending.get("path", ""))):
        return str(pending["path"])
    if pending and pending.get("kind") == "action":
        set_pending(session=session, record=record, pending=pending)
        return "/ui/resume"
    return "/ui/"


@router.post("/logout")
def logout(
    request: Request, web: WebUser, session: SessionDep, state: StateDep, csrf: Annotated[str, Form(max_length=100)]
) -> Response:
    _check_csrf(csrf, web[1].csrf)
    end_session(session=session, token=request.cookies.get(web_session.COOKIE), now=state.clock())
    response = _back("/ui/login", state, msg="已退出登录")
    response.delete_cookie(web_session.COOKIE)
    return response


@router.get("/")
def home(web: WebUser, state: StateDep) -> Response:
    return _back(_landing(web[0]), state)


def _landing(user: User) -> str:
    if user.role == Role.office:
        return "/ui/workbench"
    if user.role == Role.patrol:
        return "/ui/report"
    return "/ui/queue" if user.role in DISPATCHERS else "/ui/reports"


# Dispatcher queue ----------------------------------------------------------------------------------------------


def _waiting(
    session: Session, state: AppState, now: dt.datetime, filters: dict[str, str], user: User
) -> tuple[list[tuple[Ticket, dict[str, str]]], int]:
    """The most pressing QUEUE_SHOWN of the tickets waiting for the dispatcher (with their lights), and how many
    wait in all."""
    unplaced = filters.get("grid") == UNPLACED_FILTER
    wanted = TicketFilter(
        category=filters.get("category") or None,
        office=filters.get("office") or None,
        grid=None if unplaced else filters.get("grid") or None,
        unplaced=unplaced,
        q=filters.get("q") or None,
    )
    return dispatcher_queue(
        session=session, actor=Actor.of(user), filters=wanted, policy=state.policy, now=now, shown=QUEUE_SHOWN
    )


def _queue_rows(
    session: Session, state: AppState, now: dt.datetime, filters: dict[str, str], user: User
) -> tuple[list[dict[str, Any]], int]:
    waiting, total = _waiting(session, state, now, filters, user)
    # the row (with its redacted view) is built only for the tickets the page shows
    return [_row(ticket, state, now, user, light) for ticket, light in waiting], total


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, web: DispatcherPage, session: SessionDep, state: StateDep) -> Response:
    user, sess = web
    filters = {k: request.query_params.get(k, "")[:100] for k in ("category", "office", "grid", "q")}
    unknown = [
        label
        for key, label, known in (("category", "分类", state.rules.categories), ("office", "科室", state.rules.offices))
        if filters[key] and filters[key] not in known
    ]
    if unknown:
        return _back("/ui/queue", state, err=f"筛选条件无效：没有这个{'、'.join(unknown)}")
    rows, waiting = _queue_rows(session, state, state.clock(), filters, user)
    return _page(
        request,
        "queue.html",
        user,
        sess.csrf,
        state,
        rows=rows,
        waiting=waiting,
        filters=filters,
        rules=state.rules,
        highlight=highlight,
        back=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        query_string=request.url.query,
        poll_seconds=QUEUE_POLL_SECONDS,
    )


@router.get("/queue/summary")
def queue_summary(request: Request, session: SessionDep, state: StateDep) -> JSONResponse:
    """The queue's ticket ids for the page's poll; a poll is not activity and does not extend the session."""
    try:
        user, _ = web_user(request, session, state, touch=False)
    except LoginRequired:
        return JSONResponse({"expired": True, "message": "会话已过期，请重新登录"}, status_code=401)
    if user.role not in DISPATCHERS:
        return JSONResponse({"message": "无权查看派单审核队列"}, status_code=403)
    filters = {k: request.query_params.get(k, "")[:100] for k in ("category", "office", "grid", "q")}
    # the poll needs only the ids: no row is built or redacted
    waiting, total = _waiting(session, state, state.clock(), filters, user)
    return JSONResponse({"count": total, "ids": [ticket.id for ticket, _ in waiting]})


# Office workbench ----------------------------------------------------------------------------------------------


@router.get("/workbench", response_class=HTMLResponse)
def workbench(request: Request, web: OfficePage, session: SessionDep, state: StateDep) -> Response:
    user, sess = web
    working = tuple(
        str(s) for s in (State.dispatched, State.accepted, State.contacted, State.reopened, State.resolution_review)
    )
    now = state.clock()
    found, total = workbench_tickets(
        session=session, actor=Actor.of(user), states=working, policy=state.policy, now=now, shown=WORKBENCH_SHOWN
    )
    rows = [_row(ticket, state, now, user, light) for ticket, light in found]
    return _page(request, "workbench.html", user, sess.csrf, state, rows=rows, total=total, rules=state.rules)


# Ticket page and actions ---------------------------------------------------------------------------------------


def _visible_ticket(session: Session, user: User, ticket_id: int) -> Ticket | None:
    """The ticket if this user may see it (the API's rule: an office sees its own), else None."""
    if ticket_id <= 0:
        return None
    try:
        return get_ticket(session=session, ticket_id=ticket_id, actor=Actor.of(user))
    except NotFoundError:
        return None


@router.get("/tickets/{ticket_ref}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket_ref: str, web: WebUser, session: SessionDep, state: StateDep) -> Response:
    user, sess = web
    # any text can be typed into the address bar: it gets the same Chinese page as a missing ticket
    ticket_id = int(ticket_ref) if ticket_ref.isascii() and ticket_ref.isdigit() and len(ticket_ref) <= 18 else 0
    ticket = _visible_ticket(session, user, ticket_id)
    if ticket is None:
        missing = _page(request, "missing.html", user, sess.csrf, state, ticket_id=ticket_ref[:40])
        missing.status_code = status.HTTP_404_NOT_FOUND
        return missing
    zone = _zone(state)
    row = _row(ticket, state, state.clock(), user)
    view = row["t"]
    words = [w for found in ticket.classification.get("matched_keywords", {}).values() for w in found]
    history = timeline(session=session, ticket_id=ticket_id)
    events = [
        {
            "e": event_view(e, ticket, user),
            "at": _local(e.at, zone),
            "from": label(e.from_state) if e.from_state else "—",
            "to": label(e.to_state),
            "action": zh(ACTION_LABELS, e.action),
        }
        for e in history
    ]
    earlier = [_round_row(round_view(r, ticket, user), zone) for r in rounds(session=session, ticket_id=ticket_id)]
    stages = upload_stages(session=session, ticket=ticket, actor=Actor.of(user))
    helpers = [_assist_row(assist_view(a, state.rules), zone) for a in assists(session=session, ticket_id=ticket_id)]
    allowed = [
        a
        for a, t in TRANSITIONS.items()
        if a != "classify" and user.role in t.roles and State(ticket.state) in t.sources
    ]
    return _page(
        request,
        "ticket.html",
        user,
        sess.csrf,
        state,
        row=row,
        phone=view.caller_phone,
        text=highlight(view.content, words),
        title=highlight(view.title, words),
        events=events,
        rounds=earlier,
        allowed=allowed,
        rules=state.rules,
        classification=ticket.classification,
        current=_current_evidence(ticket, history, user, state),
        received=_local(ticket.created_at, zone),
        called=_local(ticket.received_at, zone),
        buttons=ACTION_BUTTONS,
        place=ticket_place(session=session, ticket=ticket),
        photos=[_photo_row(p, zone) for p in photos(session=session, ticket_id=ticket_id)],
        photo_stages={s.value: STAGE_LABELS[s] for s in stages},
        may_upload=State(ticket.state) in OPEN_STATES and ticket.state != State.resolution_review and bool(stages),
        area_choices=area_choices(session=session) if user.role in DISPATCHERS else [],
        assists=helpers,
        assisting=user.role == Role.office and user.office != ticket.office,
        assist_choices=[
            (code, o.name)
            for code, o in state.rules.offices.items()
            if code != ticket.office and code not in {h["a"].office for h in helpers}
        ]
        if user.role in DISPATCHERS and State(ticket.state) in OPEN_STATES
        else [],
        suggested=set(ticket.classification.get("co_handlers") or ()),
        key_point=key_point_for_ticket(session=session, ticket=ticket),
    )


def _assist_row(assist: AssistPublic, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "a": assist,
        "asked": _local(assist.asked_at, zone),
        "part": _local(assist.part_at, zone) if assist.part_at else "",
    }


def _photo_row(photo: TicketPhoto, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "url": f"/ui/tickets/{photo.ticket_id}/photos/{photo.id}",
        "stage": STAGE_LABELS.get(Stage(photo.stage), photo.stage),
        "by": photo.uploaded_by,
        "at": _local(photo.uploaded_at, zone),
        "size": f"{photo.width}×{photo.height}",
    }


def _verdict(done: dt.datetime | None, due: dt.datetime | None, missed: str) -> str:
    if done is None:
        return missed
    return "按时" if due is None or done <= due else "超时"


def _round_row(past: TicketRoundPublic, zone: ZoneInfo) -> dict[str, Any]:
    """An earlier round as the ticket page shows it: its deadlines, what was done, and the verdicts."""
    return {
        "name": "原办理" if past.round == 0 else f"第 {past.round} 次重办",
        "span": f"{_local(past.started_at, zone)} — {_local(past.ended_at, zone)}",
        "contact": f"{_local(past.first_contact_due, zone)}"
        f"（{_verdict(past.first_contact_at, past.first_contact_due, '未记录先行联系')}）",
        "resolve": f"{_local(past.resolve_due, zone)}（{_verdict(past.resolved_at, past.resolve_due, '未办结')}）",
        "result": f"{past.resolve_result}：{past.resolve_note}" if past.resolve_result else "—",
        "satisfaction": past.satisfaction or "—",
        "reconstructed": past.reconstructed,
    }


def _current_evidence(ticket: Ticket, history: list[TicketEvent], user: User, state: AppState) -> dict[str, Any] | None:
    """When a person moved the ticket away from the model's category: who, why, and what speaks for the new one."""
    cls = ticket.classification or {}
    if not cls or (ticket.category == cls.get("category") and ticket.office == cls.get("office")):
        return None
    moves = [e for e in history if e.action == "reroute"]
    last = event_view(moves[-1], ticket, user) if moves else None
    rules = state.rules
    return {
        "category": rules.categories[ticket.category].name if ticket.category in rules.categories else "—",
        "office": rules.office_name(ticket.office) if ticket.office in rules.offices else "—",
        "keywords": (cls.get("matched_keywords") or {}).get(ticket.category, []),
        "score": (cls.get("probabilities") or {}).get(ticket.category),
        "by": last.actor if last else "",
        "reason": (last.note or "") if last else "",
    }


def _back_path(raw: object, ticket_id: int) -> str:
    back = str(raw or "")
    return back if _safe_path(back) else f"/ui/tickets/{ticket_id}"


def _ticket_summary(ticket: Ticket, state: AppState) -> str:
    rules = state.rules
    category = rules.categories[ticket.category].name if ticket.category in rules.categories else "未分类"
    office = rules.office_name(ticket.office) if ticket.office in rules.offices else "未派单"
    return f"#{ticket.id} {ticket.external_id}：{category} → {office}，当前状态「{label(ticket.state)}」"


def _problem_page(
    request: Request, session: Session, state: AppState, web: tuple[User, WebSession], problem: FormProblem, back: str
) -> HTMLResponse:
    """A refused form comes back whole: which ticket, which field and why, with what was typed still in it."""
    user, sess = web
    ticket = _visible_ticket(session, user, problem.ticket_id)
    visible = ticket is not None
    page = _page(
        request,
        "action_problem.html",
        user,
        sess.csrf,
        state,
        problem=problem,
        ticket=public_view(ticket, user) if ticket is not None and visible else None,
        ticket_summary=_ticket_summary(ticket, state) if ticket is not None and visible else "",
        back=back,
        rules=state.rules,
        buttons=ACTION_BUTTONS,
    )
    page.status_code = status.HTTP_422_UNPROCESSABLE_CONTENT if problem.errors else status.HTTP_409_CONFLICT
    return page


@router.post("/tickets/{ticket_id}/{action}")
async def ticket_action(
    request: Request, ticket_id: int, action: str, session: SessionDep, state: StateDep
) -> Response:
    form = await request.form()
    values = {k: str(form[k])[:5000] for k in FORM_FIELDS if k in form}
    back = _back_path(form.get("back"), ticket_id)
    csrf = str(form.get("csrf", ""))
    try:
        web = await run_in_threadpool(web_user, request, session, state)
    except LoginRequired as exc:
        await run_in_threadpool(_park_action, session, exc, csrf, ticket_id, action, values, back)
        raise
    user, sess = web
    _check_csrf(csrf, sess.csrf)
    if action == "place":
        return await run_in_threadpool(_place, session, state, user, ticket_id, values, back)
    if action in ("assist", "unassist", "assist-part"):
        return await run_in_threadpool(_assist_form, session, state, user, ticket_id, action, values, back)
    if action == "photos":
        limit = state.rules.evidence.max_bytes
        files = [f for f in form.getlist("files") if isinstance(f, StarletteUpload) and f.filename]
        uploads = [await f.read(limit + 1) for f in files[: state.rules.evidence.max_count + 1]]
        stage = str(form.get("stage", ""))
        return await run_in_threadpool(_photos, session, state, user, ticket_id, stage, uploads, back)
    model = ACTION_BODIES.get(action)
    if model is None:
        return _back(back, state, err=f"未知操作「{action}」")
    parsed = parse_action(action=action, ticket_id=ticket_id, model=model, values=values)
    if isinstance(parsed, FormProblem):
        return _problem_page(request, session, state, web, parsed, back)
    lifecycle = Lifecycle(
        session=session,
        rules=state.rules,
        policy=state.policy,
        now=state.clock(),
        misroute_reasons=state.rules.learning.misroute_reasons,
    )
    try:
        await run_in_threadpool(
            lifecycle.perform, ticket_id=ticket_id, action=action, actor=Actor.of(user), body=parsed
        )
    except DomainError as exc:
        problem = domain_problem(action=action, ticket_id=ticket_id, values=values, exc=exc)
        if problem.errors or values.get("note") or values.get("reason"):
            return _problem_page(request, session, state, web, problem, back)
        return _back(back, state, err=problem.summary())
    return _back(back, state, msg=f"工单 {ticket_id}：{zh(ACTION_LABELS, action)}成功")


def _place(
    session: Session, state: AppState, user: User, ticket_id: int, values: dict[str, str], back: str
) -> Response:
    """The dispatcher's 更正位置 form: the chosen area, and an optional note."""
    raw = values.get("area_id", "")
    if not raw.isdigit():
        return _back(back, state, err="更正位置：请选择区域（area_id）")
    try:
        relocate(
            session=session,
            ticket_id=ticket_id,
            area_id=int(raw),
            note=values.get("note") or None,
            actor=Actor.of(user),
            now=state.clock(),
        )
    except DomainError as exc:
        return _back(back, state, err=f"更正位置：{exc.message}")
    return _back(back, state, msg=f"工单 {ticket_id}：位置已更正")


def _assist_form(
    session: Session, state: AppState, user: User, ticket_id: int, action: str, values: dict[str, str], back: str
) -> Response:
    """The ticket page's 联勤联动 forms: add or remove an assisting office (dispatcher), record a part (the office)."""
    actor, now, rules = Actor.of(user), state.clock(), state.rules
    what = zh(SYSTEM_ACTIONS, action)
    office = values.get("office", "")
    try:
        if action == "assist":
            body = AssistBody(office=office[:64], note=(values.get("note") or "")[:2000] or None)
            add_assist(session=session, rules=rules, ticket_id=ticket_id, actor=actor, body=body, now=now)
        elif action == "unassist":
            remove_assist(session=session, rules=rules, ticket_id=ticket_id, actor=actor, office=office, now=now)
        else:
            note = (values.get("note") or "").strip()[:2000]
            if not note:
                return _back(back, state, err="协办情况：请填写本科室做了什么（note）")
            part = AssistPartBody(note=note, office=office[:64] or None)
            record_part(session=session, rules=rules, ticket_id=ticket_id, actor=actor, body=part, now=now)
    except DomainError as exc:
        return _back(back, state, err=f"{what}：{exc.message}")
    except ValueError:
        return _back(back, state, err=f"{what}：请选择科室（office）")
    return _back(back, state, msg=f"工单 {ticket_id}：{what}已保存")


def _photos(
    session: Session, state: AppState, user: User, ticket_id: int, stage: str, uploads: list[bytes], back: str
) -> Response:
    """The ticket page's photo form: every file checked, cleaned and stored, or none and the reason shown."""
    try:
        kept = attach(
            session=session,
            store=state.photos,
            rules=state.rules.evidence,
            ticket_id=ticket_id,
            actor=Actor.of(user),
            stage=stage,
            uploads=uploads,
            now=state.clock(),
        )
    except DomainError as exc:
        return _back(back, state, err=f"上传照片：{exc.message}")
    return _back(back, state, msg=f"工单 {ticket_id}：已上传照片 {len(kept)} 张")


@router.get("/tickets/{ticket_id}/photos/{photo_id}")
def ticket_photo(ticket_id: int, photo_id: int, web: WebUser, session: SessionDep, state: StateDep) -> Response:
    """One photo for the ticket page, under the ticket's access rules."""
    from service.evidence.routes import photo_response

    try:
        data, content_type = read_photo(
            session=session, store=state.photos, ticket_id=ticket_id, photo_id=photo_id, actor=Actor.of(web[0])
        )
    except NotFoundError:
        return Response("照片不存在或无权查看", status_code=404, media_type="text/plain; charset=utf-8")
    except DomainError as exc:
        return Response(exc.message, status_code=http_status(exc), media_type="text/plain; charset=utf-8")
    return photo_response(data, content_type)


def _park_action(
    session: Session, exc: LoginRequired, csrf: str, ticket_id: int, action: str, values: dict[str, str], back: str
) -> None:
    """A form sent just after a timeout is kept for its user to submit after logging in (only with its CSRF)."""
    record = exc.record
    if record is None or action not in ACTION_BODIES or not secrets.compare_digest(csrf.encode(), record.csrf.encode()):
        return
    pending = {"kind": "action", "ticket_id": ticket_id, "action": action, "values": values, "back": back}
    if keep_pending(session=session, record=record, pending=pending):
        exc.parked = f"登录后可以继续提交工单 #{ticket_id}「{ACTION_BUTTONS.get(action, action)}」"


@router.get("/resume", response_class=HTMLResponse)
def resume_page(request: Request, web: WebUser, session: SessionDep, state: StateDep) -> Response:
    """The form a timed-out session was submitting, filled in again for the user to send."""
    user, sess = web
    pending = sess.pending or {}
    if pending.get("kind") != "action":
        return _back(_landing(user), state)
    set_pending(session=session, record=sess, pending=None)
    ticket = _visible_ticket(session, user, int(pending.get("ticket_id", 0)))
    if ticket is None:
        return _back(_landing(user), state, err="会话过期前操作的工单已不存在或无权查看")
    return _page(
        request,
        "resume.html",
        user,
        sess.csrf,
        state,
        ticket=public_view(ticket, user),
        ticket_summary=_ticket_summary(ticket, state),
        action=str(pending.get("action")),
        values=dict(pending.get("values") or {}),
        back=_back_path(pending.get("back"), ticket.id or 0),
        rules=state.rules,
        buttons=ACTION_BUTTONS,
    )


@router.post("/resume/discard")
def resume_discard(
    web: WebUser, session: SessionDep, state: StateDep, csrf: Annotated[str, Form(max_length=100)]
) -> Response:
    _check_csrf(csrf, web[1].csrf)
    set_pending(session=session, record=web[1], pending=None)
    return _back(_landing(web[0]), state, msg="已放弃会话过期前的操作")


# Reports ------------------------------------------------------------------------------------------------------


def _office_rates(rows: list[ReportRow]) -> list[dict[str, Any]]:
    """Closure and on-time rates per office, from the report's per-category counts."""
    by_office: dict[str, dict[str, float]] = {}
    for row in rows:
        acc = by_office.setdefault(row.office_name or "—", {"resolved": 0, "due": 0, "on_time": 0})
        acc["resolved"] += row.resolved
        acc["due"] += row.due
        acc["on_time"] += row.on_time
    return [
        {
            "name": name,
            "closure": (v["resolved"] / v["due"]) if v["due"] else None,
            "on_time": (v["on_time"] / v["resolved"]) if v["resolved"] else None,
        }
        for name, v in sorted(by_office.items())
    ]


def _area_charts(statuses: list[AreaStatus], width: int = 300) -> list[dict[str, Any]]:
    """One small chart per 片区: a row for the 片区 and each of its 居民区, with bars for open, overdue and cleared
    tickets on one scale (the largest count on the page), so a leader sees where the backlog sits."""
    peak = max([max(s.open, s.cleared) for s in statuses] + [1])
    charts: list[dict[str, Any]] = []
    for area in statuses:
        if area.level == "grid":
            charts.append({"zone": area.name, "rows": []})
        counts = (("open", "在办", area.open), ("overdue", "超期", area.overdue), ("cleared", "办结", area.cleared))
        bars = [{"kind": k, "label": label, "n": n, "w": round(n / peak * width, 1)} for k, label, n in counts]
        charts[-1]["rows"].append({"name": area.name, "level": area.level, "bars": bars})
    return charts


def _trend(ledger: list[LedgerLine], width: int = 520, height: int = 150) -> dict[str, Any]:
    """The 动态清零 chart: one line per clearance category, a dot per day (its own tooltip), axes labelled.
    Points stay inside the drawing area, so the last day, often the only non-zero one, is never cut off."""
    peak = max([d.open for item in ledger for d in item.days] + [1])
    lines = []
    for item in ledger:
        days = item.days
        step = width / max(1, len(days) - 1)
        dots = [
            {
                "x": round(i * step if len(days) > 1 else width / 2, 1),
                "y": round(height - d.open / peak * height, 1),
                "tip": f"{item.name} {d.date}：日末在办 {d.open}，新增 {d.new}，办结 {d.closed}",
            }
            for i, d in enumerate(days)
        ]
        lines.append(
            {
                "name": item.name,
                "points": " ".join(f"{d['x']},{d['y']}" for d in dots),
                "dots": dots,
                "last": days[-1] if days else None,
            }
        )
    first = ledger[0].days if ledger and ledger[0].days else []
    return {
        "lines": lines,
        "width": width,
        "height": height,
        "peak": peak,
        "start": first[0].date if first else "",
        "end": first[-1].date if first else "",
    }


@router.get("/reports/export")
def reports_export(request: Request, web: WebUser, state: StateDep) -> Response:
    """The report page's export: the same files as the report API, with the page's session instead of a token."""
    from service.reports.export import to_csv, to_xlsx
    from service.reports.service import load_report

    user, _ = web
    period = _report_period(request, state)
    if isinstance(period, str):
        return _back("/ui/reports", state, err=period)
    start, end = period
    fmt = request.query_params.get("format", "xlsx")
    if fmt not in ("xlsx", "csv"):
        return _back("/ui/reports", state, err="导出格式只能是 xlsx 或 csv")
    by = _report_by(request)
    if by is None:
        return _back("/ui/reports", state, err="分行方式只能是 承办科室、片区、居民区 或 网格")
    office = user.office if user.role == Role.office else None
    report = load_report(state.reads, state.rules, start, end, office, by=by)
    name = f"hotline-report-{start}_{end}{'' if by == 'office' else '-' + by}.{fmt}"
    body, media = (
        (to_xlsx(report), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        if fmt == "xlsx"
        else (to_csv(report), "text/csv; charset=utf-8")
    )
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _report_by(request: Request) -> str | None:
    """The report's rows (office, or an area level), or None when the address names no such breakdown."""
    from service.reports.service import BREAKDOWNS

    by = request.query_params.get("by", "") or "office"
    return by if by in BREAKDOWNS else None


def _report_period(request: Request, state: AppState) -> tuple[dt.date, dt.date] | str:
    """The page's start and end dates (the last 30 days by default), or what is wrong with them."""
    today = state.clock().astimezone(_zone(state)).date()
    try:
        end = dt.date.fromisoformat(request.query_params.get("end", "") or today.isoformat())
        start = dt.date.fromisoformat(
            request.query_params.get("start", "") or (end - dt.timedelta(days=29)).isoformat()
        )
    except ValueError:
        return "日期格式应为 YYYY-MM-DD"
    try:
        check_period(start, end, start_field="start")
    except InvalidInputError as exc:
        return exc.message
    return start, end


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, web: WebUser, state: StateDep) -> Response:
    from service.reports.service import BREAKDOWN_LABELS, area_status, load_report, monitor

    user, sess = web
    period = _report_period(request, state)
    if isinstance(period, str):
        return _back("/ui/reports", state, err=period)
    start, end = period
    by = _report_by(request)
    if by is None:
        return _back("/ui/reports", state, err="分行方式只能是 承办科室、片区、居民区 或 网格")
    office = user.office if user.role == Role.office else None
    report = load_report(state.reads, state.rules, start, end, office, by=by)
    with state.reads.connect() as conn:
        watch = monitor(conn, state.rules, end, office=office)
        areas = area_status(conn, state.rules, start, end, office=office)
    return _page(
        request,
        "reports.html",
        user,
        sess.csrf,
        state,
        report=report,
        start=start,
        end=end,
        by=by,
        breakdowns=BREAKDOWN_LABELS,
        table=[(r.area if by != "office" else r.office_name, r.category_name, r) for r in report.rows]
        + [("合计", "", report.totals)],
        areas=_area_charts(areas),
        offices=_office_rates(report.rows),
        trend=_trend(report.ledger),
        watch=watch,
    )


# Learning -----------------------------------------------------------------------------------------------------


@router.get("/learning", response_class=HTMLResponse)
def learning_page(request: Request, web: DispatcherPage, session: SessionDep, state: StateDep) -> Response:
    """Auto-dispatch and correction rates by week and category, and the model history."""
    from service.learning.registry import ModelStore
    from service.learning.report import model_history, week_totals, weekly

    user, sess = web
    weeks = 12
    rows = weekly(state.reads, state.rules, now=state.clock(), weeks=weeks)
    store = ModelStore(state.settings.models_root, state.settings.model)
    return _page(
        request,
        "learning.html",
        user,
        sess.csrf,
        state,
        weeks=weeks,
        rows=rows,
        totals=week_totals(rows),
        models=model_history(session, store, state.rules),
        misroute=state.rules.learning.misroute_reasons,
    )
