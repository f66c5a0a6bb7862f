"""Group commit: one transaction for many deliveries gives each the same outcome it would get alone."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, func, select

from classifier.decision import Classifier
from service.db import make_engine
from service.deadlines.service import DeadlinePolicy
from service.errors import ConflictError
from service.flows.receive import Accepted, IntakeOutcome, intake_many
from service.intake.batcher import IntakeBatcher, Waiting
from service.notify.models import Alert
from service.rules import ServiceRules
from service.state import AppState
from service.tickets.models import Ticket, TicketCreate, TicketEvent
from tests.conftest import payload

T0 = dt.datetime(2026, 11, 2, 2, tzinfo=dt.UTC)
RENT = "上南二村45号有二房东按床位出租，住了十几个人，要求查处。"


def _p(external_id: str, **kw: Any) -> TicketCreate:
    return TicketCreate.model_validate(payload(external_id=external_id, **kw))


def _batch(state: AppState, payloads: list[TicketCreate]) -> list[IntakeOutcome]:
    with Session(state.engine, expire_on_commit=False) as s:
        return intake_many(
            session=s, payloads=payloads, classifier=state.classifier, policy=state.policy, rules=state.rules, now=T0
        )


def _batcher(state: AppState, kind: type[IntakeBatcher] = IntakeBatcher, **kw: Any) -> IntakeBatcher:
    return kind(
        engine=state.engine, classifier=state.classifier, policy=state.policy, rules=state.rules, clock=lambda: T0, **kw
    )


def _accepted(outcome: IntakeOutcome) -> Accepted:
    assert isinstance(outcome, Accepted), outcome
    return outcome


def test_one_batch_sees_its_own_repeats_duplicates_and_hotspots(state: AppState) -> None:
    here = {"address": "上南二村45号302室", "content": RENT}
    outcomes = _batch(
        state,
        [
            _p("B1", **here),
            _p("B1", **here),  # the hotline system's retry, in the same batch
            _p("B2", **here),  # the same problem reported again: a suspected duplicate of B1
            _p("B1", address="上南二村45号", content="完全不同的内容：路灯坏了"),  # same id, other content
            _p("B3", address="洪山路123弄5号楼", content=RENT.replace("上南二村45号", "洪山路123弄5号楼")),
            _p("B4", **here),  # third 群租 ticket at the building within the window: a hotspot
        ],
    )
    first, retry, dup, conflict, elsewhere, third = outcomes
    assert _accepted(first).created and not _accepted(retry).created
    assert _accepted(retry).ticket.id == _accepted(first).ticket.id
    assert isinstance(conflict, ConflictError) and "B1" in conflict.message
    assert _accepted(elsewhere).created and _accepted(third).created
    with Session(state.engine) as s:
        tickets = {t.external_id: t for t in s.exec(select(Ticket))}
        assert sorted(tickets) == ["B1", "B2", "B3", "B4"]
        b1, b2, b3, b4 = (tickets[k] for k in ("B1", "B2", "B3", "B4"))
        assert b2.duplicate_of_id == b1.id and b2.state == "pending_review"
        assert any(f"#{b1.id}" in r for r in b2.review_reasons)
        assert _accepted(dup).ticket.state == "pending_review" and _accepted(dup).ticket.needs_review
        assert b3.duplicate_of_id is None and not b3.hotspot
        assert not b1.hotspot and not b2.hotspot and b4.hotspot and "3 件" in (b4.hotspot_reason or "")
        hotspot_alerts = s.exec(select(Alert).where(Alert.kind == "hotspot")).all()
        assert [a.ticket_id for a in hotspot_alerts] == [b4.id]
        for t in tickets.values():
            actions = s.exec(
                select(TicketEvent.action).where(TicketEvent.ticket_id == t.id).order_by(col(TicketEvent.id))
            ).all()
            assert actions == ["receive", "classify"], (t.external_id, actions)


def test_a_batch_after_a_stored_one_answers_from_the_database(state: AppState) -> None:
    (stored,) = _batch(state, [_p("S1")])
    again = _batch(state, [_p("S1"), _p("S2")])
    assert _accepted(again[0]).ticket.id == _accepted(stored).ticket.id and not _accepted(again[0]).created
    assert _accepted(again[1]).created
    with Session(state.engine) as s:
        assert s.exec(select(func.count()).select_from(Ticket)).one() == 2


def test_batcher_groups_concurrent_deliveries_and_loses_none(state: AppState) -> None:
    sizes: list[int] = []

    class Recording(IntakeBatcher):
        def _store(self, batch: list[Waiting]) -> list[IntakeOutcome]:
            sizes.append(len(batch))
            return super()._store(batch)

    batcher = _batcher(state, Recording, max_batch=16)

    async def flood() -> list[IntakeOutcome]:
        return await asyncio.gather(*(batcher.submit(_p(f"C{i}")) for i in range(60)))

    try:
        outcomes = asyncio.run(flood())
    finally:
        batcher.close()
    ids = [_accepted(o).ticket.id for o in outcomes]
    assert len(set(ids)) == 60 and all(_accepted(o).created for o in outcomes)
    assert sum(sizes) == 60 and max(sizes) == 16 and len(sizes) < 60  # grouped, and never above the bound
    with Session(state.engine) as s:
        assert s.exec(select(func.count()).select_from(Ticket)).one() == 60


def test_batcher_hands_a_database_outage_to_every_waiting_request(rules: ServiceRules, classifier: Classifier) -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/nowhere")
    batcher = IntakeBatcher(
        engine=engine, classifier=classifier, policy=DeadlinePolicy(rules), rules=rules, clock=lambda: T0
    )

    async def flood() -> list[BaseException | IntakeOutcome]:
        return await asyncio.gather(*(batcher.submit(_p(f"X{i}")) for i in range(5)), return_exceptions=True)

    try:
        results = asyncio.run(flood())
    finally:
        batcher.close()
        engine.dispose()
    assert len(results) == 5 and all(isinstance(r, OperationalError) for r in results)


def test_two_writers_store_each_id_once(state: AppState) -> None:
    batcher = _batcher(state, max_batch=4, writers=2)

    def key(i: int) -> str:
        # batches of four; neighbouring batches, stored concurrently, carry the same four ids
        return f"W{(i // 8) * 4 + i % 4}"

    async def flood() -> list[IntakeOutcome]:
        return await asyncio.gather(*(batcher.submit(_p(key(i))) for i in range(80)))

    try:
        outcomes = asyncio.run(flood())
    finally:
        batcher.close()
    by_id: dict[str, set[int]] = {}
    for i, outcome in enumerate(outcomes):
        by_id.setdefault(key(i), set()).add(_accepted(outcome).ticket.id)
    assert all(len(v) == 1 for v in by_id.values())
    assert len(by_id) == 40 and sum(_accepted(o).created for o in outcomes) == 40
    with Session(state.engine) as s:
        assert s.exec(select(func.count()).select_from(Ticket)).one() == 40


def test_one_unstorable_delivery_does_not_fail_its_batch_mates(state: AppState) -> None:
    class Picky(IntakeBatcher):
        def _store(self, batch: list[Waiting]) -> list[IntakeOutcome]:
            if any(item.payload.external_id == "BAD" for item in batch):
                raise ValueError("unstorable")
            return super()._store(batch)

    batcher = _batcher(state, Picky)

    async def flood() -> list[BaseException | IntakeOutcome]:
        ids = ["G1", "G2", "BAD", "G3", "G4"]
        return await asyncio.gather(*(batcher.submit(_p(i)) for i in ids), return_exceptions=True)

    try:
        results = asyncio.run(flood())
    finally:
        batcher.close()
    assert isinstance(results[2], ValueError)
    assert all(isinstance(r, Accepted) and r.created for i, r in enumerate(results) if i != 2)
    with Session(state.engine) as s:
        assert sorted(s.exec(select(Ticket.external_id))) == ["G1", "G2", "G3", "G4"]
