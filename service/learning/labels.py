"""Routing labels: each confirm, reroute and misrouting return, stored in the lifecycle action's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from classifier.pipeline import TITLE_SEPARATOR
from service.learning.models import LabelKind, RoutingLabel
from service.tickets.models import Ticket

# the one return reason in the shipped rules that says "wrong office"; rules.yaml `learning.misroute_reasons`
DEFAULT_MISROUTE = ("职能不符",)


def ticket_text(ticket: Ticket) -> str:
    """The text the classifier saw at intake (title, separator, content)."""
    return f"{ticket.title}{TITLE_SEPARATOR}{ticket.content}" if ticket.title else ticket.content


def auto_dispatched(ticket: Ticket) -> bool:
    """Dispatched at intake without review (before any person moved it: intake sets both times at once)."""
    return ticket.dispatched_at is not None and ticket.dispatched_at == ticket.created_at


def label_for(
    *,
    ticket: Ticket,
    action: str,
    body: dict[str, Any],
    actor_name: str,
    actor_role: str,
    now: dt.datetime,
    was_auto: bool,
    misroute_reasons: Sequence[str] = DEFAULT_MISROUTE,
) -> RoutingLabel | None:
    """The label an action gives (None for actions that say nothing about routing); call after the action."""
    if action == "confirm":
        kind, category, office, trainable = (
            LabelKind.confirm,
            ticket.category,
            ticket.office,
            ticket.category is not None,
        )
    elif action == "reroute":
        # an office-only reroute says the office was wrong, not which category is right
        kind, category, office, trainable = (
            LabelKind.reroute,
            ticket.category,
            ticket.office,
            bool(body.get("category")),
        )
    elif action == "return" and body.get("reason") in misroute_reasons:
        kind, category, office, trainable = LabelKind.returned, None, None, False
    else:
        return None
    decided = ticket.classification or {}
    assert ticket.id is not None
    return RoutingLabel(
        ticket_id=ticket.id,
        at=now,
        kind=kind,
        actor=actor_name,
        actor_role=actor_role,
        text=ticket_text(ticket)[:6000],
        model_version=ticket.model_version or decided.get("model_version"),
        model_category=decided.get("category"),
        model_office=decided.get("office"),
        model_confidence=decided.get("confidence"),
        auto_dispatched=was_auto,
        category=category,
        office=office,
        trainable=trainable,
    )


def labels_for_ticket(*, session: Session, ticket_id: int) -> list[RoutingLabel]:
    statement = select(RoutingLabel).where(RoutingLabel.ticket_id == ticket_id).order_by(col(RoutingLabel.id))
    return list(session.exec(statement))


def training_labels(*, session: Session) -> list[RoutingLabel]:
    """The newest trainable label of each ticket (a later reroute supersedes an earlier confirmation)."""
    rows = session.exec(select(RoutingLabel).where(col(RoutingLabel.trainable)).order_by(col(RoutingLabel.id)))
    latest: dict[int, RoutingLabel] = {}
    for row in rows:
        latest[row.ticket_id] = row
    return sorted(latest.values(), key=lambda r: (r.at, r.id or 0))
