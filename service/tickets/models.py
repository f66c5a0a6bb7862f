"""Ticket (工单) models: the table, its events, and the API shapes (SQLModel families)."""

from __future__ import annotations

import datetime as dt
import enum
import re
import unicodedata
from typing import Any

from pydantic import ValidationInfo, field_validator
from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from service.areas.models import TicketPlace
from service.db import UTCDateTime
from service.evidence.models import TicketPhotoPublic
from service.keypoints.models import KeyPointBrief


class State(enum.StrEnum):
    received = "received"
    pending_review = "pending_review"
    dispatched = "dispatched"
    accepted = "accepted"
    contacted = "contacted"
    resolved = "resolved"
    # the office's 办结 of a reviewed category, waiting for the dispatcher's 办结审核 (not yet 办结 in any report)
    resolution_review = "resolution_review"
    closed = "closed"
    returned = "returned"
    reopened = "reopened"
    cancelled = "cancelled"


STATE_LABELS: dict[State, str] = {
    State.received: "已受理",
    State.pending_review: "待审核",
    State.dispatched: "已派单",
    State.accepted: "已签收",
    State.contacted: "已先行联系",
    State.resolved: "已办结",
    State.resolution_review: "办结待审",
    State.closed: "已回访归档",
    State.returned: "退单",
    State.reopened: "重办",
    State.cancelled: "作废",
}
OPEN_STATES = frozenset(
    {
        State.received,
        State.pending_review,
        State.dispatched,
        State.accepted,
        State.contacted,
        State.returned,
        State.reopened,
        State.resolution_review,
    }
)

PATROL_CHANNEL = "巡查发现"
DEVICE_CHANNEL = "设备发现"
CHANNELS = ("电话", "网站", "微信", "APP", "Open311", PATROL_CHANNEL, DEVICE_CHANNEL)
# Ticket.source of problems found by our own patrols and devices before anyone called (主动发现)
PATROL_SOURCE = "patrol"
DEVICE_SOURCE = "device"
DISCOVERY_SOURCES = (PATROL_SOURCE, DEVICE_SOURCE)
URGENCIES = ("紧急", "一般")
KINDS = ("咨询", "求助", "投诉", "建议")


_EXTERNAL_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_PHONE = re.compile(r"\+?[0-9]+")
# a work order from before the hotline existed or after this century is a corrupt timestamp, not a date to store
# (and 0001-01-01+08:00 or 9999-12-31-08:00 cannot even be converted to UTC: OverflowError)
_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
_FIELD_LABELS = {"title": "标题", "content": "工单内容", "address": "地址", "caller_name": "来电人姓名"}


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("时间必须带时区，例如 2026-11-22T09:30:00+08:00")
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:
        utc = None
    if utc is None or not _EARLIEST <= utc < _LATEST:
        raise ValueError("时间超出合理范围（2000–2099 年）")
    return utc


def _bad_char(value: str) -> str | None:
    """The first character a stored text must not contain: control characters other than newline, carriage return
    and tab (C0, DEL, C1 — NUL is refused by PostgreSQL TEXT outright) and lone surrogates."""
    for ch in value:
        if ch in "\n\r\t":
            continue
        if unicodedata.category(ch) in ("Cc", "Cs"):
            return ch
    return None


def without_invisible(value: str) -> str:
    """Text as it will be shown: format characters removed (bidi overrides U+202A–202E and U+2066–2069, zero-width
    U+200B–200F, word joiner, BOM, soft hyphen…). They can reverse or hide what a reader sees, and mean nothing in a
    work order; the one visible loss is that emoji joined by U+200D show as their parts."""
    if value.isascii():
        return value
    return "".join(ch for ch in value if unicodedata.category(ch) != "Cf")


class TicketBase(SQLModel):
    external_id: str = Field(min_length=1, max_length=64, description="工单编号（幂等键）：字母、数字、_.:-")
    received_at: dt.datetime = Field(sa_type=UTCDateTime, description="热线受理时间（带时区）")
    channel: str = Field(max_length=16, description="来源渠道：电话/网站/微信/APP")
    title: str = Field(default="", max_length=200)
    content: str = Field(min_length=1, max_length=5000)
    address: str = Field(default="", max_length=300)
    caller_name: str = Field(default="", max_length=64)
    caller_phone: str = Field(default="", max_length=32)
    urgency: str = Field(default="一般", max_length=8, description="紧急/一般")
    kind: str | None = Field(default=None, max_length=8, description="咨询/求助/投诉/建议")
    deadline: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, description="上游办结时限")


