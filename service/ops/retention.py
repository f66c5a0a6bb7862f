"""Retention (docs/RETENTION.md): the timelines of long-finished tickets and long-delivered callbacks move out of the
database into compressed monthly JSON Lines files, and are then removed; the tickets, their rounds and the report
snapshots stay."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, func, insert, select
from sqlalchemy.engine import Connection, Engine

from service.notify.models import OutboxMessage, OutboxState
from service.rules import RetentionRules
from service.tickets import changes
from service.tickets.models import State, Ticket, TicketEvent
from service.tickets.service import SYSTEM_ACTOR

BATCH = 5000
_EVENTS = TicketEvent.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
_TICKETS = Ticket.__table__  # type: ignore[attr-defined]
FINISHED = (str(State.closed), str(State.cancelled))


@dataclass
class ArchiveResult:
    events: int = 0
    outbox: int = 0
    tickets: int = 0
    files: list[Path] = field(default_factory=list)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value


class _MonthlyFiles:
    """One gzip file per kind and month for this run, written under a temporary name and renamed when complete, so
    a crash never leaves a file that looks finished; a rerun writes new files (rows are never overwritten)."""

    def __init__(self, directory: Path, kind: str, stamp: str) -> None:
        self.directory, self.kind, self.stamp = directory, kind, stamp
        self.open: dict[str, Any] = {}

    def path(self, month: str) -> Path:
        return self.directory / f"{self.kind}-{month}-{self.stamp}.jsonl.gz"

    def write(self, month: str, row: dict[str, Any]) -> None:
        if month not in self.open:
            self.directory.mkdir(parents=True, exist_ok=True)
            # open across batches and closed in finish(): a context manager cannot span the caller's loop
            partial = self.path(month).with_suffix(".partial")
            self.open[month] = gzip.open(partial, "wt", encoding="utf-8")  # noqa: SIM115
        self.open[month].write(json.dumps({k: _plain(v) for k, v in row.items()}, ensure_ascii=False) + "\n")

    def finish(self) -> list[Path]:
        done = []
        for month, handle in self.open.items():
            handle.close()
            partial = self.path(month).with_suffix(".partial")
            with open(partial, "rb") as written:
                os.fsync(written.fileno())
            os.replace(partial, self.path(month))
            done.append(self.path(month))
        return done


def _batches(conn: Connection, statement: Any, key: Any) -> Iterator[list[dict[str, Any]]]:
    after = 0
    while True:
        rows = [dict(r) for r in conn.execute(statement.where(key > after).order_by(key).limit(BATCH)).mappings()]
        if not rows:
            return
        yield rows
        after = rows[-1]["id"]


def _old_outbox(cutoff: dt.datetime) -> Any:
    o = _OUTBOX.c
    return select(_OUTBOX).where(o.state == OutboxState.delivered, o.delivered_at < cutoff)


def _finished_tickets(cutoff: dt.datetime) -> Any:
    """Tickets closed or cancelled, untouched since the cutoff, with no callback left in the outbox (a callback
    names its event)."""
    t, o = _TICKETS.c, _OUTBOX.c
    return select(t.id).where(t.state.in_(FINISHED), t.updated_at < cutoff, ~exists().where(o.ticket_id == t.id))


def _old_events(cutoff: dt.datetime) -> Any:
    e = _EVENTS.c
    return select(_EVENTS).where(e.ticket_id.in_(_finished_tickets(cutoff).scalar_subquery()), e.action != "archive")


def _write(engine: Engine, statement: Any, files: _MonthlyFiles | None, month_of: str) -> tuple[int, int]:
    """Every row the statement finds, written to its month's file (unless counting only): how many, and the last
    id. Memory holds one batch: what is written is found again for deleting by the same condition up to that id."""
    count, last = 0, 0
    with engine.connect() as conn:
        for rows in _batches(conn, statement, statement.selected_columns.id):
            count += len(rows)
            last = rows[-1]["id"]
            if files is not None:
                for row in rows:
                    files.write(row[month_of].strftime("%Y-%m"), row)
    return count, last


def archive(
    *, engine: Engine, rules: RetentionRules, directory: Path, now: dt.datetime, dry_run: bool = False
) -> ArchiveResult:
    """Write what the retention rules let go to `directory`, then remove it; with `dry_run` only count it."""
    result = ArchiveResult()
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    outbox = _old_outbox(now - dt.timedelta(days=rules.outbox_after_days))
    outbox_files = None if dry_run else _MonthlyFiles(directory, "outbox", stamp)
    result.outbox, last_outbox = _write(engine, outbox, outbox_files, "created_at")
    events = _old_events(now - dt.timedelta(days=rules.events_after_days))
    event_files = None if dry_run else _MonthlyFiles(directory, "events", stamp)
    result.events, last_event = _write(engine, events, event_files, "at")
    with engine.connect() as conn:
        finished = events.where(_EVENTS.c.id <= last_event).with_only_columns(_EVENTS.c.ticket_id).distinct()
        result.tickets = int(conn.execute(select(func.count()).select_from(finished.subquery())).scalar_one())
    if outbox_files is None or event_files is None:
        return result
    # the files are complete and on disk before anything is deleted
    result.files += outbox_files.finish()
    result.files += event_files.finish()
    _remove_outbox(engine, outbox, last_outbox)
    _remove_events(engine, events, last_event, [p.name for p in result.files if p.name.startswith("events-")], now)
    return result


def _remove_outbox(engine: Engine, outbox: Any, last: int) -> None:
    after = 0
    while True:
        with engine.begin() as conn:
            ids = list(
                conn.execute(
                    outbox.with_only_columns(_OUTBOX.c.id)
                    .where(_OUTBOX.c.id > after, _OUTBOX.c.id <= last)
                    .order_by(_OUTBOX.c.id)
                    .limit(BATCH)
                ).scalars()
            )
            if not ids:
                return
            conn.execute(delete(_OUTBOX).where(_OUTBOX.c.id.in_(ids)))
        after = ids[-1]


def _remove_events(engine: Engine, events: Any, last: int, names: Sequence[str], now: dt.datetime) -> None:
    """A batch of tickets at a time, in one transaction each: their archived events go, one entry saying where
    they went comes."""
    note = ("流转记录已归档：" + "、".join(names))[:2000]
    archived = events.where(_EVENTS.c.id <= last)
    after = 0
    while True:
        with engine.begin() as conn:
            tickets = list(
                conn.execute(
                    archived.with_only_columns(_EVENTS.c.ticket_id)
                    .where(_EVENTS.c.ticket_id > after)
                    .distinct()
                    .order_by(_EVENTS.c.ticket_id)
                    .limit(BATCH)
                ).scalars()
            )
            if not tickets:
                return
            found = conn.execute(select(_TICKETS.c.id, _TICKETS.c.state).where(_TICKETS.c.id.in_(tickets)))
            states: dict[int, str] = {tid: state for tid, state in found}
            gone = _EVENTS.c.ticket_id.in_(tickets), _EVENTS.c.id <= last, _EVENTS.c.action != "archive"
            # the report rollup recounts those days as the live report would (docs/RETENTION.md)
            changes.mark(conn, changes.days_of(conn.execute(select(_EVENTS.c.at).where(*gone)).scalars()))
            conn.execute(delete(_EVENTS).where(*gone))
            conn.execute(insert(_EVENTS), [_marker(tid, states[tid], note, names, now) for tid in tickets])
        after = tickets[-1]


def _marker(ticket_id: int, state: str, note: str, names: Sequence[str], now: dt.datetime) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "at": now,
        "actor": SYSTEM_ACTOR.name,
        "actor_role": SYSTEM_ACTOR.role,
        "action": "archive",
        "from_state": state,
        "to_state": state,
        "note": note,
        "data": {"files": list(names)},
    }
