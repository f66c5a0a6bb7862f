"""Area registry tables: 片区 → 居民区 → 网格, each with its people, and the address patterns that belong to it."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.db import UTCDateTime


class Level(enum.StrEnum):
    zone = "zone"  # 片区
    community = "community"  # 居民区
    cell = "cell"  # 网格


LEVEL_LABELS = {Level.zone: "片区", Level.community: "居民区", Level.cell: "网格"}


class Placement(enum.StrEnum):
    """How a ticket got its place: matched at intake, set by a dispatcher, or not placed (and why)."""

    auto = "auto"
    manual = "manual"
    unmatched = "unmatched"
    ambiguous = "ambiguous"


PLACEMENT_LABELS = {
    Placement.auto: "自动定位",
    Placement.manual: "人工定位",
    Placement.unmatched: "待定位：地址未匹配到网格",
    Placement.ambiguous: "待定位：地址匹配到多个网格",
}
UNPLACED = (Placement.unmatched, Placement.ambiguous)
# the 片区 filter's choice for tickets the registry could not place (queue and ticket list)
UNPLACED_FILTER = "待定位"


class Area(SQLModel, table=True):
    """One 片区, 居民区 or 网格. Names are unique within a level, so reports and filters can use them as keys.

    An area dropped from a later import is kept inactive: tickets placed in it keep their place."""

    __tablename__ = "area"
    __table_args__ = (UniqueConstraint("level", "name", name="uq_area_level_name"),)

    id: int | None = Field(default=None, primary_key=True)
    level: str = Field(max_length=16)
    name: str = Field(max_length=64)
    parent_id: int | None = Field(default=None, foreign_key="area.id")
    # 网格长 (or the 居民区's 书记, the 片区's 片长): named on the ticket page
    leader: str = Field(default="", max_length=32)
    leader_phone: str = Field(default="", max_length=32)
    # 网格员, 楼组长
    members: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    updated_at: dt.datetime = Field(sa_type=UTCDateTime)


class AreaPattern(SQLModel, table=True):
    """An address pattern of an area: a road or estate name, optionally with a 弄/号 range and side (odd, even)."""

    __tablename__ = "area_pattern"
    __table_args__ = (Index("ix_area_pattern_area", "area_id"),)

    id: int | None = Field(default=None, primary_key=True)
    area_id: int = Field(foreign_key="area.id")
    name: str = Field(max_length=64)
    lo: int | None = None
    hi: int | None = None
    parity: str = Field(default="all", max_length=8)


class AreaPublic(SQLModel):
    id: int
    level: str
    name: str
    parent_id: int | None
    leader: str
    leader_phone: str
    members: list[str]
    active: bool


class AreaPatternPublic(SQLModel):
    name: str
    lo: int | None
    hi: int | None
    parity: str


class AreaNode(AreaPublic):
    patterns: list[AreaPatternPublic] = []
    children: list[AreaNode] = []


class TicketPlace(SQLModel):
    """Where a ticket sits: its 片区, 居民区 and 网格, the 网格长 to call, and how it was placed."""

    placement: str | None
    placement_label: str
    zone: str | None
    community: str | None
    cell: str | None
    leader: str | None
    leader_phone: str | None


class PlaceBody(SQLModel):
    """A dispatcher's correction: the area (a 网格, or a 居民区/片区 when nothing finer is known)."""

    model_config = {"extra": "forbid"}
    area_id: int = Field(gt=0, le=2**62, description="区域 ID（GET /api/v1/areas）")
    note: str | None = Field(default=None, max_length=2000)