class TicketCreate(TicketBase):
    """What the hotline system sends (docs/WEBHOOK.md); unknown fields are refused.

    Normalisation (what is stored differs from what was sent only in this): times are converted to UTC; title,
    content, address and caller_name lose invisible format characters (bidi controls, zero-width characters, BOM,
    soft hyphen) and leading and trailing whitespace; caller_phone is NFKC-normalised (full-width digits, ＋ and －
    become ASCII) and loses spaces and hyphens.
    """

    model_config = {"extra": "forbid"}

    @field_validator("received_at", "deadline")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else _utc(value)

    @field_validator("deadline")
    @classmethod
    def _not_before_received(cls, value: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        received = info.data.get("received_at")
        if value is not None and received is not None and value < received:
            raise ValueError("上游办结时限 deadline 早于热线受理时间 received_at")
        return value

    @field_validator("external_id")
    @classmethod
    def _external_id(cls, value: str) -> str:
        if not _EXTERNAL_ID.fullmatch(value):
            raise ValueError("工单编号只能包含字母、数字和 _ . : -")
        return value

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"来源渠道必须是 {'/'.join(CHANNELS[:4])} 之一")
        return value

    @field_validator("urgency")
    @classmethod
    def _urgency(cls, value: str) -> str:
        if value not in URGENCIES:
            raise ValueError("紧急程度必须是 紧急 或 一般")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        if value is not None and value not in KINDS:
            raise ValueError(f"诉求类型必须是 {'/'.join(KINDS)} 之一")
        return value

    @field_validator("caller_phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        # str.isdigit() also accepts ¹, ١ and other non-ASCII digits: only 0-9 may reach the masking and the dialler
        stripped = unicodedata.normalize("NFKC", value).replace(" ", "").replace("-", "")
        if stripped and not _PHONE.fullmatch(stripped):
            raise ValueError("来电号码只能包含数字 0-9、空格、开头的 + 和 -")
        return stripped

    @field_validator("content", "title", "address", "caller_name")
    @classmethod
    def _no_control_chars(cls, value: str, info: ValidationInfo) -> str:
        label = _FIELD_LABELS.get(info.field_name or "", info.field_name)
        bad = _bad_char(value)
        if bad is not None:
            raise ValueError(f"{label}不能包含控制字符（U+{ord(bad):04X}）")
        value = without_invisible(value).strip()
        if info.field_name == "content" and not value:
            # min_length=1 is checked before stripping: "   " would otherwise be stored as an empty work order
            raise ValueError("工单内容不能为空")
        return value


# the columns the report's median reads beside resolved_at (service/reports/service.py _resolutions)
RESOLUTION_COLUMNS = (
    "office",
    "category",
    "grid",
    "resolve_clock_start",
    "clock_start",
    "created_at",
    "merged_into_id",
)


# what the queue's conditions read (service/deadlines/queue.py _conditions) and the filters it is used with
QUEUE_COLUMNS = (
    "state",
    "is_urgent",
    "first_contact_due",
    "first_contact_at",
    "resolve_warn_at",
    "contact_warn_at",
    "extension_state",
    "hotspot",
    "office",
    "category",
    "grid",
)
OPEN_DUE_COLUMNS = (
    "state",
    "office",
    "category",
    "grid",
    "created_at",
    "reopen_count",
    "resolve_clock_start",
    "merged_into_id",
)
# an open ticket, as a partial index's predicate (a query saying state IN OPEN_STATES implies it)
OPEN_PREDICATE = "state IN ({})".format(", ".join(f"'{s}'" for s in sorted(OPEN_STATES)))


class Ticket(TicketBase, table=True):
    __table_args__ = (
        UniqueConstraint("external_id", name="uq_ticket_external_id"),
        # the lists people use, in their order (docs/WEB.md#大数据量): an office's tickets in a state by due date,
        # a state's by due date (the queue), a category's newest first
        Index("ix_ticket_office_state_due", "office", "state", "resolve_due", "id"),
        Index("ix_ticket_state_due", "state", "resolve_due", "id"),
        Index("ix_ticket_category_received", "category", "received_at", "id"),
        Index("ix_ticket_resolve_due", "resolve_due"),
        Index("ix_ticket_created_at", "created_at"),
        # 受理量 counts by the hotline's received_at
        Index("ix_ticket_received_at", "received_at"),
        # on PostgreSQL it also carries what the 办结时长 median reads, so a year's resolutions are an index-only scan
        Index("ix_ticket_resolved_at", "resolved_at", postgresql_include=list(RESOLUTION_COLUMNS)),
        Index("ix_ticket_first_contact_due", "first_contact_due"),
        Index("ix_ticket_followed_up_at", "followed_up_at"),
        Index("ix_ticket_merged_into", "merged_into_id"),
        Index("ix_ticket_community", "community"),
        Index("ix_ticket_cell", "cell"),
        # duplicates, 回潮 and hotspots at intake: one building's tickets of one category, newest first
        Index("ix_ticket_place", "building_key", "category", "id"),
        # the open tickets are few: reports and ledgers find them without reading the closed ones
        Index(
            "ix_ticket_unresolved",
            "category",
            "resolve_due",
            postgresql_where=text("resolved_at IS NULL"),
            sqlite_where=text("resolved_at IS NULL"),
        ),
        # the overdue list: unresolved tickets by due date; on PostgreSQL with what the list's count and the report's
        # 超期未办结 read (service/reports/service.py _overdue_open), so both read this small index alone
        Index(
            "ix_ticket_open_due",
            "resolve_due",
            "id",
            postgresql_include=list(OPEN_DUE_COLUMNS),
            postgresql_where=text("resolved_at IS NULL"),
            sqlite_where=text("resolved_at IS NULL"),
        ),
        # the report's 冒头楼栋清单: which buildings were flagged in its window, read from the flagged tickets alone,
        # then those buildings' tickets of the window
        Index("ix_ticket_place_received", "building_key", "category", "received_at"),
        # (the flagged tickets themselves)
        Index(
            "ix_ticket_hotspot",
            "received_at",
            postgresql_include=["building_key", "category", "merged_into_id", "office"],
            postgresql_where=text("hotspot"),
            sqlite_where=text("hotspot"),
        ),
        # the dispatcher queue and the workbench (service/deadlines/queue.py): the open tickets only, by the calendar
        # their 临期 instants were stamped under; on PostgreSQL with every column the queue decides, orders and
        # filters by, so neither the stamped nor the unstamped tickets' rows are read to pick the ones shown
        Index(
            "ix_ticket_queue",
            "warn_basis",
            "resolve_due",
            "id",
            postgresql_include=list(QUEUE_COLUMNS),
            postgresql_where=text(OPEN_PREDICATE),
            sqlite_where=text(OPEN_PREDICATE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(default="hotline", max_length=16)
    content_hash: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(sa_type=UTCDateTime)
    # looked up through ix_ticket_state_due (state first)
    state: str = Field(default=State.received, max_length=20)
    category: str | None = Field(default=None, max_length=64, index=True)
    office: str | None = Field(default=None, max_length=64, index=True)
    # 片区; with an area registry also the 居民区 and 网格 (names, unique per level) and the finest area found
    grid: str | None = Field(default=None, max_length=32)
    community: str | None = Field(default=None, max_length=64)
    cell: str | None = Field(default=None, max_length=64)
    area_id: int | None = Field(default=None, foreign_key="area.id")
    # auto / manual (a dispatcher's correction, kept through re-imports) / unmatched / ambiguous (待定位)
    placement: str | None = Field(default=None, max_length=16)
    confidence: float | None = None
    needs_review: bool = False
    review_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    classification: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    classification_error: str | None = Field(default=None, max_length=500)
    # the model version that routed the ticket (corrections are attributed to it)
    model_version: str | None = Field(default=None, max_length=120)
    is_urgent: bool = False
    dispatched_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_contact_due: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolve_due: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    calendar_estimated: bool = Field(default=False, description="时限跨越无官方日历数据的年份，按周一至周五估算")
    # the hotline took the call more than `intake.stale_days` before pushing it: the clocks still start at the call
    received_late: bool = False
    # how each clock counts ("working": working-day time; "hours": plain time) and when the resolve clock started
    contact_basis: str = Field(default="working", max_length=8)
    resolve_basis: str = Field(default="working", max_length=8)
    resolve_clock_start: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # the start of the original clocks: 先行联系, 办结 and the 延期 cap count from it, whatever confirms, reroutes,
    # 督办 or 重办 happen later (docs/DEADLINES.md)
    clock_start: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # when each clock's light turns yellow (临期), stored so the dispatcher queue is one query
    # (docs/SCALING.md#派单审核队列). The sweep job works them out under the calendar warn_basis names; a write that
    # moves a clock clears warn_basis (service/tickets/warn_instants.py) and the queue then works that ticket's lights
    # out itself
    contact_warn_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolve_warn_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    warn_basis: str | None = Field(default=None, max_length=16)
    supervised_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # 督办 is a clock of its own: it never moves resolve_due, against which 按时办结 and 超期 are judged
    supervise_due: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # 冒头就打: the building this ticket is about, and what intake found there
    # looked up through ix_ticket_place (building first)
    building_key: str | None = Field(default=None, max_length=120)
    hotspot: bool = False
    hotspot_reason: str | None = Field(default=None, max_length=200)
    recurrence: bool = False
    duplicate_of_id: int | None = Field(default=None, foreign_key="ticket.id")
    accepted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_contact_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolve_result: str | None = Field(default=None, max_length=16)
    resolve_note: str | None = Field(default=None, max_length=2000)
    satisfaction: str | None = Field(default=None, max_length=16)
    followed_up_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    return_reason: str | None = Field(default=None, max_length=32)
    returned_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    extension_state: str | None = Field(default=None, max_length=16)
    extension_days: float | None = None
    extension_reason: str | None = Field(default=None, max_length=500)
    merged_into_id: int | None = Field(default=None, foreign_key="ticket.id")
    reopen_count: int = 0
    # 办结审核: how often the dispatcher sent a 办结 back, and the last time and reason (the office reads it; a new
    # after-photo must be taken after it)
    rejections: int = 0
    rejected_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    rejection_note: str | None = Field(default=None, max_length=2000)
    version: int = 1


# Optimistic locking: a concurrent change to the same ticket makes the second commit fail (StaleDataError)
# instead of silently overwriting the first; SQLModel offers no declarative hook for this.
Ticket.__mapper__.version_id_col = Ticket.__table__.c.version  # type: ignore[attr-defined]
Ticket.__mapper__.version_id_generator = lambda v: (v or 0) + 1  # type: ignore[attr-defined]


class TicketPublic(SQLModel):
    """What API readers see; the caller's phone is masked unless the reader needs it."""

    id: int
    external_id: str
    source: str
    state: str
    state_label: str = ""
    received_at: dt.datetime
    created_at: dt.datetime
    channel: str
    title: str
    content: str
    address: str
    caller_name: str
    caller_phone: str
    urgency: str
    is_urgent: bool
    kind: str | None
    category: str | None
    office: str | None
    grid: str | None
    community: str | None
    cell: str | None
    placement: str | None
    confidence: float | None
    needs_review: bool
    review_reasons: list[str]
    classification_error: str | None
    dispatched_at: dt.datetime | None
    first_contact_due: dt.datetime | None
    resolve_due: dt.datetime | None
    deadline: dt.datetime | None
    calendar_estimated: bool
    received_late: bool
    clock_start: dt.datetime | None
    supervised_at: dt.datetime | None
    supervise_due: dt.datetime | None
    building_key: str | None
    hotspot: bool
    hotspot_reason: str | None
    recurrence: bool
    duplicate_of_id: int | None
    accepted_at: dt.datetime | None
    first_contact_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    resolve_result: str | None
    resolve_note: str | None
    satisfaction: str | None
    return_reason: str | None
    extension_state: str | None
    extension_days: float | None
    extension_reason: str | None
    merged_into_id: int | None
    reopen_count: int
    rejections: int
    rejected_at: dt.datetime | None
    rejection_note: str | None


class IntakeResponse(SQLModel):
    id: int
    external_id: str
    state: str
    category: str | None
    office: str | None
    confidence: float | None
    needs_review: bool
    first_contact_due: dt.datetime | None
    resolve_due: dt.datetime | None


class TicketEvent(SQLModel, table=True):
    __tablename__ = "ticket_event"
    __table_args__ = (Index("ix_ticket_event_ticket", "ticket_id", "id"), Index("ix_ticket_event_at", "at", "action"))

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    at: dt.datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(max_length=64)
    actor_role: str = Field(max_length=16)
    action: str = Field(max_length=32)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    # the ticket's office when the event happened (a return is the returning office's, whatever comes after)
    office: str | None = Field(default=None, max_length=64)
    category: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=2000)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class TicketRound(SQLModel, table=True):
    """One finished round of a ticket's clocks (docs/DEADLINES.md#重办): archived when a 重办 starts the next round.

    The ticket's own columns hold the round in progress; each reopened round is kept here, frozen, so a past
    period's figures (办结, 按时办结, 应办结, 先行联系, 满意, 超期未办结) do not change when the ticket is reopened
    later.
    """

    __tablename__ = "ticket_round"
    __table_args__ = (
        UniqueConstraint("ticket_id", "round", name="uq_ticket_round"),
        Index("ix_ticket_round_resolved_at", "resolved_at"),
        Index("ix_ticket_round_resolve_due", "resolve_due"),
        Index("ix_ticket_round_first_contact_due", "first_contact_due"),
        Index("ix_ticket_round_followed_up_at", "followed_up_at"),
        Index("ix_ticket_round_ended_at", "ended_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    # 0 is the original round, n the n-th 重办
    round: int
    office: str | None = Field(default=None, max_length=64)
    category: str | None = Field(default=None, max_length=64)
    started_at: dt.datetime = Field(sa_type=UTCDateTime)
    first_contact_due: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_contact_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolve_due: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolve_result: str | None = Field(default=None, max_length=16)
    resolve_note: str | None = Field(default=None, max_length=2000)
    supervised_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    supervise_due: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    satisfaction: str | None = Field(default=None, max_length=16)
    followed_up_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # the 重办 that ended this round and started the next
    ended_at: dt.datetime = Field(sa_type=UTCDateTime)
    # rounds rebuilt from the timeline for tickets reopened before revision 0009: deadlines approximated
    reconstructed: bool = False


class TicketAssist(SQLModel, table=True):
    """联勤联动: an office asked to help with a ticket another office leads. It sees the ticket, records its part and
    its photos; the lead office alone moves the ticket (docs/LIFECYCLE.md#联勤联动)."""

    __tablename__ = "ticket_assist"
    __table_args__ = (
        UniqueConstraint("ticket_id", "office", name="uq_ticket_assist"),
        # an office's assists: its workbench and what it may see
        Index("ix_ticket_assist_office", "office", "ticket_id"),
        Index("ix_ticket_assist_asked_at", "asked_at"),
        # the report's parts recorded in a period
        Index("ix_ticket_assist_part_at", "part_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    office: str = Field(max_length=64)
    asked_by: str = Field(max_length=64)
    asked_at: dt.datetime = Field(sa_type=UTCDateTime)
    # what the dispatcher asks of this office
    ask_note: str | None = Field(default=None, max_length=2000)
    # what the office did (its part), last recorded
    part_note: str | None = Field(default=None, max_length=2000)
    part_by: str | None = Field(default=None, max_length=64)
    part_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class AssistPublic(SQLModel):
    office: str
    office_name: str = ""
    asked_by: str
    asked_at: dt.datetime
    ask_note: str | None
    part_note: str | None
    part_by: str | None
    part_at: dt.datetime | None


class AssistBody(SQLModel):
    model_config = {"extra": "forbid"}
    office: str = Field(min_length=1, max_length=64, description="协办科室代码")
    note: str | None = Field(default=None, max_length=2000, description="请协办科室做什么")


class AssistPartBody(SQLModel):
    model_config = {"extra": "forbid"}
    note: str = Field(min_length=1, max_length=2000, description="协办情况：本科室做了什么")
    # an office records its own part; a dispatcher or admin names the office it records for
    office: str | None = Field(default=None, max_length=64)


class TicketRoundPublic(SQLModel):
    round: int
    office: str | None
    category: str | None
    started_at: dt.datetime
    first_contact_due: dt.datetime | None
    first_contact_at: dt.datetime | None
    resolve_due: dt.datetime | None
    resolved_at: dt.datetime | None
    resolve_result: str | None
    resolve_note: str | None
    supervised_at: dt.datetime | None
    supervise_due: dt.datetime | None
    satisfaction: str | None
    followed_up_at: dt.datetime | None
    ended_at: dt.datetime
    reconstructed: bool


class TicketEventPublic(SQLModel):
    id: int
    at: dt.datetime
    actor: str
    actor_role: str
    action: str
    from_state: str | None
    to_state: str
    note: str | None
    data: dict[str, Any]


class TicketDetail(TicketPublic):
    classification: dict[str, Any]
    timeline: list[TicketEventPublic]
    # earlier rounds of a reopened ticket, oldest first; the ticket's own fields are the current round
    rounds: list[TicketRoundPublic] = []
    # 片区/居民区/网格 and the 网格长 to call
    place: TicketPlace | None = None
    # photos taken at 先行联系 and 办结 (GET each from its url)
    photos: list[TicketPhotoPublic] = []
    # 联勤联动: the offices assisting the lead office, and their parts
    assists: list[AssistPublic] = []
    # the 五违四必 key point at the ticket's building, if any
    key_point: KeyPointBrief | None = None


class TicketPage(SQLModel):
    items: list[TicketPublic]
    # exact while at most 10,000 tickets match; beyond that an estimate, and total_exact is false
    total: int
    total_exact: bool = True
    page: int
    page_size: int
    # pass as ?cursor= for the next page (keyset pagination: as fast on page 2,000 as on page 1); null on the last
    next_cursor: str | None = None


# Action bodies ---------------------------------------------------------------------------------------------


class ActionNote(SQLModel):
    model_config = {"extra": "forbid"}
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("note", "reason", check_fields=False)
    @classmethod
    def _visible(cls, value: str | None) -> str | None:
        return None if value is None else without_invisible(value)


class RerouteBody(ActionNote):
    office: str | None = Field(default=None, max_length=64)
    category: str | None = Field(default=None, max_length=64)


class MergeBody(ActionNote):
    into_id: int = Field(gt=0, description="主工单 ID")


class ResolveBody(ActionNote):
    result: str = Field(max_length=16, description="实际解决 / 解释说明")
    note: str = Field(min_length=1, max_length=2000)


class ReturnBody(ActionNote):
    reason: str = Field(max_length=32)


class ExtensionBody(ActionNote):
    days: float = Field(gt=0, le=30, description="申请延长的工作日数")
    reason: str = Field(min_length=1, max_length=500)


class FollowUpBody(ActionNote):
    satisfaction: str = Field(max_length=16)


class RejectBody(ActionNote):
    note: str = Field(min_length=1, max_length=2000, description="驳回理由：照片或办理情况哪里不能说明已整改")


# the body each lifecycle action takes, for the API and the pages alike
ACTION_BODIES: dict[str, type[SQLModel]] = {
    "confirm": ActionNote,
    "reroute": RerouteBody,
    "merge": MergeBody,
    "split": ActionNote,
    "cancel": ActionNote,
    "approve-extension": ActionNote,
    "refuse-extension": ActionNote,
    "accept": ActionNote,
    "contact": ActionNote,
    "resolve": ResolveBody,
    "return": ReturnBody,
    "request-extension": ExtensionBody,
    "follow-up": FollowUpBody,
    "reopen": ActionNote,
    "approve-resolution": ActionNote,
    "reject-resolution": RejectBody,
}


class ChangedDay(SQLModel, table=True):
    """A UTC day whose report figures a write may have changed: the report rollup rebuilds the local days it touches
    (docs/SCALING.md#报表汇总). Written in the same transaction as the change, append-only (no row is contended);
    the rollup removes exactly the rows it has read."""

    __tablename__ = "report_dirty"

    id: int | None = Field(default=None, primary_key=True)
    day: dt.date = Field(index=True)
