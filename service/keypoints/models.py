"""Key point (库内重点点位) tables and API shapes: one place on the street's 五违四必 list, its 违建 area and status."""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.db import UTCDateTime


class KeyPointStatus(enum.StrEnum):
    pending = "pending"  # 待整治
    working = "working"  # 整治中
    cleared = "cleared"  # 已整治


STATUS_LABELS = {
    KeyPointStatus.pending: "待整治",
    KeyPointStatus.working: "整治中",
    KeyPointStatus.cleared: "已整治",
}


class KeyPointKind(enum.StrEnum):
    existing = "existing"  # 存量: on the list before this year's work
    new = "new"  # 新增: found since; the street's target for new 违建 is zero


KIND_LABELS = {KeyPointKind.existing: "存量", KeyPointKind.new: "新增"}
MAX_M2 = 1_000_000.0


def status_code(value: object) -> object:
    """A status given as its code or its Chinese label (待整治/整治中/已整治) as the code; anything else unchanged."""
    labels = {label: code.value for code, label in STATUS_LABELS.items()}
    return labels.get(value, value) if isinstance(value, str) else value


def control_char(text: str) -> str | None:
    """The first character stored text must not hold (control characters but newline and tab; PostgreSQL refuses
    NUL outright), else None."""
    for ch in text:
        if ch not in "\n\r\t" and unicodedata.category(ch) in ("Cc", "Cs"):
            return ch
    return None


class KeyPointBase(SQLModel):
    code: str = Field(min_length=1, max_length=32, description="街道自编点位编号，如 12")
    address: str = Field(min_length=1, max_length=300)
    category: str = Field(max_length=64, description="问题类型（rules.yaml key_points.types 中的分类代码）")
    kind: str = Field(max_length=16, description="existing（存量）/ new（新增）")
    area_m2: float = Field(default=0, ge=0, le=MAX_M2, description="违建面积（平方米）")
    found_at: dt.date | None = Field(default=None, description="发现日期")
    target_date: dt.date | None = Field(default=None, description="整治期限")
    note: str = Field(default="", max_length=2000)


class KeyPoint(KeyPointBase, table=True):
    """One key point. Its tickets are not stored: every ticket whose building_key is the point's is linked."""

    __tablename__ = "key_point"
    __table_args__ = (
        UniqueConstraint("code", name="uq_key_point_code"),
        # the key point of a ticket's building (ticket page)
        Index("ix_key_point_building", "building_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    building_key: str | None = Field(default=None, max_length=120)
    # placed in the area registry at import, like a ticket
    zone: str | None = Field(default=None, max_length=32)
    community: str | None = Field(default=None, max_length=64)
    cell: str | None = Field(default=None, max_length=64)
    area_id: int | None = Field(default=None, foreign_key="area.id")
    placement: str | None = Field(default=None, max_length=16)
    status: str = Field(default=KeyPointStatus.pending, max_length=16)
    cleared_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    demolished_m2: float | None = Field(default=None, ge=0, le=MAX_M2)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(sa_type=UTCDateTime)


class KeyPointChange(SQLModel, table=True):
    """One change to a key point, by a dispatcher or an import: who, when, and each field's before and after, so
    "who marked point 12 cleared, and what did it say before" has an answer."""

    __tablename__ = "key_point_change"
    __table_args__ = (Index("ix_key_point_change_point", "key_point_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    key_point_id: int = Field(foreign_key="key_point.id")
    at: dt.datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(max_length=64)
    actor_role: str = Field(max_length=16)
    # "update" (PATCH or the page) or "import" (hotline keypoints import)
    source: str = Field(max_length=16)
    # field → [before, after], JSON-ready (dates as ISO text)
    changes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class KeyPointChangePublic(SQLModel):
    at: dt.datetime
    actor: str
    actor_role: str
    source: str
    changes: dict[str, Any]


class KeyPointPublic(KeyPointBase):
    id: int
    building_key: str | None
    zone: str | None
    community: str | None
    cell: str | None
    area_id: int | None
    placement: str | None
    status: str
    status_label: str = ""
    kind_label: str = ""
    cleared_at: dt.datetime | None
    demolished_m2: float | None
    created_at: dt.datetime
    updated_at: dt.datetime


class KeyPointBrief(SQLModel):
    """A ticket's key point as the ticket page names it."""

    id: int
    code: str
    address: str
    category: str
    kind: str
    kind_label: str
    status: str
    status_label: str
    area_m2: float
    demolished_m2: float | None
    target_date: dt.date | None
    # the key point in the API, and its page
    url: str
    page: str


class KeyPointUpdate(SQLModel):
    """A dispatcher's change: only the fields sent change."""

    model_config = {"extra": "forbid"}
    status: str | None = Field(
        default=None, max_length=16, description="pending / working / cleared（或 待整治/整治中/已整治）"
    )
    demolished_m2: float | None = Field(default=None, ge=0, le=MAX_M2, description="实际拆除面积（平方米）")
    target_date: dt.date | None = Field(default=None, description="整治期限")
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> object:
        return status_code(value)


class OverduePoint(SQLModel):
    id: int
    code: str
    address: str
    category: str
    status: str
    status_label: str
    target_date: dt.date
    days_overdue: int


class KeyPointLedger(SQLModel):
    """违建台账 for one local calendar year (definitions: docs/KEYPOINTS.md)."""

    year: int
    target_m2: float
    # m² demolished at existing (存量) 违建 points cleared in the year: what the target counts
    demolished_m2: float
    # m² demolished at new (新增) 违建 points cleared in the year: reported apart, the target is for the backlog
    new_demolished_m2: float
    # demolished / target; None when the rules set no target
    progress: float | None
    # key points of the 违建 type, kind 新增, found in the year (target: zero)
    new_found: int
    # 违建 tickets received in the year at no key point's building: 新增违建线索
    new_clues: int
    cleared: int
    open: int
    overdue: list[OverduePoint]
