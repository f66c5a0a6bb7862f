"""Open311 GeoReport v2: a second door through which any Open311 client can file and follow tickets."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, status
from pydantic import ValidationError
from sqlmodel import col, select

from service.auth.models import DISPATCH_ROLES
from service.auth.service import user_for_token
from service.deps import ClassifierDep, PolicyDep, RulesDep, SessionDep, SettingsDep, StateDep
from service.errors import ConflictError
from service.flows.receive import intake
from service.redaction import coarse_address, redact
from service.rules import ServiceRules
from service.settings import Settings
from service.tickets.models import OPEN_STATES, State, Ticket, TicketCreate
from service.tickets.statemachine import label

router = APIRouter(prefix="/open311/v2", tags=["Open311"])


def _error(code: int, description: str) -> HTTPException:
    return HTTPException(code, [{"code": code, "description": description}])


@router.get("/services.json")
def services(rules: RulesDep) -> list[dict[str, Any]]:
    """Service list: one Open311 service per category in the rules file."""
    return [
        {
            "service_code": code,
            "service_name": cat.name,
            "description": f"{cat.name}（承办：{rules.office_name(cat.office)}）",
            "metadata": False,
            "type": "realtime",
            "keywords": ",".join(w for r in cat.rules for w in r.any[:3]),
            "group": rules.office_name(cat.office),
        }
        for code, cat in rules.categories.items()
    ]


SUMMARY_CHARS = 100


def _summary(ticket: Ticket) -> str:
    names = (ticket.caller_name,) if ticket.caller_name else ()
    text = redact(ticket.title or ticket.content, names=names)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _status_notes(ticket: Ticket) -> str:
    """A fixed phrase, never the office's free text (which may name the caller)."""
    note = label(ticket.state)
    return f"{note}（{ticket.resolve_result}）" if ticket.resolve_result and ticket.resolved_at else note


def _request_view(ticket: Ticket, rules: ServiceRules) -> dict[str, Any]:
    """The public view: a redacted summary, the service, status, dates and the address down to the building."""
    category = rules.categories.get(ticket.category) if ticket.category else None
    return {
        "service_request_id": str(ticket.id),
        "status": "open" if State(ticket.state) in OPEN_STATES else "closed",
        "status_notes": _status_notes(ticket),
        "service_name": category.name if category else None,
        "service_code": ticket.category,
        "description": _summary(ticket),
        "agency_responsible": rules.office_name(ticket.office) if ticket.office in rules.offices else None,
        "requested_datetime": ticket.received_at.isoformat(),
        "updated_datetime": ticket.updated_at.isoformat(),
        "expected_datetime": ticket.resolve_due.isoformat() if ticket.resolve_due else None,
        "address": coarse_address(ticket.address),
    }


def _publicly_listed() -> Any:
    """Dispatched, neither cancelled nor merged: what an outsider may know exists."""
    return (
        col(Ticket.dispatched_at).is_not(None)
        & (Ticket.state != State.cancelled)
        & col(Ticket.merged_into_id).is_(None)
    )


def _require_public_reads(settings: Settings) -> None:
    if not settings.open311_public_reads:
        raise _error(403, "本服务未开放公开查询（HOTLINE_OPEN311_PUBLIC_READS=0）")


