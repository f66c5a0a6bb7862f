"""Users and their bearer tokens (only the SHA-256 of a token is stored)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.db import UTCDateTime


class Role(enum.StrEnum):
    admin = "admin"
    dispatcher = "dispatcher"
    office = "office"
    viewer = "viewer"
    # 网格员, 平安志愿者, 城管 on patrol: files problems found in its own area, sees only that area's tickets
    patrol = "patrol"


# who reviews and routes tickets: the queue, the outbox, Open311 submissions
DISPATCH_ROLES = (Role.admin, Role.dispatcher)
ROLE_LABELS = {
    Role.admin: "管理员",
    Role.dispatcher: "派单员",
    Role.office: "承办科室",
    Role.viewer: "只读",
    Role.patrol: "网格巡查",
}


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    __table_args__ = (
        UniqueConstraint("name", name="uq_user_name"),
        UniqueConstraint("token_hash", name="uq_user_token"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    role: str = Field(max_length=16)
    office: str | None = Field(default=None, max_length=64)
    # a patrol's area (a 网格, 居民区 or 片区 of the registry)
    area_id: int | None = Field(default=None, foreign_key="area.id")
    token_hash: str = Field(max_length=64)
    token_prefix: str = Field(max_length=12)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserPublic(SQLModel):
    id: int
    name: str
    role: str
    office: str | None
    area_id: int | None = None
    token_prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class WebSession(SQLModel, table=True):
    """A browser login, held on the server so that logout, revoke and a new token end every copy of the cookie."""

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_user", "user_id", "ended_at"),)

    # SHA-256 of the cookie's random value: a copy of this table does not let anyone log in
    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="app_user.id")
    csrf: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    last_seen_at: dt.datetime = Field(sa_type=UTCDateTime)
    expires_at: dt.datetime = Field(sa_type=UTCDateTime)
    ended_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_reason: str | None = Field(default=None, max_length=16)
    client: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=200)
    # what the user was doing when the session timed out: a page to return to, or a form to submit after login
    pending: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class WebSessionPublic(SQLModel):
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    client: str
    user_agent: str
