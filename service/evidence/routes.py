"""JSON API over a ticket's photos: upload at 先行联系 or 办结, list, and read one (under the ticket's access)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Response, UploadFile

from service.deps import CurrentUser, SessionDep, StateDep
from service.evidence.models import TicketPhotoPublic
from service.evidence.service import attach, photo_view, photos, read_photo
from service.tickets.service import Actor, get_ticket

router = APIRouter(prefix="/api/v1/tickets", tags=["照片"])
TicketId = Annotated[int, Path(ge=1, le=2**62)]


def read_capped(upload: UploadFile, limit: int) -> bytes:
    """At most limit + 1 bytes: enough for the size check to refuse a bigger file without reading all of it."""
    return upload.file.read(limit + 1)


@router.post(
    "/{ticket_id}/photos",
    response_model=list[TicketPhotoPublic],
    status_code=201,
    responses={422: {"description": "不是 JPEG/PNG/WebP、过大、过多或环节无效（detail 指出字段）"}},
)
def upload_route(
    session: SessionDep,
    user: CurrentUser,
    state: StateDep,
    ticket_id: TicketId,
    stage: Annotated[str, Form(max_length=16, description="环节：contact（先行联系）或 resolve（办结，整改后）")],
    files: Annotated[list[UploadFile], File(description="照片（JPEG、PNG 或 WebP），可多张")],
) -> list[TicketPhotoPublic]:
    """Attach photos to a ticket (its office or a dispatcher); EXIF and GPS are removed."""
    limits = state.rules.evidence
    rows = attach(
        session=session,
        store=state.photos,
        rules=limits,
        ticket_id=ticket_id,
        actor=Actor.of(user),
        stage=stage,
        uploads=[read_capped(f, limits.max_bytes) for f in files[: limits.max_count + 1]],
        now=state.clock(),
    )
    return [photo_view(r) for r in rows]


@router.get("/{ticket_id}/photos", response_model=list[TicketPhotoPublic])
def list_route(session: SessionDep, user: CurrentUser, ticket_id: TicketId) -> list[TicketPhotoPublic]:
    """A ticket's photos, oldest first."""
    get_ticket(session=session, ticket_id=ticket_id, actor=Actor.of(user))
    return [photo_view(r) for r in photos(session=session, ticket_id=ticket_id)]


@router.get("/{ticket_id}/photos/{photo_id}", response_class=Response, responses={200: {"content": {"image/*": {}}}})
def photo_route(
    session: SessionDep, user: CurrentUser, state: StateDep, ticket_id: TicketId, photo_id: TicketId
) -> Response:
    """One photo's image, for whoever may see the ticket."""
    data, content_type = read_photo(
        session=session, store=state.photos, ticket_id=ticket_id, photo_id=photo_id, actor=Actor.of(user)
    )
    return photo_response(data, content_type)


def photo_response(data: bytes, content_type: str) -> Response:
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=content_type, headers=headers)
