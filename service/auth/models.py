"""Users and their bearer tokens (only the SHA-256 of a token is stored)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from service.db import UTCDateTime


class Role(enum.StrEnum):
    admin = "admin"
    dispatcher = "dispatcher"
    office = "office"
    viewer = "viewer"


ROLE_LABELS = {Role.admin: "管理员", Role.dispatcher: "派单员", Role.office: "承办科室", Role.viewer: "只读"}


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
    token_hash: str = Field(max_length=64)
    token_prefix: str = Field(max_length=12)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserPublic(SQLModel):
    id: int
    name: str
    role: str
    office: str | None
    token_prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
