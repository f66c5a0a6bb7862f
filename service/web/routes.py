"""Web pages under /ui: login, the dispatcher's review queue, the office workbench and the ticket page."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from service.auth.models import ROLE_LABELS, Role, User, WebSession
from service.auth.service import user_for_token
from service.auth.sessions import SessionLimits, active_session, end_session, start_session
from service.deadlines.sweep import lights
from service.deps import SessionDep, StateDep
from service.errors import DomainError
from service.labels import LIGHTS, SYSTEM_ACTIONS, zh
from service.state import AppState
from service.tickets.models import OPEN_STATES, STATE_LABELS, State, Ticket
from service.tickets.routes import ACTION_BODIES
from service.tickets.service import Actor, Lifecycle, timeline, utcnow
from service.tickets.statemachine import TRANSITIONS, label
from service.tickets.visibility import event_view, public_view
from service.web import session as web_session

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
STATIC = Path(__file__).parent / "static"
ACTION_LABELS = {**SYSTEM_ACTIONS, **{name: t.label for name, t in TRANSITIONS.items()}}


class LoginRequired(Exception):
    """No live session: the page sends the browser to the login page (saying so when a session had ended)."""

    def __init__(self, ended: bool) -> None:
        super().__init__("login required")
        self.ended = ended


def _secret(state: AppState) -> str:
    return state.settings.webhook_secret.get_secret_value()


def session_limits(state: AppState) -> SessionLimits:
    return SessionLimits.of(state.settings)


def current_web_user(request: Request, session: SessionDep, state: StateDep) -> tuple[User, WebSession]:
    cookie = request.cookies.get(web_session.COOKIE)
    found = active_session(session=session, token=cookie, now=state.clock(), limits=session_limits(state))
    if found is None:
        raise LoginRequired(ended=bool(cookie))
    record, user = found
    return user, record


WebUser = Annotated[tuple[User, WebSession], Depends(current_web_user)]


def login_redirect(state: AppState, exc: LoginRequired) -> RedirectResponse:
    """Where a request without a live session goes; the stale cookie is dropped."""
    response = _back("/ui/login", state, err="会话已结束，请重新登录" if exc.ended else None)
    if exc.ended:
        response.delete_cookie(web_session.COOKIE)
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


def _row(ticket: Ticket, state: AppState, now: dt.datetime, user: User) -> dict[str, Any]:
    rules = state.rules
    light = lights(ticket, state.policy, now)
    worst = "red" if "red" in light.values() else "yellow" if "yellow" in light.values() else "green"
    return {
        "t": public_view(ticket, user),
        "cls": ticket.classification,
        "lights": light,
        "worst": worst if light else "none",
        "category": rules.categories[ticket.category].name if ticket.category in rules.categories else "—",
        "office": rules.office_name(ticket.office) if ticket.office in rules.offices else "—",
        "state": label(ticket.state),
        "contact_due": _local(ticket.first_contact_due, _zone(state)),
        "resolve_due": _local(ticket.resolve_due, _zone(state)),
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
    _, value = start_session(
        session=session,
        user=user,
        now=state.clock(),
        limits=limits,
        client=client,
        user_agent=request.headers.get("user-agent", ""),
    )
    response = _back("/ui/", state)
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
    return "/ui/queue" if user.role in (Role.dispatcher, Role.admin) else "/ui/reports"


# Dispatcher queue ----------------------------------------------------------------------------------------------


def _queue_rows(
    session: Session, state: AppState, now: dt.datetime, filters: dict[str, str], user: User
) -> list[dict[str, Any]]:
    statement = select(Ticket).where(col(Ticket.state).in_([str(s) for s in OPEN_STATES]))
    if filters.get("category"):
        statement = statement.where(Ticket.category == filters["category"])
    if filters.get("office"):
        statement = statement.where(Ticket.office == filters["office"])
    if filters.get("grid"):
        statement = statement.where(Ticket.grid == filters["grid"])
    if filters.get("q"):
        pattern = f"%{filters['q'].replace('%', '')}%"
        statement = statement.where(
            col(Ticket.content).like(pattern)
            | col(Ticket.address).like(pattern)
            | col(Ticket.external_id).like(pattern)
        )
    rows = []
    for ticket in session.exec(statement.limit(2000)):
        row = _row(ticket, state, now, user)
        review = (
            ticket.state in (State.pending_review, State.returned)
            or ticket.extension_state == "requested"
            or ticket.hotspot
        )
        if review or row["worst"] in ("yellow", "red"):
            rows.append(row)
    order = {"red": 0, "yellow": 1, "green": 2, "none": 3}
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    rows.sort(key=lambda r: (not r["t"].is_urgent, order[r["worst"]], r["t"].resolve_due or far))
    return rows


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, web: WebUser, session: SessionDep, state: StateDep) -> Response:
    user, sess = web
    if user.role not in (Role.dispatcher, Role.admin):
        return _back(_landing(user), state)
    filters = {k: request.query_params.get(k, "")[:100] for k in ("category", "office", "grid", "q")}
    unknown = [
        label
        for key, label, known in (("category", "分类", state.rules.categories), ("office", "科室", state.rules.offices))
        if filters[key] and filters[key] not in known
    ]
    if unknown:
        return _back("/ui/queue", state, err=f"筛选条件无效：没有这个{'、'.join(unknown)}")
    rows = _queue_rows(session, state, utcnow(), filters, user)
    return _page(
        request,
        "queue.html",
        user,
        sess.csrf,
        state,
        rows=rows,
        filters=filters,
        rules=state.rules,
        highlight=highlight,
    )


# Office workbench ----------------------------------------------------------------------------------------------


@router.get("/workbench", response_class=HTMLResponse)
def workbench(request: Request, web: WebUser, session: SessionDep, state: StateDep) -> Response:
    user, sess = web
    if user.role != Role.office:
        return _back(_landing(user), state)
    working = [State.dispatched, State.accepted, State.contacted, State.reopened]
    statement = select(Ticket).where(Ticket.office == user.office, col(Ticket.state).in_([str(s) for s in working]))
    now = utcnow()
    rows = [_row(t, state, now, user) for t in session.exec(statement.limit(2000))]
    order = {"red": 0, "yellow": 1, "green": 2, "none": 3}
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    rows.sort(key=lambda r: (order[r["worst"]], r["t"].resolve_due or far))
    return _page(request, "workbench.html", user, sess.csrf, state, rows=rows, rules=state.rules)


# Ticket page and actions ---------------------------------------------------------------------------------------


@router.get("/tickets/{ticket_ref}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket_ref: str, web: WebUser, session: SessionDep, state: StateDep) -> Response:
    user, sess = web
    # any text can be typed into the address bar: it gets the same Chinese page as a missing ticket
    ticket_id = int(ticket_ref) if ticket_ref.isascii() and ticket_ref.isdigit() and len(ticket_ref) <= 18 else 0
    ticket = session.get(Ticket, ticket_id) if ticket_id else None
    if ticket is None or (user.role == Role.office and ticket.office != user.office):
        missing = _page(request, "missing.html", user, sess.csrf, state, ticket_id=ticket_ref[:40])
        missing.status_code = status.HTTP_404_NOT_FOUND
        return missing
    zone = _zone(state)
    row = _row(ticket, state, utcnow(), user)
    view = row["t"]
    words = [w for found in ticket.classification.get("matched_keywords", {}).values() for w in found]
    events = [
        {
            "e": event_view(e, ticket, user),
            "at": _local(e.at, zone),
            "from": label(e.from_state) if e.from_state else "—",
            "to": label(e.to_state),
            "action": zh(ACTION_LABELS, e.action),
        }
        for e in timeline(session=session, ticket_id=ticket_id)
    ]
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
        allowed=allowed,
        rules=state.rules,
        classification=ticket.classification,
        received=_local(ticket.created_at, zone),
    )


FIELD_LABELS = {
    "note": "说明",
    "office": "承办科室",
    "category": "分类",
    "into_id": "主工单编号",
    "result": "办结结果",
    "reason": "理由",
    "days": "延期天数",
    "satisfaction": "满意度",
}
_FORM_FIELDS = ("note", "office", "category", "into_id", "result", "reason", "days", "satisfaction")


@router.post("/tickets/{ticket_id}/{action}")
async def ticket_action(
    request: Request, ticket_id: int, action: str, web: WebUser, session: SessionDep, state: StateDep
) -> Response:
    user, sess = web
    form = await request.form()
    _check_csrf(str(form.get("csrf", "")), sess.csrf)
    body: dict[str, Any] = {k: str(form[k]).strip() for k in _FORM_FIELDS if form.get(k) not in (None, "")}
    back = str(form.get("back", "")) or f"/ui/tickets/{ticket_id}"
    if not back.startswith("/ui/"):
        back = f"/ui/tickets/{ticket_id}"
    try:
        if "into_id" in body:
            body["into_id"] = int(body["into_id"])
        if "days" in body:
            body["days"] = float(body["days"])
    except ValueError:
        return _back(back, state, err="请输入有效的数字")
    model = ACTION_BODIES.get(action)
    if model is None:
        return _back(back, state, err=f"未知操作「{action}」")
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        return _back(back, state, err=f"{FIELD_LABELS.get(str(first['loc'][0]), first['loc'][0])}：{first['msg']}")
    lifecycle = Lifecycle(
        session=session,
        rules=state.rules,
        policy=state.policy,
        misroute_reasons=state.learning.misroute_reasons,
    )
    try:
        await run_in_threadpool(
            lifecycle.perform, ticket_id=ticket_id, action=action, actor=Actor.of(user), body=parsed.model_dump()
        )
    except DomainError as exc:
        return _back(back, state, err=exc.message)
    return _back(back, state, msg=f"工单 {ticket_id}：{zh(ACTION_LABELS, action)}成功")


# Reports ------------------------------------------------------------------------------------------------------


def _office_rates(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Closure and on-time rates per office, from the report's per-category counts."""
    by_office: dict[str, dict[str, float]] = {}
    for row in rows:
        acc = by_office.setdefault(row["office_name"] or "—", {"resolved": 0, "due": 0, "on_time": 0})
        for key in acc:
            acc[key] += row[key]
    return [
        {
            "name": name,
            "closure": (v["resolved"] / v["due"]) if v["due"] else None,
            "on_time": (v["on_time"] / v["resolved"]) if v["resolved"] else None,
        }
        for name, v in sorted(by_office.items())
    ]


