"""Photos attached to a ticket: where each is stored, who took it, and at which step."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.db import UTCDateTime


class Stage(enum.StrEnum):
    found = "found"  # filed by a patrol or a device: the problem as discovered
    contact = "contact"  # 先行联系: the problem as found
    resolve = "resolve"  # 办结: after the fix (整改后)
    assist = "assist"  # 联勤联动: an assisting office's part


STAGE_LABELS = {Stage.found: "发现", Stage.contact: "先行联系", Stage.resolve: "办结（整改后）", Stage.assist: "协办"}
# the steps a person picks when uploading to an existing ticket (found photos come with the filing)
UPLOAD_STAGES = (Stage.contact, Stage.resolve)
# the one step an assisting office uploads at
ASSIST_STAGES = (Stage.assist,)


class TicketPhoto(SQLModel, table=True):
    """One cleaned photo (re-encoded, EXIF and GPS gone); the bytes live in the photo store under `key`."""

    __tablename__ = "ticket_photo"
    __table_args__ = (
        UniqueConstraint("ticket_id", "stage", "sha256", name="uq_ticket_photo"),
        Index("ix_ticket_photo_ticket", "ticket_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    stage: str = Field(max_length=16)
    key: str = Field(max_length=200)
    content_type: str = Field(max_length=32)
    sha256: str = Field(max_length=64)
    width: int
    height: int
    size: int
    uploaded_by: str = Field(max_length=64)
    uploaded_role: str = Field(max_length=16)
    uploaded_at: dt.datetime = Field(sa_type=UTCDateTime)


class TicketPhotoPublic(SQLModel):
    id: int
    stage: str
    content_type: str
    width: int
    height: int
    size: int
    uploaded_by: str
    uploaded_at: dt.datetime
    url: str = ""
