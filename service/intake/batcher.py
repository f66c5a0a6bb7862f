"""Group commit for the webhook: deliveries that arrive together are stored in one transaction.

Under a flood each request would otherwise pay its own transaction, queries and commit. Requests hand their parsed
payload to the batcher and wait; one writer thread per process takes everything queued so far (up to a bound),
runs intake for the whole batch and answers each request with its own outcome. A request is answered only after
the commit that stored its ticket, so a 2xx still means "stored". Nothing waits for a timer: a lone delivery is
processed at once, and batches grow only while the writer is busy."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel import Session

from classifier.config import Rules
from classifier.decision import Classifier
from service.db import storage_problem
from service.deadlines.service import DeadlinePolicy
from service.tickets.intake import IntakeOutcome, intake_many
from service.tickets.models import TicketCreate

Waiting = tuple[TicketCreate, "asyncio.Future[IntakeOutcome]"]


def _fail(batch: list[Waiting], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


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
    rules: Rules
    clock: Callable[[], dt.datetime]
    max_batch: int = 64
    # SQLite has one writer at a time anyway; on PostgreSQL a second writer computes while the first waits on I/O
    writers: int = 1
    source: str = "hotline"
    _writer: ThreadPoolExecutor = field(init=False)
    # per event loop, since test clients may run several loops; a real server has one
    _queues: dict[asyncio.AbstractEventLoop, list[Waiting]] = field(default_factory=dict)
    _draining: dict[asyncio.AbstractEventLoop, int] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._writer = ThreadPoolExecutor(max_workers=self.writers, thread_name_prefix="intake")

    async def submit(self, payload: TicketCreate) -> IntakeOutcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IntakeOutcome] = loop.create_future()
        queue = self._queues.setdefault(loop, [])
        queue.append((payload, future))
        if self._draining.get(loop, 0) < self.writers:
            # drain tasks take batches off the queue until it is empty, then end
            self._draining[loop] = self._draining.get(loop, 0) + 1
            task = loop.create_task(self._drain(loop, queue))
            self._tasks.add(task)  # the loop keeps only a weak reference
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self, loop: asyncio.AbstractEventLoop, queue: list[Waiting]) -> None:
        try:
            while queue:
                batch = queue[: self.max_batch]
                del queue[: self.max_batch]
                try:
                    outcomes = await loop.run_in_executor(self._writer, self._store, [p for p, _ in batch])
                except Exception as exc:
                    if len(batch) == 1 or _whole_batch(exc):
                        _fail(batch, exc)
                    else:
                        await self._one_by_one(loop, batch)
                    continue
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            self._draining[loop] -= 1
            if not self._draining[loop]:
                del self._draining[loop], self._queues[loop]

    async def _one_by_one(self, loop: asyncio.AbstractEventLoop, batch: list[Waiting]) -> None:
        """One unstorable delivery (a DataError, say) must not fail its batch-mates: store each alone."""
        for payload, future in batch:
            try:
                (outcome,) = await loop.run_in_executor(self._writer, self._store, [payload])
            except Exception as exc:
                _fail([(payload, future)], exc)
            else:
                if not future.done():
                    future.set_result(outcome)

    def _store(self, payloads: list[TicketCreate]) -> list[IntakeOutcome]:
        with Session(self.engine, expire_on_commit=False) as session:
            return intake_many(
                session=session,
                payloads=payloads,
                classifier=self.classifier,
                policy=self.policy,
                rules=self.rules,
                source=self.source,
                now=self.clock(),
            )

    def close(self) -> None:
        self._writer.shutdown(wait=True)
