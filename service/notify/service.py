"""The outbox: callbacks to the hotline system written with the change, delivered in ticket order, at least once
with an idempotency key, retried with backoff and jitter, dead-lettered after the configured attempts."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import and_, exists, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from service.errors import ConflictError, NotFoundError
from service.notify.models import OutboxMessage, OutboxState
from service.retry import Backoff
from service.signing import sign
from service.tickets.models import State, Ticket, TicketEvent

log = logging.getLogger(__name__)

# Lifecycle actions the hotline system must hear about, and the name it knows them by.
CALLBACK_KINDS = {
    "accept": "签收",
    "contact": "先行联系",
    "resolve": "办结反馈",
    # a reviewed category's 办结 reaches the hotline when the dispatcher approves it (the office's own step is internal)
    "approve-resolution": "办结反馈",
    "return": "退单",
    "request-extension": "延期申请",
    "approve-extension": "延期批准",
    "refuse-extension": "延期驳回",
}


def enqueue(*, session: Session, ticket: Ticket, event: TicketEvent, now: dt.datetime) -> OutboxMessage | None:
    """Add the callback for `event` to the session (the caller's transaction commits it with the change)."""
    kind = CALLBACK_KINDS.get(event.action)
    if kind is None or ticket.source != "hotline" or event.to_state == State.resolution_review:
        return None
    assert event.id is not None and ticket.id is not None
    payload = {
        "event": kind,
        "action": event.action,
        "external_id": ticket.external_id,
        "ticket_id": ticket.id,
        "occurred_at": event.at.isoformat(),
        "state": event.to_state,
        "office": ticket.office,
        "note": event.note,
        "data": event.data,
    }
    message = OutboxMessage(
        ticket_id=ticket.id,
        event_id=event.id,
        kind=kind,
        payload=payload,
        idempotency_key=f"hotline-evt-{event.id}",
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    return message


@dataclass(frozen=True)
class DeliveryPolicy:
    url: str | None
    secret: str
    timeout: float = 10.0
    max_attempts: int = 10
    backoff_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0
    lease_seconds: float = 120.0

    def backoff(self, attempts: int, rng: random.Random) -> dt.timedelta:
        return Backoff(self.backoff_seconds, self.backoff_max_seconds).delay(attempts, rng)


def _eligible(session: Session, now: dt.datetime, limit: int) -> list[int]:
    """Heads of each ticket's queue that are due: an earlier undelivered message blocks the later ones."""
    earlier = aliased(OutboxMessage)
    blocked = exists().where(
        and_(
            col(earlier.ticket_id) == col(OutboxMessage.ticket_id),
            col(earlier.id) < col(OutboxMessage.id),
            col(earlier.state) != OutboxState.delivered,
        )
    )
    ready = (col(OutboxMessage.state) == OutboxState.pending) | (
        (col(OutboxMessage.state) == OutboxState.sending) & (col(OutboxMessage.claimed_until) < now)
    )
    statement = (
        select(OutboxMessage.id)
        .where(ready, col(OutboxMessage.next_attempt_at) <= now, ~blocked)
        .order_by(col(OutboxMessage.id))
        .limit(limit)
    )
    return [int(i) for i in session.exec(statement) if i is not None]


def _claim(session: Session, message_id: int, now: dt.datetime, lease: float) -> str | None:
    """Atomically take one message; two senders can never both win (the UPDATE checks the state it saw)."""
    token = uuid.uuid4().hex
    ready = (col(OutboxMessage.state) == OutboxState.pending) | (
        (col(OutboxMessage.state) == OutboxState.sending) & (col(OutboxMessage.claimed_until) < now)
    )
    result = session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id, ready)
        .values(state=OutboxState.sending, claim=token, claimed_until=now + dt.timedelta(seconds=lease))
    )
    session.commit()
    return token if result.rowcount == 1 else None  # type: ignore[attr-defined]


def _post(client: httpx.Client, policy: DeliveryPolicy, message: OutboxMessage) -> str | None:
    """Send one message; None on success, else the reason it failed."""
    assert policy.url is not None
    body = json.dumps(message.payload, ensure_ascii=False, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Hotline-Timestamp": timestamp,
        "X-Hotline-Signature": sign(policy.secret, timestamp, body),
        "Idempotency-Key": message.idempotency_key,
    }
    try:
        response = client.post(policy.url, content=body, headers=headers, timeout=policy.timeout)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


def _finish(
    session: Session,
    message_id: int,
    token: str,
    error: str | None,
    now: dt.datetime,
    policy: DeliveryPolicy,
    rng: random.Random,
) -> None:
    message = session.get(OutboxMessage, message_id)
    if message is None or message.claim != token:
        return
    message.attempts += 1
    message.claim = None
    message.claimed_until = None
    if error is None:
        message.state = OutboxState.delivered
        message.delivered_at = now
        message.last_error = None
    elif message.attempts >= policy.max_attempts:
        message.state = OutboxState.dead
        message.last_error = error
        log.error("outbox_dead", extra={"outbox_id": message_id, "attempts": message.attempts})
    else:
        message.state = OutboxState.pending
        message.last_error = error
        message.next_attempt_at = now + policy.backoff(message.attempts, rng)
    session.add(message)
    session.commit()


def deliver_due(
    engine: Engine,
    policy: DeliveryPolicy,
    *,
    now: Callable[[], dt.datetime],
    client: httpx.Client | None = None,
    limit: int = 100,
    rng: random.Random | None = None,
) -> dict[str, int]:
    """Deliver what is due, until nothing is; returns counts. Safe to run in several processes at once."""
    counts = {"delivered": 0, "failed": 0}
    if not policy.url:
        return counts
    rng = rng or random.Random()
    own_client = client is None
    http = client or httpx.Client()
    try:
        while True:
            with Session(engine, expire_on_commit=False) as session:
                ids = _eligible(session, now(), limit)
                if not ids:
                    break
                progressed = False
                for message_id in ids:
                    token = _claim(session, message_id, now(), policy.lease_seconds)
                    if token is None:
                        continue
                    message = session.get(OutboxMessage, message_id)
                    assert message is not None
                    error = _post(http, policy, message)
                    _finish(session, message_id, token, error, now(), policy, rng)
                    counts["failed" if error else "delivered"] += 1
                    progressed = progressed or error is None
                if not progressed:
                    break
    finally:
        if own_client:
            http.close()
    return counts


def list_outbox(*, session: Session, state: str | None, page: int, page_size: int) -> tuple[list[OutboxMessage], int]:
    from sqlalchemy import func

    base = select(OutboxMessage)
    if state:
        base = base.where(OutboxMessage.state == state)
    total = session.exec(select(func.count()).select_from(base.subquery())).one()
    rows = session.exec(base.order_by(col(OutboxMessage.id).desc()).offset((page - 1) * page_size).limit(page_size))
    return list(rows), int(total)


def resend(*, session: Session, message_id: int, now: dt.datetime) -> OutboxMessage:
    """Put a dead (or failing) message back in the queue with a fresh attempt budget."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFoundError(f"回调消息 {message_id} 不存在")
    if message.state == OutboxState.delivered:
        raise ConflictError(f"回调消息 {message_id} 已送达，无需重发")
    message.state = OutboxState.pending
    message.attempts = 0
    message.next_attempt_at = now
    message.claim = None
    message.claimed_until = None
    session.add(message)
    session.commit()
    session.refresh(message)
    return message
