"""Learning tables: routing labels (what people said about the model's routing) and the active model's history."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from service.db import UTCDateTime


class LabelKind(enum.StrEnum):
    confirm = "confirm"
    reroute = "reroute"
    returned = "return"


LABEL_KINDS = {LabelKind.confirm: "确认派单", LabelKind.reroute: "改派", LabelKind.returned: "退单（职能不符）"}


class RoutingLabel(SQLModel, table=True):
    """One person's verdict on a ticket's automatic routing, stored with the action that expressed it."""

    __tablename__ = "routing_label"
    __table_args__ = (Index("ix_routing_label_at", "at"), Index("ix_routing_label_ticket", "ticket_id", "id"))

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    at: dt.datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(max_length=16)
    actor: str = Field(max_length=64)
    actor_role: str = Field(max_length=16)
    # title + separator + content: exactly the text the classifier saw
    text: str = Field(max_length=6000)
    model_version: str | None = Field(default=None, max_length=120)
    model_category: str | None = Field(default=None, max_length=64)
    model_office: str | None = Field(default=None, max_length=64)
    model_confidence: float | None = None
    # the ticket was dispatched without review (the auto-dispatch this label confirms or corrects)
    auto_dispatched: bool = False
    # the category and office a person settled on; a return only says the office was wrong (both unknown)
    category: str | None = Field(default=None, max_length=64)
    office: str | None = Field(default=None, max_length=64)
    # usable as a training example: a confirmation, or a reroute that named the category
    trainable: bool = False


class ModelActivation(SQLModel, table=True):
    """Every change of the active model; the newest row is the active one (all processes read it)."""

    __tablename__ = "model_activation"

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=120)
    at: dt.datetime = Field(sa_type=UTCDateTime)
    # baseline (the configured model, recorded before the first change) / promote / rollback / retrain
    kind: str = Field(max_length=16)
    actor: str = Field(max_length=64)
    note: str | None = Field(default=None, max_length=500)
