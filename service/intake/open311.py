"""Open311 GeoReport v2: a second door through which any Open311 client can file and follow tickets."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, status
from pydantic import ValidationError

from service.auth.models import Role
from service.auth.service import user_for_token
from service.deps import ClassifierDep, PolicyDep, RulesDep, SessionDep
from service.errors import ConflictError
from service.tickets.intake import intake
from service.tickets.models import OPEN_STATES, State, Ticket, TicketCreate

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


def _request_view(ticket: Ticket, rules: Any) -> dict[str, Any]:
    open_ = State(ticket.state) in OPEN_STATES
    category = rules.categories.get(ticket.category) if ticket.category else None
    return {
        "service_request_id": str(ticket.id),
        "status": "open" if open_ else "closed",
        "status_notes": ticket.resolve_note if ticket.state in (State.resolved, State.closed) else None,
        "service_name": category.name if category else None,
        "service_code": ticket.category,
        "description": ticket.content,
        "agency_responsible": rules.office_name(ticket.office) if ticket.office in rules.offices else None,
        "requested_datetime": ticket.created_at.isoformat(),
        "updated_datetime": ticket.updated_at.isoformat(),
        "expected_datetime": ticket.resolve_due.isoformat() if ticket.resolve_due else None,
        "address": ticket.address,
    }


@router.post("/requests.json", status_code=status.HTTP_201_CREATED)
def create_request(
    session: SessionDep,
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
    user = user_for_token(session=session, token=api_key)
    if user is None or user.role not in (Role.admin, Role.dispatcher):
        raise _error(403, "api_key 无效或无权提交")
    if service_code is not None and service_code not in rules.categories:
        raise _error(400, f"service_code「{service_code}」不存在")
    try:
        payload = TicketCreate(
            external_id=f"open311-{uuid.uuid4().hex}",
            received_at=dt.datetime.now(dt.UTC),
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
            session=session, payload=payload, classifier=classifier, policy=policy, rules=rules, source="open311"
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
    session: SessionDep, rules: RulesDep, request_id: Annotated[int, Path(ge=1, le=2**62)]
) -> list[dict[str, Any]]:
    """Status of one service request (public: no personal data)."""
    ticket = session.get(Ticket, request_id)
    if ticket is None:
        raise _error(404, f"服务请求 {request_id} 不存在")
    return [_request_view(ticket, rules)]
