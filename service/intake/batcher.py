"""Group commit for the webhook: deliveries that arrive together are classified together and stored in one
transaction.

Under a flood each request would otherwise pay its own classification call, transaction, queries and commit.
Requests hand their parsed payload to the batcher and wait. Two stages run per process, each taking everything
queued for it so far (up to a bound): a classifier thread classifies a batch, and a writer thread runs intake for a
classified batch and answers each request with its own outcome. The stages overlap: the next batch is classified
while the writer waits on the database. A request is answered only after the commit that stored its ticket, so a
2xx still means "stored". Nothing waits for a timer: a lone delivery is processed at once, and batches grow only
while a stage is busy."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel import Session

from classifier.decision import Classifier
from service.db import storage_problem
from service.deadlines.service import DeadlinePolicy
from service.flows.receive import Decided, IntakeOutcome, decide_all, intake_many
from service.rules import ServiceRules
from service.tickets.models import TicketCreate


@dataclass
class Waiting:
    payload: TicketCreate
    future: asyncio.Future[IntakeOutcome]
    decided: Decided | None = None


@dataclass
class _Lane:
    """One event loop's queues (test clients may run several loops; a real server has one)."""

    unclassified: list[Waiting] = field(default_factory=list)
    classified: list[Waiting] = field(default_factory=list)
    classifying: bool = False
    storing: int = 0

    def idle(self) -> bool:
        return not (self.unclassified or self.classified or self.classifying or self.storing)


def _fail(batch: list[Waiting], exc: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)


def _whole_batch(exc: Exception) -> bool:
    """The database is down, read-only or full: no delivery of the batch can be stored, so all get the error."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and storage_problem(exc) is not None
    )


@dataclass
class IntakeBatcher:
    engine: Engine
    classifier: Classifier
    policy: DeadlinePolicy
    rules: ServiceRules
    clock: Callable[[], dt.datetime]
    max_batch: int = 64
    # SQLite has one writer at a time anyway; on PostgreSQL more writers may overlap long round trips
    writers: int = 1
    source: str = "hotline"
    _writer: ThreadPoolExecutor = field(init=False)
    _classify_thread: ThreadPoolExecutor = field(init=False)
    _lanes: dict[asyncio.AbstractEventLoop, _Lane] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._writer = ThreadPoolExecutor(max_workers=self.writers, thread_name_prefix="intake-store")
        self._classify_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-classify")

    async def submit(self, payload: TicketCreate) -> IntakeOutcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IntakeOutcome] = loop.create_future()
        lane = self._lanes.setdefault(loop, _Lane())
        lane.unclassified.append(Waiting(payload, future))
        if not lane.classifying:
            lane.classifying = True
            self._spawn(loop, self._classify(loop, lane))
        return await future

    def _spawn(self, loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(work)
        self._tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._tasks.discard)

    def _take(self, queue: list[Waiting]) -> list[Waiting]:
        batch = queue[: self.max_batch]
        del queue[: self.max_batch]
        return batch

    def _forget_if_idle(self, loop: asyncio.AbstractEventLoop, lane: _Lane) -> None:
        if lane.idle() and self._lanes.get(loop) is lane:
            del self._lanes[loop]

    async def _classify(self, loop: asyncio.AbstractEventLoop, lane: _Lane) -> None:
        try:
            while lane.unclassified:
                batch = self._take(lane.unclassified)
                payloads = [item.payload for item in batch]
                try:
                    decided = await loop.run_in_executor(self._classify_thread, decide_all, self.classifier, payloads)
                except Exception as exc:  # decide_all returns classifier failures; anything else is a bug
                    _fail(batch, exc)
                    continue
                for item, decision in zip(batch, decided, strict=True):
                    item.decided = decision
                lane.classified.extend(batch)
                if lane.storing < self.writers:
                    lane.storing += 1
                    self._spawn(loop, self._store_all(loop, lane))
        finally:
            lane.classifying = False
            self._forget_if_idle(loop, lane)

    async def _store_all(self, loop: asyncio.AbstractEventLoop, lane: _Lane) -> None:
        try:
            while lane.classified:
                batch = self._take(lane.classified)
                try:
                    outcomes = await loop.run_in_executor(self._writer, self._store, batch)
                except Exception as exc:
                    if len(batch) == 1 or _whole_batch(exc):
                        _fail(batch, exc)
                    else:
                        await self._one_by_one(loop, batch)
                    continue
                for item, outcome in zip(batch, outcomes, strict=True):
                    if not item.future.done():
                        item.future.set_result(outcome)
        finally:
            lane.storing -= 1
            self._forget_if_idle(loop, lane)

    async def _one_by_one(self, loop: asyncio.AbstractEventLoop, batch: list[Waiting]) -> None:
        """One unstorable delivery (a DataError, say) must not fail its batch-mates: store each alone."""
        for item in batch:
            try:
                (outcome,) = await loop.run_in_executor(self._writer, self._store, [item])
            except Exception as exc:
                _fail([item], exc)
            else:
                if not item.future.done():
                    item.future.set_result(outcome)

    def _store(self, batch: list[Waiting]) -> list[IntakeOutcome]:
        decided = [item.decided for item in batch if item.decided is not None]
        with Session(self.engine, expire_on_commit=False) as session:
            return intake_many(
                session=session,
                payloads=[item.payload for item in batch],
                decided=decided if len(decided) == len(batch) else None,
                classifier=self.classifier,
                policy=self.policy,
                rules=self.rules,
                source=self.source,
                now=self.clock(),
            )

    def close(self) -> None:
        self._classify_thread.shutdown(wait=True)
        self._writer.shutdown(wait=True)
