"""Callbacks to the hotline system: written with the change, delivered in order, once per key, despite a
misbehaving receiver; dead-lettered and re-sendable; safe with two senders."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.notify.models import OutboxMessage
from service.notify.service import DeliveryPolicy, deliver_due
from service.state import AppState
from tests.conftest import SECRET, auth, payload, post_ticket, token_for
from tests.service.notify.receiver import Receiver, running


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def _work(client: TestClient, state: AppState, tickets: int = 3) -> list[int]:
    office = auth(token_for(state, "office", "pingan"))
    dispatcher = auth(token_for(state, "dispatcher"))
    ids = []
    for _ in range(tickets):
        t = post_ticket(client, payload()).json()
        if t["state"] == "pending_review":
            client.post(f"/api/v1/tickets/{t['id']}/confirm", json={}, headers=dispatcher)
        for action, body in (
            ("accept", {}),
            ("contact", {"note": "已联系"}),
            ("resolve", {"result": "实际解决", "note": "已整改"}),
        ):
            assert client.post(f"/api/v1/tickets/{t['id']}/{action}", json=body, headers=office).status_code == 200
        ids.append(t["id"])
    return ids


def _drain(state: AppState, policy: DeliveryPolicy, clock: Clock, rounds: int = 60) -> None:
    rng = random.Random(0)
    for _ in range(rounds):
        deliver_due(state.engine, policy, now=clock, rng=rng)
        with Session(state.engine) as s:
            if all(m.state == "delivered" for m in s.exec(select(OutboxMessage))):
                return
        clock.now += dt.timedelta(hours=2)


def test_outbox_row_is_written_with_the_change(client: TestClient, state: AppState) -> None:
    (tid,) = _work(client, state, tickets=1)
    with Session(state.engine) as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.ticket_id == tid).order_by(OutboxMessage.id)).all()
    assert [r.kind for r in rows] == ["签收", "先行联系", "办结反馈"]
    assert rows[-1].payload["data"]["result"] == "实际解决" and rows[-1].payload["note"] == "已整改"
    assert len({r.idempotency_key for r in rows}) == 3


def test_every_event_arrives_in_order_once_despite_misbehaviour(client: TestClient, state: AppState) -> None:
    ids = _work(client, state)
    receiver = Receiver(
        secret=SECRET, script=["500", "500", "drop", "slow", "500", "ok", "drop", "500"], slow_seconds=1.5
    )
    with running(receiver):
        policy = DeliveryPolicy(url=receiver.url, secret=SECRET, timeout=0.5, max_attempts=20)
        _drain(state, policy, Clock())
    assert receiver.bad_signatures == 0
    assert len(receiver.acted) == 9
    for tid in ids:
        kinds = [p["event"] for p in receiver.order if p["ticket_id"] == tid]
        assert kinds == ["签收", "先行联系", "办结反馈"], kinds
    # the slow answer was given up on and sent again: the receiver saw that key twice but acted once
    assert len(receiver.keys_seen) >= len(receiver.acted)


def test_endpoint_down_for_hours_then_everything_arrives(client: TestClient, state: AppState) -> None:
    _work(client, state, tickets=2)
    receiver = Receiver(secret=SECRET, default="500")
    clock = Clock()
    with running(receiver):
        policy = DeliveryPolicy(
            url=receiver.url, secret=SECRET, timeout=1, max_attempts=50, backoff_seconds=60, backoff_max_seconds=1800
        )
        for _ in range(12):  # twelve simulated hours of outage
            deliver_due(state.engine, policy, now=clock)
            clock.now += dt.timedelta(hours=1)
        assert not receiver.acted and receiver.calls >= 12  # it kept trying all along
        receiver.default = "ok"
        _drain(state, policy, clock)
    assert len(receiver.acted) == 6 and len(receiver.keys_seen) == 6  # each delivered once after the return
    by_ticket: dict[int, list[str]] = {}
    for message in receiver.order:
        by_ticket.setdefault(message["ticket_id"], []).append(message["event"])
    assert list(by_ticket.values()) == [["签收", "先行联系", "办结反馈"]] * 2  # and in order


def test_dead_letter_after_max_attempts_and_resend(client: TestClient, state: AppState) -> None:
    _work(client, state, tickets=1)
    receiver = Receiver(secret=SECRET, default="500")
    clock = Clock()
    with running(receiver):
        policy = DeliveryPolicy(url=receiver.url, secret=SECRET, timeout=1, max_attempts=3, backoff_seconds=1)
        for _ in range(6):
            deliver_due(state.engine, policy, now=clock)
            clock.now += dt.timedelta(hours=1)
        dispatcher = auth(token_for(state, "dispatcher"))
        dead = client.get("/api/v1/outbox", params={"state": "dead"}, headers=dispatcher).json()
        assert dead["total"] == 1 and dead["items"][0]["attempts"] == 3 and "500" in dead["items"][0]["last_error"]
        # the later events of that ticket wait behind the dead one: order is never broken
        assert client.get("/api/v1/outbox", params={"state": "pending"}, headers=dispatcher).json()["total"] == 2
        office = auth(token_for(state, "office", "pingan"))
        assert client.get("/api/v1/outbox", headers=office).status_code == 403
        again = client.post(f"/api/v1/outbox/{dead['items'][0]['id']}/resend", headers=dispatcher)
        assert again.status_code == 200 and again.json()["state"] == "pending"
        receiver.default = "ok"
        _drain(state, policy, clock)
    assert [p["event"] for p in receiver.order] == ["签收", "先行联系", "办结反馈"]
    delivered = client.get("/api/v1/outbox", params={"state": "delivered"}, headers=dispatcher).json()
    assert delivered["total"] == 3
    assert client.post(f"/api/v1/outbox/{dead['items'][0]['id']}/resend", headers=dispatcher).status_code == 409


def test_crash_while_sending_is_retried_after_the_lease(client: TestClient, state: AppState) -> None:
    _work(client, state, tickets=1)
    clock = Clock()
    with Session(state.engine) as s:
        first = s.exec(select(OutboxMessage).order_by(OutboxMessage.id)).first()
        assert first is not None
        # a sender claimed it and died before finishing
        first.state, first.claim, first.claimed_until = "sending", "dead-process", clock.now + dt.timedelta(minutes=2)
        s.add(first)
        s.commit()
    receiver = Receiver(secret=SECRET)
    with running(receiver):
        policy = DeliveryPolicy(url=receiver.url, secret=SECRET, timeout=1)
        deliver_due(state.engine, policy, now=clock)
        assert not receiver.acted  # still leased to the dead sender
        clock.now += dt.timedelta(minutes=5)
        _drain(state, policy, clock)
    assert [p["event"] for p in receiver.order] == ["签收", "先行联系", "办结反馈"]


@pytest.mark.parametrize("backoff", [1.0, 30.0])
def test_backoff_grows_with_jitter(backoff: float) -> None:
    policy = DeliveryPolicy(url=None, secret="x", backoff_seconds=backoff, backoff_max_seconds=600)
    rng = random.Random(1)
    waits: list[Any] = [policy.backoff(n, rng).total_seconds() for n in range(1, 12)]
    assert all(w <= 600 for w in waits)
    assert waits[4] > waits[0]
    assert len(set(waits)) == len(waits)
