"""Retention on SQLite and PostgreSQL: the timelines of tickets finished long ago and callbacks delivered long ago go
to compressed monthly files and leave the database; open tickets, recent callbacks and tickets with a callback still
in the outbox keep theirs; a dry run changes nothing and a second run finds nothing more."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from service.clock import utcnow
from service.notify.models import OutboxMessage
from service.ops.retention import archive
from service.reports.rollup import refresh, verify
from service.rules import RetentionRules
from service.state import AppState
from service.tickets.models import Ticket, TicketEvent
from tests.conftest import auth, payload, post_ticket, run_cli, token_for

ROOT = Path(__file__).resolve().parents[3]
NOW = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)
RULES = RetentionRules(events_after_days=1095, outbox_after_days=90)


def _count(state: AppState, table: type, **where: object) -> int:
    statement = select(func.count()).select_from(table)
    for name, value in where.items():
        statement = statement.where(getattr(table, name) == value)
    with state.engine.connect() as conn:
        return int(conn.execute(statement).scalar_one())


def _setup(client: TestClient, state: AppState) -> dict[str, int]:
    ids = {name: post_ticket(client, payload()).json()["id"] for name in ("old", "open", "pending")}
    desk = auth(token_for(state, "dispatcher"))
    for name in ("old", "open", "pending"):  # a dispatch each (counted in the report: the old one gets archived)
        client.post(f"/api/v1/tickets/{ids[name]}/confirm", json={}, headers=desk)
    office = auth(token_for(state, "office", "pingan"))
    client.post(f"/api/v1/tickets/{ids['open']}/accept", json={}, headers=office)  # one callback
    client.post(f"/api/v1/tickets/{ids['pending']}/accept", json={}, headers=office)  # another
    long_ago = NOW - dt.timedelta(days=4 * 365)
    with state.engine.begin() as conn:
        tickets = Ticket.__table__  # type: ignore[attr-defined]
        outbox = OutboxMessage.__table__  # type: ignore[attr-defined]
        for name in ("old", "pending"):
            conn.execute(update(tickets).where(tickets.c.id == ids[name]).values(state="closed", updated_at=long_ago))
        # the open ticket's callback went out 100 days ago; the pending ticket's is still being retried
        conn.execute(
            update(outbox)
            .where(outbox.c.ticket_id == ids["open"])
            .values(
                state="delivered",
                delivered_at=NOW - dt.timedelta(days=100),
                created_at=dt.datetime(2026, 8, 20, tzinfo=dt.UTC),
            )
        )
    return ids


def test_archive_moves_what_the_rules_let_go_and_keeps_the_rest(
    client: TestClient, state: AppState, tmp_path: Path
) -> None:
    ids = _setup(client, state)
    tmp_path = tmp_path / "archive"
    before = {name: _count(state, TicketEvent, ticket_id=tid) for name, tid in ids.items()}
    refresh(state.engine, state.rules, now=NOW, backfill=0)  # the report rollup holds the timelines' days
    dry = archive(engine=state.engine, rules=RULES, directory=tmp_path, now=NOW, dry_run=True)
    assert (dry.tickets, dry.events, dry.outbox, dry.files) == (1, before["old"], 1, [])
    assert not tmp_path.exists() and _count(state, TicketEvent, ticket_id=ids["old"]) == before["old"]
    done = archive(engine=state.engine, rules=RULES, directory=tmp_path, now=NOW)
    assert (done.tickets, done.events, done.outbox) == (1, before["old"], 1)
    names = sorted(p.name for p in done.files)
    assert names[0].startswith("events-") and names[-1] == "outbox-2026-08-20261203T020000Z.jsonl.gz"
    archived = []
    for path in done.files:
        if path.name.startswith("events-"):
            with gzip.open(path, "rt", encoding="utf-8") as lines:
                archived += [json.loads(line) for line in lines]
    assert len(archived) == before["old"] and {e["ticket_id"] for e in archived} == {ids["old"]}
    assert {e["action"] for e in archived} >= {"receive", "classify"}
    # the old timeline is one entry now, saying where the rest went; the others are whole
    left = client.get(f"/api/v1/tickets/{ids['old']}", headers=auth(token_for(state, "dispatcher"))).json()
    assert [e["action"] for e in left["timeline"]] == ["archive"]
    assert "流转记录已归档" in left["timeline"][0]["note"]
    assert _count(state, TicketEvent, ticket_id=ids["open"]) == before["open"]
    assert _count(state, TicketEvent, ticket_id=ids["pending"]) == before["pending"]  # its callback is not out
    assert _count(state, OutboxMessage, ticket_id=ids["open"]) == 0
    assert _count(state, OutboxMessage, ticket_id=ids["pending"]) == 1
    assert not list(tmp_path.glob("*.partial"))
    again = archive(engine=state.engine, rules=RULES, directory=tmp_path / "again", now=NOW)
    assert (again.events, again.outbox, again.files) == (0, 0, [])
    # the archived events' days were marked: rebuilt, the rollup counts as the live report does
    refresh(state.engine, state.rules, now=NOW, backfill=0)
    today = utcnow().date()
    with state.engine.connect() as conn:
        checked = verify(conn, state.rules, today - dt.timedelta(days=3), today + dt.timedelta(days=90))
    assert checked.days >= 1 and checked.differences == []


def test_the_command_reports_a_dry_run(client: TestClient, state: AppState, tmp_path: Path) -> None:
    _setup(client, state)
    tmp_path = tmp_path / "archive"
    done = run_cli(state, "archive", "--dir", str(tmp_path), "--dry-run")
    assert done.returncode == 0, done.stderr
    # the command uses the real clock: the ticket closed four years before NOW is past three years today too
    assert "可归档：1 件工单的流转记录" in done.stdout
    assert not tmp_path.exists()
