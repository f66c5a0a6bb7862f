"""The signed webhook through which the hotline system pushes work orders (docs/WEBHOOK.md)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from pydantic import ValidationError

from service.deps import SettingsDep, StateDep
from service.errors import ConflictError
from service.flows.receive import check_received
from service.signing import SignatureError, verify
from service.tickets.models import IntakeResponse, TicketCreate

router = APIRouter(prefix="/api/v1/hotline", tags=["热线推送"])


async def read_limited_body(request: Request, settings: SettingsDep) -> bytes:
    """The raw body, refused with 413 beyond the configured size (also for chunked uploads)."""
    return await read_body(request, settings.max_body_bytes)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 beyond `limit` bytes, declared or streamed."""
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


_UTF8_BOM = b"\xef\xbb\xbf"
_NOT_UTF8 = "请求体必须是 UTF-8 编码的 JSON（RFC 8259）；GBK、GB18030、UTF-16、UTF-32 等编码请先转为 UTF-8"


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen.add(key)
    return dict(pairs)


def _unprocessable(loc: list[str], msg: str, kind: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{"loc": loc, "msg": msg, "type": kind}])


def _parse(body: bytes) -> TicketCreate:
    # RFC 8259 §8.1: JSON between systems is UTF-8 and a leading byte order mark may be ignored. Anything else is
    # refused before parsing, so that GBK or UTF-16 never turns into mojibake or an English parser message.
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM) :]
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"{_NOT_UTF8}（第 {exc.start} 字节起无法按 UTF-8 解码）"
        ) from exc
    if b"\x00" in body:  # a raw NUL byte never occurs in JSON text: UTF-16/UTF-32 without a BOM
        raise HTTPException(status.HTTP_400_BAD_REQUEST, _NOT_UTF8)
    try:
        payload = TicketCreate.model_validate_json(body)
    except ValidationError as exc:
        detail = [
            {
                "loc": ["body", *err["loc"]],
                "msg": f"请求体不是合法的 JSON：{err['msg']}" if err["type"] == "json_invalid" else err["msg"],
                "type": err["type"],
            }
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from exc
    # a key sent twice is ambiguous (the parser keeps the last value, another reader may keep the first): refuse
    # it. The body is known to be one flat, valid object here, so this second parse is cheap and cannot recurse.
    try:
        json.loads(body, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKeyError as exc:
        raise _unprocessable(["body", exc.key], f"字段 {exc.key} 重复出现", "duplicate_key") from exc
    except (ValueError, RecursionError) as exc:
        raise _unprocessable(["body"], "请求体不是合法的 JSON", "json_invalid") from exc
    return payload


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
    state: StateDep,
    x_hotline_timestamp: Annotated[str | None, Header()] = None,
    x_hotline_signature: Annotated[str | None, Header()] = None,
) -> Response:
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
    check_received(payload, state.rules, state.clock())
    outcome = await state.batcher.submit(payload)
    if isinstance(outcome, ConflictError):
        state.metrics.intake.labels("conflict").inc()
        raise HTTPException(status.HTTP_409_CONFLICT, outcome.message)
    ticket = outcome.ticket
    state.metrics.intake.labels("created" if outcome.created else "duplicate").inc()
    if outcome.created:
        outcome_label = "review" if ticket.needs_review else "auto"
        state.metrics.classification.labels(ticket.category or "", outcome_label).inc()
    state.metrics.intake_latency.observe(time.perf_counter() - started)
    # already an IntakeResponse built by intake: serialized once here instead of validated again by the framework
    return Response(
        ticket.model_dump_json(),
        status_code=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        media_type="application/json",
    )
