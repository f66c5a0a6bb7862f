"""Adding next year's holidays recomputes open tickets' deadlines (`hotline calendar recompute`), each with an event,
and /readyz stops warning once the year is covered."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from service.app import create_app
from service.cli import app
from service.flows.recalendar import recompute_open
from service.rules import parse_rules
from service.state import AppState
from service.tickets.models import Ticket, TicketEvent
from tests.conftest import ROOT, make_state, receive

SH = ZoneInfo("Asia/Shanghai")
PARKING = "小区门口的消防通道上天天停满了私家车，物业不管，救护车都进不来。"


def _with_2027(tmp_path: Path) -> Path:
    """The shipped rules plus 2027: here only 元旦 (Friday 2027-01-01) as a holiday, enough to move a deadline."""
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    text = text.replace("  extra_holidays: []", "  extra_holidays: [2027-01-01]", 1)
    text = text.replace("  covered_years: []", "  covered_years: [2027]", 1)
    path = tmp_path / "rules-2027.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _local(value: dt.datetime | None) -> str:
    assert value is not None
    return value.astimezone(SH).strftime("%Y-%m-%d %H:%M")


def _tickets(state: AppState) -> dict[str, Ticket]:
    with Session(state.engine) as s:
        return {t.external_id: t for t in s.exec(select(Ticket)).all()}


def test_recompute_moves_estimated_deadlines_once_with_an_event(
    state: AppState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = dt.datetime(2026, 12, 28, 9, tzinfo=SH)  # Monday
    receive(state, "CAL-OPEN", start, PARKING, kind="投诉")
    receive(state, "CAL-NEAR", start, PARKING, kind="咨询")  # due 12-29, inside 2026: nothing to move
    before = _tickets(state)
    # Monday–Friday estimate: 12-29, 12-30, 12-31, 01-01, 01-04
    assert _local(before["CAL-OPEN"].resolve_due) == "2027-01-04 09:00" and before["CAL-OPEN"].calendar_estimated
    assert _local(before["CAL-NEAR"].resolve_due) == "2026-12-29 09:00" and not before["CAL-NEAR"].calendar_estimated

    rules_2027 = _with_2027(tmp_path)
    monkeypatch.setenv("HOTLINE_DATABASE_URL", str(state.engine.url.render_as_string(hide_password=False)))
    monkeypatch.setenv("HOTLINE_RULES", str(rules_2027))
    runner = CliRunner()
    dry = runner.invoke(app, ["calendar", "recompute", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "工单 CAL-OPEN：办结时限 2027-01-04 09:00 → 2027-01-05 09:00" in dry.output and "CAL-NEAR" not in dry.output
    assert _local(_tickets(state)["CAL-OPEN"].resolve_due) == "2027-01-04 09:00"  # a dry run writes nothing

    done = runner.invoke(app, ["calendar", "recompute"])
    assert done.exit_code == 0 and "已重算 1 件" in done.output, done.output
    after = _tickets(state)["CAL-OPEN"]
    assert _local(after.resolve_due) == "2027-01-05 09:00" and not after.calendar_estimated  # 元旦 is a holiday
    with Session(state.engine) as s:
        events = s.exec(
            select(TicketEvent).where(TicketEvent.ticket_id == after.id, TicketEvent.action == "recalendar")
        )
        (event,) = events.all()
    assert event.data["resolve_due"]["to"].startswith("2027-01-05T01:00") and event.note == "日历更新后重算时限"
    again = runner.invoke(app, ["calendar", "recompute"])
    assert again.exit_code == 0 and "已重算 0 件" in again.output


def test_readiness_warns_until_the_next_year_is_covered(state: AppState, tmp_path: Path) -> None:
    december = dt.datetime(2026, 12, 3, 9, tzinfo=SH)
    state.clock = lambda: december
    with TestClient(create_app(state=state)) as client:
        calendar = client.get("/readyz").json()["checks"]["calendar"]
    assert not calendar["ok"] and "补充下一年节假日" in calendar["warning"]
    covered = parse_rules(_with_2027(tmp_path).read_text(encoding="utf-8"))
    fresh = make_state(str(state.engine.url.render_as_string(hide_password=False)), covered, state.classifier)
    fresh.clock = lambda: december
    try:
        with TestClient(create_app(state=fresh)) as client:
            calendar = client.get("/readyz").json()["checks"]["calendar"]
        assert calendar["ok"] and "warning" not in calendar and calendar["covered_until"] == "2027-12-31"
    finally:
        fresh.engine.dispose()


def test_recompute_leaves_closed_clocks_alone(state: AppState, tmp_path: Path) -> None:
    start = dt.datetime(2026, 12, 28, 9, tzinfo=SH)
    receive(state, "CAL-DONE", start, PARKING, kind="投诉")
    with Session(state.engine) as s:
        ticket = s.exec(select(Ticket).where(Ticket.external_id == "CAL-DONE")).one()
        ticket.state, ticket.resolved_at = "resolved", start + dt.timedelta(hours=3)
        s.add(ticket)
        s.commit()
    covered = parse_rules(_with_2027(tmp_path).read_text(encoding="utf-8"))
    assert recompute_open(state.engine, covered, now=start) == []  # its 办结 clock is over: the verdict stands
    assert _local(_tickets(state)["CAL-DONE"].resolve_due) == "2027-01-04 09:00"
