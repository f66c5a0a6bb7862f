"""The signed webhook through which the hotline system pushes work orders (DESIGN §6)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from pydantic import ValidationError

from service.deps import SettingsDep, StateDep
from service.errors import ConflictError
from service.intake.signature import SignatureError, verify
from service.tickets.models import IntakeResponse, TicketCreate

router = APIRouter(prefix="/api/v1/hotline", tags=["热线推送"])


async def read_limited_body(request: Request, settings: SettingsDep) -> bytes:
    """The raw body, refused with 413 beyond the configured size (also for chunked uploads)."""
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"请求体超过 {limit} 字节上限")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"请求体超过 {limit} 字节上限")
        chunks.append(chunk)
    return b"".join(chunks)


RawBody = Annotated[bytes, Depends(read_limited_body)]

_BODY_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TicketCreate"}}},
    }
}


def _parse(body: bytes) -> TicketCreate:
    try:
        return TicketCreate.model_validate_json(body)
    except ValidationError as exc:
        detail = [
            {"loc": ["body", *err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from exc


@router.post(
    "/tickets",
    response_model=IntakeResponse,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_BODY_SCHEMA,
    responses={
        200: {"description": "重复推送，返回已有工单", "model": IntakeResponse},
        401: {"description": "签名无效"},
        409: {"description": "同一工单编号内容不同"},
        413: {"description": "请求体过大"},
    },
)
async def receive_ticket(
    body: RawBody,
    response: Response,
    state: StateDep,
    x_hotline_timestamp: Annotated[str | None, Header()] = None,
    x_hotline_signature: Annotated[str | None, Header()] = None,
) -> IntakeResponse:
    """Receive a signed work order from the hotline system (idempotent on external_id)."""
    started = time.perf_counter()
    try:
        verify(
            secret=state.settings.webhook_secret.get_secret_value(),
            timestamp=x_hotline_timestamp,
            signature=x_hotline_signature,
            body=body,
            tolerance=state.settings.signature_tolerance_seconds,
        )
    except SignatureError as exc:
        state.metrics.intake.labels("unauthorized").inc()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from exc
    payload = _parse(body)
    outcome = await state.intake.submit(payload)
    if isinstance(outcome, ConflictError):
        state.metrics.intake.labels("conflict").inc()
        raise HTTPException(status.HTTP_409_CONFLICT, outcome.message)
    ticket = outcome.ticket
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    state.metrics.intake.labels("created" if outcome.created else "duplicate").inc()
    if outcome.created:
        outcome_label = "review" if ticket.needs_review else "auto"
        state.metrics.classification.labels(ticket.category or "", outcome_label).inc()
    state.metrics.intake_latency.observe(time.perf_counter() - started)
    return ticket
