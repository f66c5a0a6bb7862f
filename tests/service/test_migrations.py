"""The committed Alembic migrations build exactly the schema the models describe, and go down and up again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import Session, SQLModel, select

import service.auth.models
import service.learning.models
import service.notify.models
import service.reports.models
import service.tickets.models
from service.db import MIGRATIONS, normalize_url, upgrade
from service.state import AppState
from service.tickets.models import Ticket, TicketEvent, TicketRound
from service.tickets.search import SEARCH_TABLES
from tests.conftest import receive

_ = (
    service.auth.models,
    service.learning.models,
    service.notify.models,
    service.reports.models,
    service.tickets.models,
)


def _diff(url: str) -> list[object]:
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    # the search index is one database's own kind of table (tsvector, FTS5), kept out of the models on purpose
    return [d for d in diff if not _search_index(d)]


def _search_index(change: object) -> bool:
    kind, what = change[0], change[1]  # type: ignore[index]
    if kind == "remove_table":
        return what.name in SEARCH_TABLES
    return kind == "remove_index" and what.table.name in SEARCH_TABLES


def _rerun_from(state: AppState, revision: str) -> None:
    """Go down to `revision` and up again, so the migrations after it run over the rows the test wrote."""
    url = str(state.engine.url.render_as_string(hide_password=False))
    state.engine.dispose()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalize_url(url))
    command.downgrade(config, revision)
    upgrade(url)


def test_migrations_match_models_and_downgrade(db_url: str, tmp_path: Path) -> None:
    assert _diff(db_url) == []
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalize_url(db_url))
    command.downgrade(config, "base")
    upgrade(db_url)
    assert _diff(db_url) == []


def test_0008_gives_escalated_tickets_back_their_original_deadline(state: AppState) -> None:
    """Before 0008 督办 replaced resolve_due; the original is in the supervise event and comes back."""
    when = dt.datetime(2026, 11, 2, 1, tzinfo=dt.UTC)
    ticket = receive(state, "MIG8", when, "上南路人行道地砖翘起来一大片，绊倒过好几个人。")
    original, supervised = ticket.resolve_due, dt.datetime(2026, 11, 16, 1, tzinfo=dt.UTC)
    with Session(state.engine) as s:
        row = s.get(Ticket, ticket.id)
        assert row is not None and original is not None
        row.resolve_due, row.supervised_at = supervised, dt.datetime(2026, 11, 11, 1, tzinfo=dt.UTC)
        row.state, row.needs_review = "returned", False
        s.add(row)
        data = {"overdue_due": original.isoformat(), "supervise_due": supervised.isoformat()}
        event = TicketEvent(
            ticket_id=row.id or 0,
            at=when,
            actor="system",
            actor_role="system",
            action="supervise",
            data=data,
            from_state=row.state,
            to_state=row.state,
        )
        s.add(event)
        s.commit()
    _rerun_from(state, "0007")
    with Session(state.engine) as s:
        row = s.get(Ticket, ticket.id)
        assert row is not None
        assert row.resolve_due == original and row.supervise_due == supervised
        assert row.clock_start == row.created_at
        assert (row.state, row.needs_review) == ("pending_review", True)  # was `returned`


def test_0009_rebuilds_the_rounds_of_tickets_reopened_before_it(state: AppState) -> None:
    """Before 0009 a 重办 overwrote the round; 0009 rebuilds the finished round from the timeline."""
    when = dt.datetime(2026, 11, 2, 1, tzinfo=dt.UTC)
    ticket = receive(state, "MIG9", when, "上南路人行道地砖翘起来一大片，绊倒过好几个人。")
    contacted, resolved, reopened = (when + dt.timedelta(hours=h) for h in (2, 200, 220))
    reopen_due = reopened + dt.timedelta(days=3)
    steps = [
        ("contact", contacted, "contacted", {"on_time": True}, None),
        ("resolve", resolved, "resolved", {"result": "实际解决", "on_time": False}, "已修复"),
        ("follow-up", reopened, "reopened", {"satisfaction": "不满意"}, None),
    ]
    with Session(state.engine) as s:
        row = s.get(Ticket, ticket.id)
        assert row is not None and row.id is not None
        for action, at, to, data, note in steps:
            s.add(
                TicketEvent(
                    ticket_id=row.id,
                    at=at,
                    actor="x",
                    actor_role="office",
                    action=action,
                    to_state=to,
                    office=row.office,
                    category=row.category,
                    data=data,
                    note=note,
                )
            )
        # what the old 重办 left on the ticket: the first 办结 kept, the contact cleared, the deadline replaced
        row.state, row.reopen_count, row.resolve_due, row.resolve_clock_start = "accepted", 1, reopen_due, reopened
        row.resolved_at, row.resolve_result, row.resolve_note = resolved, "实际解决", "已修复"
        row.satisfaction, row.followed_up_at, row.first_contact_at = "不满意", reopened, None
        s.add(row)
        s.commit()
    _rerun_from(state, "0008")
    with Session(state.engine) as s:
        row = s.get(Ticket, ticket.id)
        (first,) = s.exec(select(TicketRound).where(TicketRound.ticket_id == ticket.id)).all()
        assert row is not None
        assert (row.resolved_at, row.resolve_result, row.satisfaction, row.first_contact_at) == (None,) * 4
        assert row.first_contact_due == reopen_due  # the stale original contact deadline is not owed again
    assert (first.round, first.reconstructed, first.started_at, first.ended_at) == (0, True, when, reopened)
    assert (first.first_contact_at, first.first_contact_due) == (contacted, contacted)  # on time
    assert (first.resolved_at, first.resolve_result, first.resolve_note) == (resolved, "实际解决", "已修复")
    assert first.resolve_due is not None and first.resolve_due < resolved  # late, as recorded
    assert (first.satisfaction, first.followed_up_at) == ("不满意", reopened)
