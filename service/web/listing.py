"""The all-tickets page: every ticket the user may see, filtered, paged, and exported as CSV or XLSX."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from openpyxl import Workbook
from openpyxl.styles import Font

from service.areas.models import UNPLACED_FILTER
from service.deps import SessionDep, StateDep
from service.state import AppState
from service.tickets.models import OPEN_STATES, STATE_LABELS, State, Ticket
from service.tickets.service import Actor, TicketFilter, list_tickets, matching_tickets
from service.tickets.visibility import public_view
from service.web.routes import WebUser, _back, _local, _page, _row, _zone

router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE_SIZE = 50
EXPORT_LIMIT = 50_000
KEYS = ("state", "office", "category", "grid", "from", "to", "overdue", "dispatch", "q")
DISPATCH = {"auto": "自动派单", "manual": "人工派单"}
OVERDUE = {"yes": "超期未办结", "no": "未超期"}


@dataclass(frozen=True)
class ListQuery:
    """The page's filters as typed (to show them again) and as a ticket filter."""

    raw: dict[str, str]
    filters: TicketFilter
    page: int

    def link(self, **changes: Any) -> str:
        params = {k: v for k, v in {**self.raw, **changes}.items() if v not in ("", None)}
        return "?" + urlencode(params) if params else ""


def _date(raw: dict[str, str], key: str, label: str, problems: list[str]) -> dt.date | None:
    if not raw[key]:
        return None
    try:
        return dt.date.fromisoformat(raw[key])
    except ValueError:
        problems.append(f"{label}「{raw[key]}」不是 YYYY-MM-DD 格式的日期")
        return None


def parse_query(request: Request, state: AppState) -> ListQuery | str:
    """The filters from the address, or what is wrong with them (naming the field)."""
    raw = {k: request.query_params.get(k, "").strip()[:100] for k in KEYS}
    rules = state.rules
    problems: list[str] = []
    choices = (
        ("state", "状态", {s.value for s in State}),
        ("office", "科室", set(rules.offices)),
        ("category", "分类", set(rules.categories)),
        ("grid", "片区", {*rules.places.grids, UNPLACED_FILTER}),
        ("overdue", "超期", set(OVERDUE)),
        ("dispatch", "派单方式", set(DISPATCH)),
    )
    problems.extend(f"没有这个{label}「{raw[k]}」" for k, label, known in choices if raw[k] and raw[k] not in known)
    start, end = _date(raw, "from", "开始日期", problems), _date(raw, "to", "结束日期", problems)
    if start and end and start > end:
        problems.append("开始日期晚于结束日期")
    page = request.query_params.get("page", "1")
    if not page.isdigit() or not 1 <= int(page) <= 100_000:
        problems.append(f"页码「{page[:20]}」无效")
    if problems:
        return "筛选条件无效：" + "；".join(problems)
    zone = _zone(state)

    def midnight(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)

    filters = TicketFilter(
        state=raw["state"] or None,
        office=raw["office"] or None,
        category=raw["category"] or None,
        grid=None if raw["grid"] == UNPLACED_FILTER else raw["grid"] or None,
        unplaced=raw["grid"] == UNPLACED_FILTER,
        overdue={"yes": True, "no": False}.get(raw["overdue"]),
        received_from=midnight(start) if start else None,
        received_before=midnight(end + dt.timedelta(days=1)) if end else None,
        dispatch=raw["dispatch"] or None,
        q=raw["q"] or None,
    )
    return ListQuery(raw=raw, filters=filters, page=int(page))


@router.get("/tickets", response_class=HTMLResponse)
def tickets_page(request: Request, web: WebUser, session: SessionDep, state: StateDep) -> Response:
    """All tickets the user may see, newest first, with filters and pages."""
    user, sess = web
    query = parse_query(request, state)
    if isinstance(query, str):
        return _back("/ui/tickets", state, err=query)
    now = state.clock()
    found, total = list_tickets(
        session=session,
        actor=Actor.of(user),
        filters=query.filters,
        page=query.page,
        page_size=PAGE_SIZE,
        now=now,
        newest_first=True,
    )
    pages = max(1, -(-total // PAGE_SIZE))
    rows = [
        {**_row(t, state, now, user), "dispatch": _dispatch(t), "received": _local(t.received_at, _zone(state))}
        for t in found
    ]
    return _page(
        request,
        "tickets.html",
        user,
        sess.csrf,
        state,
        rows=rows,
        total=total,
        query=query,
        pages=pages,
        rules=state.rules,
        states={s.value: v for s, v in STATE_LABELS.items()},
        dispatch_labels=DISPATCH,
        overdue_labels=OVERDUE,
    )


def _dispatch(ticket: Ticket) -> str:
    if ticket.dispatched_at is None:
        return "—"
    return DISPATCH["auto"] if ticket.dispatched_at == ticket.created_at else DISPATCH["manual"]


COLUMNS = (
    "序号",
    "工单编号",
    "接收时间",
    "渠道",
    "标题",
    "诉求内容",
    "地址",
    "片区",
    "居民区",
    "网格",
    "分类",
    "承办科室",
    "状态",
    "派单方式",
    "先行联系时限",
    "办结时限",
    "办结时间",
    "超期未办结",
)


def _export_rows(tickets: list[Ticket], state: AppState, user: Any, now: dt.datetime) -> list[list[Any]]:
    zone, rules = _zone(state), state.rules

    def when(value: dt.datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else ""

    out = []
    for ticket in tickets:
        view = public_view(ticket, user)
        late = State(ticket.state) in OPEN_STATES and ticket.resolve_due is not None and ticket.resolve_due < now
        out.append(
            [
                ticket.id,
                view.external_id,
                when(view.received_at),
                view.channel,
                view.title,
                view.content,
                view.address,
                view.grid or "",
                view.community or "",
                view.cell or "",
                rules.categories[ticket.category].name if ticket.category in rules.categories else "",
                rules.office_name(ticket.office) if ticket.office in rules.offices else "",
                STATE_LABELS.get(State(ticket.state), ticket.state),
                _dispatch(ticket).replace("—", ""),
                when(ticket.first_contact_due),
                when(ticket.resolve_due),
                when(ticket.resolved_at),
                "是" if late else "",
            ]
        )
    return out


@router.get("/export/tickets")
def tickets_export(request: Request, web: WebUser, session: SessionDep, state: StateDep) -> Response:
    """The filtered list as CSV or XLSX, redacted as the page is for this user."""
    user, _ = web
    query = parse_query(request, state)
    back = "/ui/tickets" + (query.link() if not isinstance(query, str) else "")
    if isinstance(query, str):
        return _back("/ui/tickets", state, err=query)
    fmt = request.query_params.get("format", "xlsx")
    if fmt not in ("xlsx", "csv"):
        return _back(back, state, err="导出格式只能是 xlsx 或 csv")
    now = state.clock()
    found = matching_tickets(
        session=session, actor=Actor.of(user), filters=query.filters, now=now, limit=EXPORT_LIMIT + 1
    )
    if len(found) > EXPORT_LIMIT:
        return _back(back, state, err=f"符合条件的工单超过 {EXPORT_LIMIT} 件，请缩小筛选范围后再导出")
    rows = _export_rows(found, state, user, now)
    stamp = now.astimezone(_zone(state)).strftime("%Y%m%d-%H%M")
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        body, media = "\ufeff".encode() + buffer.getvalue().encode("utf-8"), "text/csv; charset=utf-8"
    else:
        body = _xlsx(rows)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    name = f"hotline-tickets-{stamp}.{fmt}"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "工单"
    sheet.append(list(COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