@router.post("/requests.json", status_code=status.HTTP_201_CREATED)
def create_request(
    request: Request,
    session: SessionDep,
    state: StateDep,
    classifier: ClassifierDep,
    rules: RulesDep,
    policy: PolicyDep,
    api_key: Annotated[str, Form(description="用户令牌（派单员或管理员）")],
    description: Annotated[str, Form(min_length=1, max_length=5000)],
    service_code: Annotated[str | None, Form(max_length=64)] = None,
    address_string: Annotated[str, Form(max_length=300)] = "",
    first_name: Annotated[str, Form(max_length=32)] = "",
    last_name: Annotated[str, Form(max_length=32)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
) -> list[dict[str, Any]]:
    """File a service request (classified and routed like a hotline ticket)."""
    client = request.client.host if request.client else "?"
    if state.throttle.blocked(client):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            [{"code": 429, "description": "认证失败次数过多，请稍后再试"}],
            headers={"Retry-After": str(state.throttle.window_seconds)},
        )
    user = user_for_token(session=session, token=api_key)
    if user is None:
        # the same failed-token count as the bearer API: a key cannot be guessed through this door instead
        state.throttle.fail(client)
        raise _error(403, "api_key 无效或已吊销")
    if user.role not in DISPATCH_ROLES:
        raise _error(403, "api_key 无权提交（须为派单员或管理员）")
    if service_code is not None and service_code not in rules.categories:
        raise _error(400, f"service_code「{service_code}」不存在")
    try:
        payload = TicketCreate(
            external_id=f"open311-{uuid.uuid4().hex}",
            received_at=state.clock(),
            channel="Open311",
            content=description,
            address=address_string,
            caller_name=f"{last_name}{first_name}",
            caller_phone=phone,
        )
    except ValidationError as exc:
        raise _error(400, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
    try:
        ticket, _ = intake(
            session=session,
            payload=payload,
            classifier=classifier,
            policy=policy,
            rules=rules,
            source="open311",
            now=state.clock(),
        )
    except ConflictError as exc:  # a uuid collision; reported rather than retried blindly
        raise _error(409, exc.message) from exc
    return [
        {
            "service_request_id": str(ticket.id),
            "service_notice": f"已受理，承办：{rules.office_name(ticket.office or '')}"
            if ticket.office in rules.offices
            else "已受理",
            "account_id": None,
        }
    ]


@router.get("/requests/{request_id}.json")
def get_request(
    session: SessionDep,
    rules: RulesDep,
    settings: SettingsDep,
    request_id: Annotated[int, Path(ge=1, le=2**62)],
) -> list[dict[str, Any]]:
    """Status of one service request (public: no personal data)."""
    _require_public_reads(settings)
    ticket = session.exec(select(Ticket).where(Ticket.id == request_id, _publicly_listed())).first()
    if ticket is None:
        raise _error(404, f"服务请求 {request_id} 不存在")
    return [_request_view(ticket, rules)]


LIST_LIMIT = 1000
LIST_DEFAULT_DAYS = 90


@router.get("/requests.json")
def list_requests(
    session: SessionDep,
    rules: RulesDep,
    settings: SettingsDep,
    state: StateDep,
    service_request_id: Annotated[str | None, Query(max_length=2000, description="逗号分隔的请求编号")] = None,
    service_code: Annotated[str | None, Query(max_length=64)] = None,
    status_: Annotated[Literal["open", "closed"] | None, Query(alias="status")] = None,
    start_date: Annotated[dt.datetime | None, Query(description="受理时间不早于（带时区）")] = None,
    end_date: Annotated[dt.datetime | None, Query(description="受理时间早于（带时区）")] = None,
) -> list[dict[str, Any]]:
    """Public list of service requests (no personal data; newest first, at most 1,000, 90 days by default)."""
    _require_public_reads(settings)
    statement = select(Ticket).where(_publicly_listed())
    if service_request_id:
        try:
            ids = [int(part) for part in service_request_id.split(",") if part.strip()][:LIST_LIMIT]
        except ValueError as exc:
            raise _error(400, "service_request_id 须为逗号分隔的数字") from exc
        statement = statement.where(col(Ticket.id).in_(ids))
    else:
        end = _aware(end_date, "end_date") or state.clock()
        start = _aware(start_date, "start_date") or end - dt.timedelta(days=LIST_DEFAULT_DAYS)
        statement = statement.where(Ticket.received_at >= start, Ticket.received_at < end)
    if service_code:
        statement = statement.where(Ticket.category == service_code)
    if status_ is not None:
        open_ = col(Ticket.state).in_([str(s) for s in OPEN_STATES])
        statement = statement.where(open_ if status_ == "open" else ~open_)
    rows = session.exec(statement.order_by(col(Ticket.id).desc()).limit(LIST_LIMIT))
    return [_request_view(ticket, rules) for ticket in rows]


def _aware(value: dt.datetime | None, field: str) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise _error(400, f"{field} 须带时区，例如 2026-11-01T00:00:00+08:00")
    return value
