"""The all-tickets page: every ticket the user may see, filtered, paged, and exported as CSV or XLSX."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from sqlmodel import Session
from starlette.background import BackgroundTask

from service.areas.models import UNPLACED_FILTER
from service.deps import SessionDep, StateDep
from service.errors import InvalidInputError
from service.state import AppState
from service.tickets.models import OPEN_STATES, STATE_LABELS, State, Ticket
from service.tickets.service import (
    EXACT_COUNT_CAP,
    MAX_OFFSET,
    Actor,
    Cursor,
    TicketFilter,
    count_matching,
    list_tickets,
    ticket_batches,
    within_offset,
)
from service.tickets.visibility import public_view
from service.web.routes import WebUser, _back, _local, _page, _row, _zone

router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE_SIZE = 50
# rows are streamed a batch at a time, so the limit is about what a spreadsheet is for, not the server's memory
EXPORT_LIMIT = 200_000
KEYS = ("state", "office", "category", "grid", "from", "to", "overdue", "dispatch", "q", "sort")
SORTS = {"relevance": "按相关度"}
DISPATCH = {"auto": "自动派单", "manual": "人工派单"}
OVERDUE = {"yes": "超期未办结", "no": "未超期"}


@dataclass(frozen=True)
class ListQuery:
    """The page's filters as typed (to show them again) and as a ticket filter."""

    raw: dict[str, str]
    filters: TicketFilter
    page: int
    # 下一页 carries where this page ended: deep pages need no OFFSET
    cursor: Cursor | None = None

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
        ("sort", "排序方式", set(SORTS)),
    )
    problems.extend(f"没有这个{label}「{raw[k]}」" for k, label, known in choices if raw[k] and raw[k] not in known)
    start, end = _date(raw, "from", "开始日期", problems), _date(raw, "to", "结束日期", problems)
    if start and end and start > end:
        problems.append("开始日期晚于结束日期")
    if raw["sort"] == "relevance" and not raw["q"]:
        problems.append("按相关度排序需要搜索词")
    page = request.query_params.get("page", "1")
    after = request.query_params.get("after", "")[:200]
    if not page.isdigit() or not 1 <= int(page) <= 100_000:
        problems.append(f"页码「{page[:20]}」无效")
    elif not (after and not raw["sort"]) and not within_offset(int(page), PAGE_SIZE):
        problems.append(f"第 {page} 页太深：按页码最多看前 {MAX_OFFSET:,} 件，请用“下一页”往后翻或缩小筛选范围")
    cursor = None
    if after:
        try:
            cursor = Cursor.decode(after)
        except InvalidInputError as exc:
            problems.append(exc.message)
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
    return ListQuery(raw=raw, filters=filters, page=int(page), cursor=cursor)


@router.get("/tickets", response_class=HTMLResponse)
def tickets_page(request: Request, web: WebUser, session: SessionDep, state: StateDep) -> Response:
    """All tickets the user may see, newest first, with filters and pages."""
    user, sess = web
    query = parse_query(request, state)
    if isinstance(query, str):
        return _back("/ui/tickets", state, err=query)
    now = state.clock()
    listed = list_tickets(
        session=session,
        actor=Actor.of(user),
        filters=query.filters,
        page=query.page,
        page_size=PAGE_SIZE,
        now=now,
        newest_first=True,
        cursor=None if query.raw["sort"] else query.cursor,
        relevance=query.raw["sort"] == "relevance",
    )
    found, total = listed.rows, listed.total
    pages = max(query.page + (1 if listed.next_cursor else 0), -(-total // PAGE_SIZE))
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
        total_text=total_text(total, exact=listed.total_exact),
        total_exact=listed.total_exact,
        next_cursor=listed.next_cursor,
        query=query,
        pages=pages,
        # a page by number reaches MAX_OFFSET rows deep at most: beyond it 上一页 goes back to the first page
        prev_by_number=within_offset(query.page - 1, PAGE_SIZE),
        next_by_number=within_offset(query.page + 1, PAGE_SIZE),
        rules=state.rules,
        states={s.value: v for s, v in STATE_LABELS.items()},
        dispatch_labels=DISPATCH,
        overdue_labels=OVERDUE,
    )


def total_text(total: int, *, exact: bool) -> str:
    """ "共 1234 件", or beyond the exact count "约 12 万件" (the planner's estimate) or "超过 1 万件" (SQLite)."""
    if exact:
        return f"共 {total} 件"
    if total > EXACT_COUNT_CAP:
        return f"约 {total / 10_000:.0f} 万件" if total >= 100_000 else f"约 {total / 10_000:.1f} 万件"
    return f"超过 {EXACT_COUNT_CAP // 10_000} 万件"


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
    """The filtered list as CSV or XLSX, redacted as the page is for this user, streamed in bounded memory."""
    user, _ = web
    query = parse_query(request, state)
    back = "/ui/tickets" + (query.link() if not isinstance(query, str) else "")
    if isinstance(query, str):
        return _back("/ui/tickets", state, err=query)
    fmt = request.query_params.get("format", "xlsx")
    if fmt not in ("xlsx", "csv"):
        return _back(back, state, err="导出格式只能是 xlsx 或 csv")
    now = state.clock()
    actor = Actor.of(user)
    with Session(state.reads) as reads:
        found = count_matching(session=reads, actor=actor, filters=query.filters, now=now, cap=EXPORT_LIMIT)
    if found > EXPORT_LIMIT:
        return _back(back, state, err=f"符合条件的工单超过 {EXPORT_LIMIT} 件，请缩小筛选范围后再导出")
    stamp = now.astimezone(_zone(state)).strftime("%Y%m%d-%H%M")
    headers = {"Content-Disposition": f'attachment; filename="hotline-tickets-{stamp}.{fmt}"'}
    batches = _row_batches(state, user, query.filters, now)
    if fmt == "csv":
        return StreamingResponse(_csv_chunks(batches), media_type="text/csv; charset=utf-8", headers=headers)
    path = _xlsx_file(batches)
    return FileResponse(
        path,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=headers,
        background=BackgroundTask(os.unlink, path),
    )


def _row_batches(state: AppState, user: Any, filters: TicketFilter, now: dt.datetime) -> Iterator[list[list[Any]]]:
    """The export's rows a batch at a time, from a session of its own (on the read replica when there is one): a
    streamed body outlives the request's."""
    with Session(state.reads) as session:
        for tickets in ticket_batches(session=session, actor=Actor.of(user), filters=filters, now=now):
            yield _export_rows(tickets, state, user, now)


def _csv_chunks(batches: Iterator[list[list[Any]]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    # the BOM lets Excel read the Chinese headers as UTF-8
    yield "\ufeff".encode() + buffer.getvalue().encode("utf-8")
    for rows in batches:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(rows)
        yield buffer.getvalue().encode("utf-8")


def _xlsx_file(batches: Iterator[list[list[Any]]]) -> str:
    """The rows written to a temporary XLSX file in openpyxl's write-only mode (rows go to disk as they come)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("工单")
    bold = Font(bold=True)
    header = []
    for name in COLUMNS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.freeze_panes = "A2"
    sheet.append(header)
    for rows in batches:
        for row in rows:
            sheet.append(row)
    handle, path = tempfile.mkstemp(prefix="hotline-export-", suffix=".xlsx")
    os.close(handle)
    try:
        book.save(path)
    except BaseException:
        os.unlink(path)
        raise
    return path
