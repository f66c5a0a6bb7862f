"""Stored daily report snapshots: what was pushed is what later reads return."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.db import UTCDateTime


class ReportSnapshot(SQLModel, table=True):
    __tablename__ = "report_snapshot"
    __table_args__ = (UniqueConstraint("day", name="uq_report_day"),)

    id: int | None = Field(default=None, primary_key=True)
    day: dt.date
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    report: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    pushed: bool = False


# The report itself, typed: what the API returns as JSON, the snapshot stores, the page draws and the files hold.


class Figures(BaseModel):
    """Every metric of docs/METRICS.md for one group of tickets (an office × category row, or the totals)."""

    received: int = 0
    # received in the period and flagged at intake as a hotspot (同楼栋同类多发 or 回潮)
    hotspots: int = 0
    # received in the period and found by a patrol or a device (主动发现), not reported by a caller
    discovered: int = 0
    resolved: int = 0
    due: int = 0
    on_time: int = 0
    overdue_open: int = 0
    contact_due: int = 0
    contact_on_time: int = 0
    solved: int = 0
    explained: int = 0
    rated: int = 0
    dispatched: int = 0
    returned: int = 0
    reopened: int = 0
    # 办结审核: 办结 the dispatcher sent back to the office (counted for the office whose 办结 it was)
    rejected: int = 0
    # a rate is None when its denominator is zero (shown as "—" with the reason)
    discovery_rate: float | None = None
    closure_rate: float | None = None
    on_time_rate: float | None = None
    contact_rate: float | None = None
    solved_rate: float | None = None
    satisfaction_rate: float | None = None
    return_rate: float | None = None
    reopen_rate: float | None = None
    mean_hours: float | None = None
    median_hours: float | None = None


class ReportRow(Figures):
    # by office: the office; by area (片区/居民区/网格), office is empty and area names the area (未定位: none)
    office: str
    office_name: str
    area: str | None = None
    category: str
    category_name: str


class LedgerDay(BaseModel):
    date: str
    open: int
    new: int
    # a 重办 puts a cleared ticket back on the books
    reopened: int = 0
    closed: int
    recurrence: int


class AreaStatus(BaseModel):
    """One 片区 (level grid) or 居民区 (level community): open at the period's end, of them overdue, and cleared."""

    level: str
    name: str
    zone: str
    open: int
    overdue: int
    cleared: int


class LedgerArea(BaseModel):
    """Where a clearance category's backlog sits: one area's ledger over the period."""

    category: str
    name: str
    area: str
    opening: int
    new: int
    reopened: int
    closed: int
    closing: int
    recurrence: int


class LedgerLine(BaseModel):
    """动态清零 ledger of one clearance category, day by day."""

    category: str
    name: str
    days: list[LedgerDay]


class Period(BaseModel):
    start: str
    end: str
    timezone: str


class MonitorRow(BaseModel):
    """One 片区/街道's new tickets of a monitored category, week by week (same order as MonitorLine.weeks)."""

    grid: str
    new: list[int]
    recurrence: list[int]
    total: int


class MonitorLine(BaseModel):
    """新增X动态监测: a monitored category's new tickets by area and week."""

    category: str
    name: str
    # each week's Monday (local date), oldest first
    weeks: list[str]
    rows: list[MonitorRow]
    totals: list[int]


class MonitorReport(BaseModel):
    end: str
    timezone: str
    lines: list[MonitorLine]


class AssistLine(BaseModel):
    """联勤联动 of one assisting office: the tickets it was asked to help with, listed apart from the lead office's
    figures (each ticket counts once, for its lead office)."""

    office: str
    office_name: str
    # asked to assist in the period
    asked: int
    # recorded its part in the period
    recorded: int
    # at the period's end: assisting a ticket still open, and of those, without a part recorded yet
    open: int
    open_without_part: int


class HotspotLine(BaseModel):
    """冒头就打: one building where a category flared up in the period (a ticket flagged as 同楼栋同类多发 or 回潮),
    with its place and what it came to."""

    # the area at the report's level (片区 for the office breakdown; 未定位 when the ticket was not placed)
    area: str
    zone: str
    community: str
    cell: str
    building: str
    category: str
    category_name: str
    # tickets of this category at this building received in the period, of them still open at its end
    tickets: int
    open: int
    recurrence: bool
    last_received: str


class DailyReport(BaseModel):
    period: Period
    generated_at: str
    # what the rows are: office (承办科室 × 分类) or an area level, grid (片区), community (居民区), cell (网格)
    by: str = "office"
    rows: list[ReportRow]
    totals: Figures
    ledger: list[LedgerLine]
    # by area only: each clearance category's backlog per area over the period
    ledger_areas: list[LedgerArea] = []
    # 冒头就打: the buildings where a category flared up in the period's last hotspots.window_days (the whole period
    # when shorter), by area at the report's level, counted from hotspot_list_from (local date)
    hotspot_list: list[HotspotLine] = []
    hotspot_list_from: str | None = None
    # 联勤联动: assists by assisting office (not in the rows, which count each ticket for its lead office)
    assists: list[AssistLine] = []


class RollupDay(SQLModel, table=True):
    """A local day whose figures report_rollup holds (built at built_at; a later write marks it dirty again)."""

    __tablename__ = "report_rollup_day"

    day: dt.date = Field(primary_key=True)
    built_at: dt.datetime = Field(sa_type=UTCDateTime)


class Rollup(SQLModel, table=True):
    """The report's additive figures of one local day per office × category × 片区 (docs/SCALING.md#报表汇总): the
    sums over a period's days are the period's figures. Office and category are the ones each fact is counted under
    (the ticket's, the finished round's or the event's), the 片区 the ticket's; '' stands for none."""

    __tablename__ = "report_rollup"

    day: dt.date = Field(primary_key=True)
    office: str = Field(primary_key=True, max_length=64)
    category: str = Field(primary_key=True, max_length=64)
    grid: str = Field(primary_key=True, max_length=32)
    received: int = 0
    hotspots: int = 0
    discovered: int = 0
    resolved: int = 0
    due: int = 0
    on_time: int = 0
    contact_due: int = 0
    contact_on_time: int = 0
    solved: int = 0
    explained: int = 0
    rated: int = 0
    satisfaction_sum: float = 0.0
    dispatched: int = 0
    returned: int = 0
    reopened: int = 0
    rejected: int = 0
    hours_sum: float = 0.0
    # the 动态清零 ledger's flows, under the ticket's current office, category and 片区 (merged and cancelled
    # tickets left out, as the ledger does): new (of them 回潮), reopened and closed rounds
    ledger_new: int = 0
    ledger_recurrence: int = 0
    ledger_reopened: int = 0
    ledger_closed: int = 0
    # the hours to resolve of every round resolved that day, sorted (service.reports.service.pack_hours): the
    # period's exact 办结时长 median reads these bytes, not a year of resolutions
    hours: bytes | None = Field(default=None, sa_type=LargeBinary)
