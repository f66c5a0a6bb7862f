"""Photo evidence on tickets: uploads checked by content and cleaned, stored through one interface, read back under
the ticket's own access rules, and required at 办结 where the rules say so."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from service.auth.models import DISPATCH_ROLES, Role
from service.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError, UnavailableError
from service.evidence.images import CleanPhoto, check_count, clean_photo
from service.evidence.models import (
    ASSIST_STAGES,
    STAGE_LABELS,
    UPLOAD_STAGES,
    Stage,
    TicketPhoto,
    TicketPhotoPublic,
)
from service.evidence.storage import PhotoStore, photo_key
from service.rules import EvidenceRules, ServiceRules
from service.tickets.models import OPEN_STATES, State, Ticket, TicketEvent
from service.tickets.service import Actor, get_ticket, is_assisting, note_event

log = logging.getLogger(__name__)


def _stage(value: str, allowed: tuple[Stage, ...]) -> Stage:
    if value not in allowed:
        names = "、".join(f"{s.value}（{STAGE_LABELS[s]}）" for s in allowed)
        raise InvalidInputError("stage", f"照片环节只能是 {names}")
    return Stage(value)


def upload_stages(*, session: Session, ticket: Ticket, actor: Actor) -> tuple[Stage, ...]:
    """The steps `actor` may upload photos at: the lead office's and the dispatcher's, or an assisting office's."""
    if actor.role in DISPATCH_ROLES or (actor.role == Role.office and ticket.office == actor.office):
        return UPLOAD_STAGES
    if (
        actor.role == Role.office
        and ticket.id is not None
        and is_assisting(session=session, ticket_id=ticket.id, office=actor.office)
    ):
        return ASSIST_STAGES
    return ()


def _may_upload(session: Session, ticket: Ticket, actor: Actor) -> tuple[Stage, ...]:
    allowed = upload_stages(session=session, ticket=ticket, actor=actor)
    if not allowed:
        raise ForbiddenError("只有承办科室、协办科室和派单员可以上传照片")
    return allowed


def attach(
    *,
    session: Session,
    store: PhotoStore,
    rules: EvidenceRules,
    ticket_id: int,
    actor: Actor,
    stage: str,
    uploads: list[bytes],
    now: dt.datetime,
) -> list[TicketPhoto]:
    """Check every upload (all or none are kept), clean and store each, and record them on the ticket. The same
    photo uploaded twice for one step is kept once."""
    ticket = get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    step = _stage(stage, _may_upload(session, ticket, actor))
    if State(ticket.state) not in OPEN_STATES:
        raise ConflictError(
            f"工单已{'办结' if ticket.state in (State.resolved, State.closed) else '作废'}，不能再上传照片"
        )
    if ticket.state == State.resolution_review:
        # the reviewer judges the evidence as it was submitted; a 驳回 reopens it for new photos
        raise ConflictError("办结待审核，审核期间不能上传照片；如被驳回，可重新上传后再办结")
    cleaned = clean_all(rules, uploads, min_count=1)
    return store_photos(session=session, store=store, ticket=ticket, step=step, cleaned=cleaned, actor=actor, now=now)


def clean_all(rules: EvidenceRules, uploads: list[bytes], *, min_count: int) -> list[CleanPhoto]:
    """Every upload checked and cleaned, before anything is stored: one bad photo refuses them all."""
    check_count(len(uploads), max_count=rules.max_count, min_count=min_count)
    return [clean_photo(data, max_bytes=rules.max_bytes, max_pixels=rules.max_pixels) for data in uploads]


def store_photos(
    *,
    session: Session,
    store: PhotoStore,
    ticket: Ticket,
    step: Stage,
    cleaned: list[CleanPhoto],
    actor: Actor,
    now: dt.datetime,
) -> list[TicketPhoto]:
    """Store cleaned photos and record them on the ticket (with the session's other changes) in one commit."""
    assert ticket.id is not None
    kept: list[TicketPhoto] = []
    for photo in _distinct(cleaned):
        known = session.exec(
            select(TicketPhoto).where(
                TicketPhoto.ticket_id == ticket.id, TicketPhoto.stage == step, TicketPhoto.sha256 == photo.sha256
            )
        ).first()
        kept.append(known or _store(session, store, ticket.id, step, photo, actor, now))
    if kept:
        session.add(_event(ticket, actor, step, kept, now))
    try:
        session.commit()
    except IntegrityError as exc:  # the same photo sent twice at once: the other upload kept it
        session.rollback()
        raise ConflictError("同一张照片正在上传，请刷新后查看") from exc
    for row in kept:
        session.refresh(row)
    return kept


