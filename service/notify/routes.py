"""The outbox API: see what the hotline system has (not) heard, and send dead messages again."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from service.deps import DispatcherUser, SessionDep, StateDep
from service.notify.models import OutboxPublic, OutboxState
from service.notify.service import list_outbox, resend

router = APIRouter(prefix="/api/v1/outbox", tags=["回调"])


@router.get("")
def list_route(
    session: SessionDep,
    user: DispatcherUser,
    state: Annotated[OutboxState | None, Query(description="pending / sending / delivered / dead")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """List callbacks to the hotline system, newest first."""
    rows, total = list_outbox(session=session, state=state, page=page, page_size=page_size)
    items = [OutboxPublic.model_validate(r, from_attributes=True) for r in rows]
    return {"items": items, "total": total, "page": page, "page_size": page_size}


@router.post("/{message_id}/resend", response_model=OutboxPublic)
def resend_route(
    session: SessionDep, user: DispatcherUser, app: StateDep, message_id: Annotated[int, Path(ge=1, le=2**62)]
) -> OutboxPublic:
    """Queue a dead or failing callback again with a fresh attempt budget."""
    message = resend(session=session, message_id=message_id, now=app.clock())
    return OutboxPublic.model_validate(message, from_attributes=True)
