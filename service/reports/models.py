"""Stored daily report snapshots: what was pushed is what later reads return."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
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
