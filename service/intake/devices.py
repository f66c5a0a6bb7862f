"""Problems found before anyone calls, over the API: the signed endpoint for cameras and sensors, and patrol filing
for apps (the phone page is service/web/patrol.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, HTTPException, Request, Response, UploadFile, status
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from service.deps import CurrentUser, SessionDep, StateDep
from service.flows.discover import DeviceEvent, PatrolReport, file_patrol, receive_device_event
from service.intake.routes import read_body
from service.signing import SignatureError, verify
from service.state import AppState
from service.tickets.models import IntakeResponse, TicketPublic
from service.tickets.service import Actor
from service.tickets.visibility import public_view

router = APIRouter(prefix="/api/v1", tags=["巡查与设备发现"])


def _receive(state: AppState, event: DeviceEvent) -> tuple[IntakeResponse, bool]:
    with Session(state.engine, expire_on_commit=False) as session:
        ticket, created = receive_device_event(
            session=session,
            classifier=state.classifier,
            policy=state.policy,
            rules=state.rules,
            store=state.photos,
            event=event,
            now=state.clock(),
        )
        return IntakeResponse.model_validate(ticket, from_attributes=True), created


@router.post(
    "/devices/events",
    response_model=IntakeResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "同一设备事件重复推送，返回已有工单", "model": IntakeResponse},
        401: {"description": "签名无效"},
        403: {"description": "设备接入未启用（未设置 HOTLINE_DEVICE_SECRET）"},
    },
)
async def device_event_route(
    request: Request,
    state: StateDep,
    x_hotline_timestamp: Annotated[str | None, Header()] = None,
    x_hotline_signature: Annotated[str | None, Header()] = None,
) -> Response:
    """Receive a signed camera or sensor event as a ticket (idempotent on device_id + event_id)."""
    secret = state.settings.device_secret
    if secret is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "设备接入未启用：请设置 HOTLINE_DEVICE_SECRET")
    # a base64 image is 4/3 of the photo, plus the event's text
    body = await read_body(request, state.rules.evidence.max_bytes * 4 // 3 + 64 * 1024)
    try:
        verify(
            secret=secret.get_secret_value(),
            timestamp=x_hotline_timestamp,
            signature=x_hotline_signature,
            body=body,
            tolerance=state.settings.signature_tolerance_seconds,
        )
    except SignatureError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from exc
    try:
        event = DeviceEvent.model_validate_json(body)
    except ValidationError as exc:
        detail = [
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from exc
    ticket, created = await run_in_threadpool(_receive, state, event)
    return Response(
        ticket.model_dump_json(),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        media_type="application/json",
    )


@router.post("/discoveries", response_model=TicketPublic, status_code=status.HTTP_201_CREATED)
def patrol_route(
    session: SessionDep,
    user: CurrentUser,
    state: StateDep,
    text: Annotated[str, Form(max_length=5000, description="发现了什么")],
    area_id: Annotated[int, Form(gt=0, le=2**62, description="区域 ID（GET /api/v1/areas），须在本人负责的区域内")],
    category: Annotated[str | None, Form(max_length=64, description="问题类型提示（分类代码，可空）")] = None,
    address: Annotated[str, Form(max_length=300, description="门牌（可选）")] = "",
    files: Annotated[list[UploadFile] | None, File(description="现场照片（JPEG、PNG 或 WebP）")] = None,
) -> TicketPublic:
    """File a problem found on patrol (巡查发现), with photos; routed like a hotline ticket."""
    limits = state.rules.evidence
    uploads = [f.file.read(limits.max_bytes + 1) for f in (files or [])[: limits.max_count + 1] if f.filename]
    ticket = file_patrol(
        session=session,
        classifier=state.classifier,
        policy=state.policy,
        rules=state.rules,
        store=state.photos,
        actor=Actor.of(user),
        report=PatrolReport(text=text, area_id=area_id, category=category or None, address=address),
        uploads=uploads,
        now=state.clock(),
    )
    return public_view(ticket, user)
