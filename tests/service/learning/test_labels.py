"""Corrections become routing labels in the action's own transaction, from the API and from the web pages."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session, select

from service.db import MIGRATIONS, make_engine, normalize_url, upgrade
from service.learning.models import RoutingLabel
from service.state import AppState
from service.tickets.models import Ticket
from tests.conftest import auth, payload, post_ticket, token_for
from tests.service.web.test_sessions import login


def _labels(state: AppState) -> list[RoutingLabel]:
    with Session(state.engine) as session:
        return list(session.exec(select(RoutingLabel).order_by(RoutingLabel.id)))  # type: ignore[arg-type]


def _ticket(state: AppState, ticket_id: int) -> Ticket:
    with Session(state.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket


def _other_category(state: AppState, category: str | None) -> str:
    return next(c for c in state.rules.categories if c != category and c != "other")


def test_confirm_reroute_and_misroute_return_are_labels(client: TestClient, state: AppState) -> None:
    dispatcher = auth(token_for(state, "dispatcher", name="派单员小张"))
    first = post_ticket(client, payload(title="", content="有人在小区绿地里堆放建筑垃圾，还搭了个棚子。")).json()
    ticket = _ticket(state, first["id"])
    # the ticket records the model that routed it, the same version as in its decision
    assert ticket.model_version == state.classifier.version == ticket.classification["model_version"]
    if first["state"] == "pending_review":
        assert client.post(f"/api/v1/tickets/{first['id']}/confirm", json={}, headers=dispatcher).status_code == 200
    new_category = _other_category(state, first["category"])
    r = client.post(
        f"/api/v1/tickets/{first['id']}/reroute", json={"category": new_category, "note": "分错了"}, headers=dispatcher
    )
    assert r.status_code == 200, r.text
    labels = _labels(state)
    reroute = labels[-1]
    assert reroute.kind == "reroute" and reroute.trainable and reroute.actor == "派单员小张"
    assert (reroute.category, reroute.office) == (new_category, state.rules.category_office(new_category))
    assert reroute.model_category == ticket.classification["category"]
    assert reroute.model_office == ticket.classification["office"]
    assert reroute.model_confidence == ticket.classification["confidence"]
    assert reroute.model_version == ticket.model_version
    assert reroute.text == ticket.content  # no title: the content alone, as the classifier saw it
    if first["state"] == "pending_review":
        assert [lb.kind for lb in labels] == ["confirm", "reroute"] and labels[0].category == first["category"]
        assert not reroute.auto_dispatched
    else:
        assert [lb.kind for lb in labels] == ["reroute"] and reroute.auto_dispatched

    # the office sends it back: 职能不符 is a routing correction, 信息不全 is not
    office = state.rules.category_office(new_category)
    office_token = auth(token_for(state, "office", office=office))
    r = client.post(f"/api/v1/tickets/{first['id']}/return", json={"reason": "职能不符"}, headers=office_token)
    assert r.status_code == 200, r.text
    returned = _labels(state)[-1]
    assert returned.kind == "return" and not returned.trainable and returned.category is None
    count = len(_labels(state))
    second = post_ticket(client, payload(title="群租", content="楼里有人群租，十几个人住一套房。")).json()
    client.post(
        f"/api/v1/tickets/{second['id']}/reroute", json={"office": office, "note": "分错了"}, headers=dispatcher
    )
    office_only = _labels(state)[-1]
    assert office_only.kind == "reroute" and not office_only.trainable  # the category was not named
    assert office_only.text == "群租\x1e楼里有人群租，十几个人住一套房。"
    r = client.post(f"/api/v1/tickets/{second['id']}/return", json={"reason": "信息不全"}, headers=office_token)
    assert r.status_code == 200 and len(_labels(state)) == count + 1


def test_a_refused_action_stores_no_label(client: TestClient, state: AppState) -> None:
    dispatcher = auth(token_for(state, "dispatcher"))
    ticket = post_ticket(client, payload()).json()
    r = client.post(
        f"/api/v1/tickets/{ticket['id']}/reroute", json={"category": "no-such", "note": "分错了"}, headers=dispatcher
    )
    assert r.status_code == 422 and _labels(state) == []


def test_labels_from_the_web_form(client: TestClient, state: AppState) -> None:
    ticket = post_ticket(client, payload()).json()
    token = token_for(state, "dispatcher", name="网页派单员")
    csrf = login(client, token)
    category = _other_category(state, ticket["category"])
    r = client.post(
        f"/ui/tickets/{ticket['id']}/reroute",
        data={"csrf": csrf, "category": category, "note": "分错了"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    (label,) = _labels(state)
    assert (label.kind, label.category, label.actor, label.actor_role) == (
        "reroute",
        category,
        "网页派单员",
        "dispatcher",
    )
    # a forged form (no CSRF token) changes nothing and stores nothing
    r = client.post(f"/ui/tickets/{ticket['id']}/reroute", data={"category": "garbage"}, follow_redirects=False)
    assert r.status_code in (403, 422) and len(_labels(state)) == 1


def test_migration_backfills_the_routing_model_version(client: TestClient, state: AppState, db_url: str) -> None:
    ticket = post_ticket(client, payload()).json()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalize_url(db_url))
    state.engine.dispose()
    command.downgrade(config, "0005")
    upgrade(db_url)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT model_version FROM ticket WHERE id = :id"), {"id": ticket["id"]}).scalar()
    engine.dispose()
    assert stored == state.classifier.version