def _trend(ledger: list[dict[str, Any]], width: int = 560, height: int = 160) -> list[dict[str, Any]]:
    """SVG polyline points for each clearance category's day-end open count."""
    peak = max([d["open"] for item in ledger for d in item["days"]] + [1])
    lines = []
    for item in ledger:
        days = item["days"]
        step = width / max(1, len(days) - 1)
        points = " ".join(f"{i * step:.1f},{height - d['open'] / peak * (height - 10):.1f}" for i, d in enumerate(days))
        lines.append({"name": item["name"], "points": points, "last": days[-1] if days else None})
    return lines


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
    office = user.office if user.role == Role.office else None
    report = load_report(state.engine, state.rules, start, end, office)
    name = f"hotline-report-{start}_{end}.{fmt}"
    body, media = (
        (to_xlsx(report), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        if fmt == "xlsx"
        else (to_csv(report), "text/csv; charset=utf-8")
    )
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _report_period(request: Request, state: AppState) -> tuple[dt.date, dt.date] | str:
    """The page's start and end dates (the last 30 days by default), or what is wrong with them."""
    today = dt.datetime.now(_zone(state)).date()
    try:
        end = dt.date.fromisoformat(request.query_params.get("end", "") or today.isoformat())
        start = dt.date.fromisoformat(
            request.query_params.get("start", "") or (end - dt.timedelta(days=29)).isoformat()
        )
    except ValueError:
        return "日期格式应为 YYYY-MM-DD"
    if start > end or (end - start).days > 366 or start.year < 2000 or end.year > 2099:
        return "开始日期须不晚于结束日期，且跨度不超过一年"
    return start, end


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, web: WebUser, state: StateDep) -> Response:
    from service.reports.service import load_report

    user, sess = web
    period = _report_period(request, state)
    if isinstance(period, str):
        return _back("/ui/reports", state, err=period)
    start, end = period
    office = user.office if user.role == Role.office else None
    report = load_report(state.engine, state.rules, start, end, office)
    return _page(
        request,
        "reports.html",
        user,
        sess.csrf,
        state,
        report=report,
        start=start,
        end=end,
        offices=_office_rates(report["rows"]),
        trend=_trend(report["ledger"]),
    )


# Learning -----------------------------------------------------------------------------------------------------


@router.get("/learning", response_class=HTMLResponse)
def learning_page(request: Request, web: WebUser, session: SessionDep, state: StateDep) -> Response:
    """Auto-dispatch and correction rates by week and category, and the model history."""
    from service.learning.registry import ModelStore
    from service.learning.report import model_history, week_totals, weekly

    user, sess = web
    if user.role not in (Role.dispatcher, Role.admin):
        return _back(_landing(user), state)
    weeks = 12
    rows = weekly(state.engine, state.rules, now=state.clock(), weeks=weeks)
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
        misroute=state.learning.misroute_reasons,
    )
