"""The outbox API: see what the hotline system has (not) heard, and send dead messages again."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from service.auth.models import Role
from service.deps import CurrentUser, SessionDep
from service.errors import DomainError
from service.notify.models import OutboxPublic, OutboxState
from service.notify.service import list_outbox, resend
from service.tickets.routes import http_error
from service.tickets.service import utcnow

router = APIRouter(prefix="/api/v1/outbox", tags=["回调"])


def _require_dispatcher(role: str) -> None:
    if role not in (Role.admin, Role.dispatcher):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "仅派单员和管理员可以查看回调队列")


@router.get("")
def list_route(
    session: SessionDep,
    user: CurrentUser,
    state: Annotated[OutboxState | None, Query(description="pending / sending / delivered / dead")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """List callbacks to the hotline system, newest first."""
    _require_dispatcher(user.role)
    rows, total = list_outbox(session=session, state=state, page=page, page_size=page_size)
    items = [OutboxPublic.model_validate(r, from_attributes=True) for r in rows]
    return {"items": items, "total": total, "page": page, "page_size": page_size}


@router.post("/{message_id}/resend", response_model=OutboxPublic)
def resend_route(
    session: SessionDep, user: CurrentUser, message_id: Annotated[int, Path(ge=1, le=2**62)]
) -> OutboxPublic:
    """Queue a dead or failing callback again with a fresh attempt budget."""
    _require_dispatcher(user.role)
    try:
        message = resend(session=session, message_id=message_id, now=utcnow())
    except DomainError as exc:
        raise http_error(exc) from exc
    return OutboxPublic.model_validate(message, from_attributes=True)
