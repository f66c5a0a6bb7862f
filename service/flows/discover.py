"""Problems found before anyone calls (冒头就打): filed by a patrol (网格员, 平安志愿者, 城管) from the phone page, or
raised by a camera or sensor through the signed device endpoint. Both are classified, routed, clocked and reported
like hotline tickets, with their channel recorded; no 12345 callback is ever sent for them."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from dataclasses import dataclass

from pydantic import field_validator
from sqlmodel import Field, Session, SQLModel

from classifier.decision import Classifier
from service.areas.models import Placement
from service.areas.service import Found, check_area, within
from service.auth.models import DISPATCH_ROLES, Role
from service.deadlines.service import DeadlinePolicy
from service.errors import ConflictError, ForbiddenError, InvalidInputError
from service.evidence.models import Stage
from service.evidence.service import clean_all, store_photos
from service.evidence.storage import PhotoStore
from service.flows.receive import intake
from service.rules import ServiceRules
from service.tickets.models import (
    DEVICE_CHANNEL,
    DEVICE_SOURCE,
    PATROL_CHANNEL,
    PATROL_SOURCE,
    Ticket,
    TicketCreate,
    without_invisible,
)
from service.tickets.service import Actor, note_event

_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,40}")


@dataclass(frozen=True)
class PatrolReport:
    """What a patrol files: a category hint (optional), what was seen, where (an area of the registry, and
    optionally a finer address), and photos."""

    text: str
    area_id: int
    category: str | None = None
    address: str = ""


def file_patrol(
    *,
    session: Session,
    classifier: Classifier,
    policy: DeadlinePolicy,
    rules: ServiceRules,
    store: PhotoStore,
    actor: Actor,
    report: PatrolReport,
    uploads: list[bytes],
    now: dt.datetime,
) -> Ticket:
    """File a problem found on patrol; every field is checked (naming it) before anything is stored."""
    if actor.role != Role.patrol and actor.role not in DISPATCH_ROLES:
        raise ForbiddenError("只有巡查人员和派单员可以上报巡查发现的问题")
    text = without_invisible(report.text).strip()
    if not text:
        raise InvalidInputError("text", "请描述发现的问题")
    if len(text) > 5000:
        raise InvalidInputError("text", "问题描述不能超过 5000 字")
    if report.category and report.category not in rules.categories:
        raise InvalidInputError("category", f"没有这个分类「{report.category[:20]}」")
    spot = check_area(session=session, area_id=report.area_id)
    if actor.role == Role.patrol and (
        actor.area_id is None or not within(session=session, area_id=spot.id, root_id=actor.area_id)
    ):
        raise InvalidInputError("area_id", "只能上报本人负责区域内的问题")
    cleaned = clean_all(rules.evidence, uploads, min_count=0)
    place = " ".join(p for p in (spot.zone, spot.community, spot.cell) if p)
    address = without_invisible(report.address).strip()[:300] or place
    payload = TicketCreate(
        external_id=f"XC-{now.astimezone(dt.UTC):%Y%m%d}-{uuid.uuid4().hex[:16]}",
        received_at=now,
        channel=PATROL_CHANNEL,
        title=rules.categories[report.category].name if report.category else "",
        content=text,
        address=address,
    )
    ticket, _ = intake(
        session=session,
        payload=payload,
        classifier=classifier,
        policy=policy,
        rules=rules,
        source=PATROL_SOURCE,
        now=now,
    )
    # the patrol stands where the problem is: its area is the place, whatever the address matching said
    for key, value in Found(spot, Placement.manual).fields().items():
        setattr(ticket, key, value)
    session.add(ticket)
    data = {"area_id": spot.id, "category_hint": report.category}
    session.add(note_event(ticket, actor=actor, action="discover", note=f"巡查发现：{place}", data=data, now=now))
    store_photos(session=session, store=store, ticket=ticket, step=Stage.found, cleaned=cleaned, actor=actor, now=now)
    session.refresh(ticket)
    return ticket


class DeviceEvent(SQLModel):
    """A camera or sensor event (docs/DEVICES.md); unknown fields are refused."""

    model_config = {"extra": "forbid"}
    device_id: str = Field(min_length=1, max_length=40, description="设备编号：字母、数字、_.:-")
    event_id: str = Field(min_length=1, max_length=40, description="设备端事件编号（幂等键）")
    type: str = Field(min_length=1, max_length=32, description="事件类型，例如 乱扔垃圾、占道经营、烟雾报警")
    description: str = Field(default="", max_length=1000)
    location: str = Field(min_length=1, max_length=300, description="地址或点位名称")
    occurred_at: dt.datetime = Field(description="发生时间（带时区）")
    image: str | None = Field(default=None, max_length=12 * 1024 * 1024, description="抓拍图片，base64")

    @field_validator("device_id", "event_id")
    @classmethod
    def _plain_id(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError("只能包含字母、数字和 _ . : -")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("时间必须带时区，例如 2026-11-22T09:30:00+08:00")
        return value.astimezone(dt.UTC)


def _image(event: DeviceEvent) -> list[bytes]:
    if not event.image:
        return []
    try:
        return [base64.b64decode(event.image, validate=True)]
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError("image", "image 不是合法的 base64") from exc


def receive_device_event(
    *,
    session: Session,
    classifier: Classifier,
    policy: DeadlinePolicy,
    rules: ServiceRules,
    store: PhotoStore,
    event: DeviceEvent,
    now: dt.datetime,
) -> tuple[Ticket, bool]:
    """A device event as a ticket: (ticket, created). The same device and event id again answer with the ticket
    made the first time; the image is checked and cleaned like any photo."""
    cleaned = clean_all(rules.evidence, _image(event), min_count=0)
    payload = TicketCreate(
        external_id=f"SB-{event.device_id}-{event.event_id}"[:64],
        received_at=event.occurred_at,
        channel=DEVICE_CHANNEL,
        title=without_invisible(event.type).strip()[:200],
        content=without_invisible(event.description).strip() or f"设备 {event.device_id} 报告：{event.type}",
        address=without_invisible(event.location).strip(),
    )
    try:
        ticket, created = intake(
            session=session,
            payload=payload,
            classifier=classifier,
            policy=policy,
            rules=rules,
            source=DEVICE_SOURCE,
            now=now,
        )
    except ConflictError as exc:
        raise ConflictError(f"设备 {event.device_id} 的事件 {event.event_id} 已收到且内容不同") from exc
    if created and cleaned:
        device = Actor(name=event.device_id, role=DEVICE_SOURCE)
        store_photos(
            session=session, store=store, ticket=ticket, step=Stage.found, cleaned=cleaned, actor=device, now=now
        )
        session.refresh(ticket)
    return ticket, created
