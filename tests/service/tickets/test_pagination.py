"""Lists at scale: keyset pagination (the API's next_cursor, the page's 下一页) returns every ticket once in order,
totals are exact up to a cap and a labelled estimate beyond it, and on PostgreSQL each list people use is answered
by an index in its order."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import col, select

from service.auth.models import Role
from service.deadlines.queue import statements
from service.state import AppState
from service.tickets import service as tickets
from service.tickets.models import Ticket
from service.tickets.service import Actor, TicketFilter, list_statement
from service.web.listing import total_text
from tests.conftest import auth, explain, payload, post_ticket, token_for
from tests.service.web.test_sessions import login

TEXTS = (
    "上南二村{n}号群租，一套房住了十几个人，要求查处。",
    "洪山路{n}号门口垃圾堆放无人清运。",
    "齐河路{n}号底商占道经营，摆摊到人行道上。",
)


def _seed(client: TestClient, n: int) -> list[int]:
    return [
        post_ticket(client, payload(content=TEXTS[i % 3].format(n=i + 1), address=f"上南二村{i + 1}号")).json()["id"]
        for i in range(n)
    ]


def test_the_cursor_walks_every_ticket_once_in_the_list_order(client: TestClient, state: AppState) -> None:
    _seed(client, 7)
    desk = auth(token_for(state, "dispatcher"))
    whole = client.get("/api/v1/tickets", params={"page_size": 50}, headers=desk).json()
    assert (whole["total"], whole["total_exact"], whole["next_cursor"]) == (7, True, None)
    seen: list[int] = []
    params: dict[str, Any] = {"page_size": 3}
    for _ in range(5):
        page = client.get("/api/v1/tickets", params=params, headers=desk).json()
        seen += [t["id"] for t in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"page_size": 3, "cursor": page["next_cursor"]}
    assert seen == [t["id"] for t in whole["items"]]  # the same order as the first page, nothing twice
    assert len(seen) == 7
    bad = client.get("/api/v1/tickets", params={"cursor": "not-a-cursor"}, headers=desk)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "cursor"]
    first = client.get("/api/v1/tickets", params={"page_size": 3}, headers=desk).json()["next_cursor"]
    both = client.get("/api/v1/tickets", params={"page": 2, "cursor": first}, headers=desk)
    assert both.status_code == 422 and both.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_filter_values_are_data_not_sql(client: TestClient, state: AppState) -> None:
    _seed(client, 2)
    desk = auth(token_for(state, "dispatcher"))
    for params in ({"grid": "a:b"}, {"office": "x%y"}, {"category": "it's"}, {"q": "it's :x %(y)s"}):
        answer = client.get("/api/v1/tickets", params=params, headers=desk)
        assert answer.status_code == 200, (params, answer.text)
        assert answer.json()["total"] == 0 and answer.json()["total_exact"] is True


def test_the_page_follows_the_cursor_newest_first(client: TestClient, state: AppState, monkeypatch: Any) -> None:
    ids = _seed(client, 5)
    monkeypatch.setattr("service.web.listing.PAGE_SIZE", 2)
    login(client, token_for(state, "dispatcher"))
    shown: list[str] = []
    url = "/ui/tickets"
    for _ in range(4):
        page = client.get(url).text
        on_page = [i for i in ids if f'href="/ui/tickets/{i}"' in page]
        shown += [f"#{i}" for i in sorted(on_page, key=lambda i: page.index(f'href="/ui/tickets/{i}"'))]
        if 'rel="next"' not in page:
            break
        url = "/ui/tickets" + page.split('rel="next"')[0].rsplit('href="/ui/tickets', 1)[1].split('"')[0]
        url = url.replace("&amp;", "&")
    assert shown == [f"#{i}" for i in reversed(ids)]
    broken = client.get("/ui/tickets?after=garbage", follow_redirects=True)
    assert "翻页游标无效" in broken.text


def test_a_page_number_reaches_max_offset_deep_and_a_cursor_goes_beyond(
    client: TestClient, state: AppState, monkeypatch: Any
) -> None:
    _seed(client, 6)
    monkeypatch.setattr(tickets, "MAX_OFFSET", 2)
    monkeypatch.setattr("service.web.listing.PAGE_SIZE", 2)
    desk = auth(token_for(state, "dispatcher"))
    first = client.get("/api/v1/tickets", params={"page": 1, "page_size": 2}, headers=desk)
    assert first.status_code == 200 and len(first.json()["items"]) == 2
    deep = client.get("/api/v1/tickets", params={"page": 2, "page_size": 2}, headers=desk)
    assert deep.status_code == 422 and deep.json()["detail"][0]["loc"] == ["query", "page"]
    assert "next_cursor" in deep.json()["detail"][0]["msg"]
    second = client.get("/api/v1/tickets", params={"page_size": 2, "cursor": first.json()["next_cursor"]}, headers=desk)
    assert second.status_code == 200 and len(second.json()["items"]) == 2  # a cursor reads no row it skips
    login(client, token_for(state, "dispatcher"))
    refused = client.get("/ui/tickets", params={"page": 2}, follow_redirects=False)
    assert refused.status_code == 303 and "第 2 页太深" in client.get(refused.headers["location"]).text
    url = "/ui/tickets"
    for _ in range(2):  # 下一页 twice, by the cursor
        page = client.get(url).text
        url = "/ui/tickets" + page.split('rel="next"')[0].rsplit('href="/ui/tickets', 1)[1].split('"')[0]
        url = url.replace("&amp;", "&")
    third = client.get(url).text
    # page 2 by number is out of reach: 上一页 would be refused, so the page offers the first page instead
    assert "第 3 / 3 页" in third and 'rel="prev"' not in third and "回到第一页" in third


def test_beyond_the_cap_the_total_is_a_labelled_estimate(client: TestClient, state: AppState, monkeypatch: Any) -> None:
    _seed(client, 5)
    monkeypatch.setattr(tickets, "EXACT_COUNT_CAP", 3)
    listed = client.get("/api/v1/tickets", headers=auth(token_for(state, "dispatcher"))).json()
    assert listed["total_exact"] is False and listed["total"] >= 4
    assert len(listed["items"]) == 5  # the rows themselves are all there
    # where the planner already expects far more than the cap, its estimate is the answer and nothing is counted
    monkeypatch.setattr(tickets, "_planner_estimate", lambda session, base: 123_456)
    monkeypatch.setattr(tickets, "_capped_count", lambda *a: pytest.fail("counted although the estimate sufficed"))
    listed = client.get("/api/v1/tickets", headers=auth(token_for(state, "dispatcher"))).json()
    assert (listed["total"], listed["total_exact"], len(listed["items"])) == (123_456, False, 5)
    assert total_text(1234, exact=True) == "共 1234 件"
    assert total_text(123_456, exact=False) == "约 12 万件"
    assert total_text(23_456, exact=False) == "约 2.3 万件"


LISTS: list[tuple[str, Actor, TicketFilter, bool, str]] = [
    (
        "an office's tickets in a state (?office=pingan&state=dispatched)",
        Actor("派单员", Role.dispatcher),
        TicketFilter(office="pingan", state="dispatched"),
        False,
        "ix_ticket_office_state_due",
    ),
    (
        "an office user's own list in a state (assisting nothing)",
        Actor("平安办", Role.office, "pingan", assists=()),
        TicketFilter(state="dispatched"),
        False,
        "ix_ticket_office_state_due",
    ),
    (
        "the queue's state",
        Actor("派单员", Role.dispatcher),
        TicketFilter(state="pending_review"),
        False,
        "ix_ticket_state_due",
    ),
    (
        "overdue, by due date",
        Actor("派单员", Role.dispatcher),
        TicketFilter(overdue=True),
        False,
        "ix_ticket_open_due",
    ),
    (
        "a category, newest first",
        Actor("派单员", Role.dispatcher),
        TicketFilter(category="group_renting"),
        True,
        "ix_ticket_category_received",
    ),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("what", "actor", "filters", "newest", "index"), LISTS, ids=[x[0] for x in LISTS])
def test_each_list_is_answered_by_its_index(
    pg_url: str, what: str, actor: Actor, filters: TicketFilter, newest: bool, index: str
) -> None:
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    statement = list_statement(actor=actor, filters=filters, now=now, newest_first=newest).limit(51)
    # the test table is tiny: forbid the sequential scan and the sort a planner rightly prefers there, take away the
    # other index an empty table makes look as good (in this transaction only), and see which index serves the query
    others = tuple(other for other in ("ix_ticket_state_due", "ix_ticket_resolve_due") if other != index)
    plan = explain(pg_url, statement, without=others, off=("enable_seqscan", "enable_sort"))
    assert index in plan and "Sort" not in plan, plan


@pytest.mark.postgres
def test_the_overdue_lists_count_reads_its_small_index_alone(pg_url: str) -> None:
    """The overdue list counts (up to the cap) from the partial index of unresolved tickets, which carries the state:
    at 5 million tickets this took 107 ms through the rows and takes 3 ms from the index."""
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    base = tickets._matching(Actor("派单员", Role.dispatcher), TicketFilter(overdue=True), now)
    capped = select(func.count()).select_from(base.with_only_columns(col(Ticket.id)).limit(10_001).subquery())
    plan = explain(pg_url, capped, without=("ix_ticket_queue",))
    assert "Index Only Scan using ix_ticket_open_due" in plan, plan


@pytest.mark.postgres
@pytest.mark.parametrize("role", [Role.dispatcher, Role.office])
def test_the_queue_picks_counts_and_finds_unstamped_tickets_from_small_indexes(pg_url: str, role: str) -> None:
    """The dispatcher queue: the most pressing stamped tickets shown, their count and the unstamped tickets are each
    read from ix_ticket_queue without visiting a ticket row. An office's workbench may instead take its own open
    tickets from ix_ticket_office_state_due; neither reads the closed tickets."""
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    dispatcher = role == Role.dispatcher
    actor = Actor("派单员", Role.dispatcher) if dispatcher else Actor("平安办", Role.office, "pingan", assists=())
    base = tickets._matching(actor, TicketFilter(open_only=True), now)
    basis = "0123456789abcdef"
    pick, count, unstamped = statements(base, basis=basis, now=now, waiting_only=dispatcher, urgent_first=dispatcher)
    for statement in (pick.limit(200), count, *[part.with_only_columns(col(Ticket.id)) for part in unstamped]):
        plan = explain(pg_url, statement, without=("ix_ticket_open_due",))
        if dispatcher:
            assert "Index Only Scan using ix_ticket_queue" in plan, plan
        else:
            assert "ix_ticket_queue" in plan or "ix_ticket_office_state_due" in plan, plan