def _distinct(photos: list[CleanPhoto]) -> list[CleanPhoto]:
    seen: set[str] = set()
    return [p for p in photos if not (p.sha256 in seen or seen.add(p.sha256))]  # type: ignore[func-returns-value]


def _store(
    session: Session, store: PhotoStore, ticket_id: int, step: Stage, photo: CleanPhoto, actor: Actor, now: dt.datetime
) -> TicketPhoto:
    key = photo_key(ticket_id, photo.sha256, photo.extension)
    try:
        store.put(key, photo.data, photo.content_type)
    except Exception as exc:  # the store is another system: say so, store nothing in the database
        log.exception("photo_store_failed")
        raise UnavailableError("照片存储暂时不可用，请稍后重试") from exc
    row = TicketPhoto(
        ticket_id=ticket_id,
        stage=step,
        key=key,
        content_type=photo.content_type,
        sha256=photo.sha256,
        width=photo.width,
        height=photo.height,
        size=len(photo.data),
        uploaded_by=actor.name,
        uploaded_role=actor.role,
        uploaded_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _event(ticket: Ticket, actor: Actor, step: Stage, rows: list[TicketPhoto], now: dt.datetime) -> TicketEvent:
    note = f"上传{STAGE_LABELS[step]}照片 {len(rows)} 张"
    data = {"stage": step.value, "photos": [r.id for r in rows]}
    return note_event(ticket, actor=actor, action="photo", note=note, data=data, now=now)


def photo_view(row: TicketPhoto) -> TicketPhotoPublic:
    public = TicketPhotoPublic.model_validate(row, from_attributes=True)
    public.url = f"/api/v1/tickets/{row.ticket_id}/photos/{row.id}"
    return public


def photos(*, session: Session, ticket_id: int) -> list[TicketPhoto]:
    statement = select(TicketPhoto).where(TicketPhoto.ticket_id == ticket_id).order_by(col(TicketPhoto.id))
    return list(session.exec(statement))


def read_photo(
    *, session: Session, store: PhotoStore, ticket_id: int, photo_id: int, actor: Actor
) -> tuple[bytes, str]:
    """A photo's bytes and type, for whoever may see its ticket (anyone else: not found)."""
    get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    row = session.get(TicketPhoto, photo_id)
    if row is None or row.ticket_id != ticket_id:
        raise NotFoundError(f"照片 {photo_id} 不存在")
    try:
        return store.get(row.key), row.content_type
    except NotFoundError:
        raise
    except Exception as exc:
        log.exception("photo_read_failed")
        raise UnavailableError("照片存储暂时不可用，请稍后重试") from exc


def check_after_photo(*, session: Session, rules: ServiceRules, ticket: Ticket) -> None:
    """办结 of a category that needs an after-photo: one must have been uploaded at 办结 in this round."""
    if ticket.category not in rules.evidence.require_after_photo:
        return
    since = ticket.resolve_clock_start or ticket.clock_start or ticket.created_at
    if ticket.rejected_at is not None and ticket.rejected_at > since:
        # a rejected 办结's photos did not show the fix: the next one needs a photo taken since
        since = ticket.rejected_at
    count = session.exec(
        select(func.count()).where(
            TicketPhoto.ticket_id == ticket.id,
            TicketPhoto.stage == Stage.resolve,
            col(TicketPhoto.uploaded_at) >= since,
        )
    ).one()
    if not count:
        name = rules.categories[ticket.category].name
        again = "（办结被驳回后须重新拍摄）" if since == ticket.rejected_at else ""
        raise InvalidInputError("photos", f"{name}工单办结前须上传整改后照片（环节：办结）{again}")
