"""Text search with an index, over real HTTP on SQLite (FTS5) and PostgreSQL (tsvector + GIN): 群租 finds 群租 and
not 群…租, `_` and `%` are plain characters, a phone number finds tickets only for readers who may see phones,
relevance ranks a title match first, and tickets loaded around intake are indexed by `hotline search reindex`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DataError

from service.state import AppState
from service.tickets.search import SEARCH_TABLE, query_terms, terms
from tests.conftest import auth, payload, post_ticket, run_cli, token_for
from tests.service.web.test_sessions import login

ROOT = Path(__file__).resolve().parents[3]


def test_terms_are_characters_pairs_and_words() -> None:
    found = terms("楼上群租", "SH-2026A 电话 13812345678，比例 100_%")
    assert {"群", "租", "群租", "上群"} <= set(found)
    assert {"sh", "2026a", "13812345678", "100", "_%", "-"} <= set(found)
    assert "，" not in found
    assert query_terms("群租") == ["群租"]
    assert query_terms("上南二村 45号") == ["上南", "南二", "二村", "号", "45"]
    assert query_terms("  ") == []


def _seed(client: TestClient) -> dict[str, int]:
    made = {
        "renting": payload(title="群租", content="楼上被隔成小间群租，住了十几个人。", address="上南二村45号"),
        "apart": payload(title="噪声", content="群众反映楼下租户晚上很吵。", address="上南二村46号"),
        "symbols": payload(title="飞线充电", content="楼道飞线充电，比例 100_% 危险。", address="洪山路12号"),
        "phone": payload(
            title="垃圾", content="门口垃圾三天没人清运，回电13900001111。", address="齐河路8号", caller_phone=""
        ),
        "body_only": payload(title="扰民", content="对门也在群租，请一并查处。", address="上南二村47号"),
    }
    return {name: post_ticket(client, body).json()["id"] for name, body in made.items()}


def _found(client: TestClient, headers: dict[str, str], q: str, **params: str) -> list[int]:
    answer = client.get("/api/v1/tickets", params={"q": q, "page_size": 50, **params}, headers=headers)
    assert answer.status_code == 200, answer.text
    return [t["id"] for t in answer.json()["items"]]


def test_search_finds_words_not_their_characters_apart(client: TestClient, state: AppState) -> None:
    ids = _seed(client)
    desk = auth(token_for(state, "dispatcher"))
    assert sorted(_found(client, desk, "群租")) == sorted([ids["renting"], ids["body_only"]])
    assert _found(client, desk, "_%") == [ids["symbols"]]  # literal, not a wildcard
    assert _found(client, desk, "100_%") == [ids["symbols"]]
    assert _found(client, desk, "%") == []
    assert _found(client, desk, "上南二村46") == [ids["apart"]]
    assert _found(client, desk, "群租 四十七") == []  # every term must be there
    # relevance: the title's 群租 before the text's
    ranked = _found(client, desk, "群租", sort="relevance")
    assert ranked == [ids["renting"], ids["body_only"]]
    refused = client.get("/api/v1/tickets", params={"sort": "relevance"}, headers=desk)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "sort"]


def test_a_phone_number_finds_tickets_only_for_who_may_see_phones(client: TestClient, state: AppState) -> None:
    ids = _seed(client)
    desk = auth(token_for(state, "dispatcher"))
    assert _found(client, desk, "13900001111") == [ids["phone"]]
    assert _found(client, auth(token_for(state, "viewer")), "13900001111") == []
    detail = client.get(f"/api/v1/tickets/{ids['phone']}", headers=desk).json()
    office = detail["office"]
    mine = auth(token_for(state, "office", office))
    other = auth(token_for(state, "office", "pingan" if office != "pingan" else "guanli"))
    client.post(f"/api/v1/tickets/{ids['phone']}/confirm", json={}, headers=desk)
    assert _found(client, mine, "13900001111") == [ids["phone"]]
    assert _found(client, other, "13900001111") == []


def test_reindex_indexes_what_was_loaded_around_intake(client: TestClient, state: AppState) -> None:
    ids = _seed(client)
    desk = auth(token_for(state, "dispatcher"))
    with state.engine.begin() as conn:  # as a bulk load (a restore, the bench's COPY) would leave it
        conn.execute(text(f"DELETE FROM {SEARCH_TABLE}"))
    assert _found(client, desk, "群租") == []
    done = run_cli(state, "search", "reindex", "--batch", "100")
    assert done.returncode == 0, done.stderr
    assert "已建索引 5 件" in done.stdout and "本次新建索引 5 件" in done.stdout
    assert sorted(_found(client, desk, "群租")) == sorted([ids["renting"], ids["body_only"]])


def test_the_page_searches_and_sorts_by_relevance(client: TestClient, state: AppState) -> None:
    ids = _seed(client)
    login(client, token_for(state, "dispatcher"))
    page = client.get("/ui/tickets", params={"q": "群租", "sort": "relevance"}).text
    first, second = (page.index(f'href="/ui/tickets/{ids[k]}"') for k in ("renting", "body_only"))
    assert first < second and f'href="/ui/tickets/{ids["apart"]}"' not in page
    refused = client.get("/ui/tickets", params={"sort": "relevance"}, follow_redirects=True).text
    assert "按相关度排序需要搜索词" in refused


def test_a_ticket_the_index_refuses_is_stored_and_found_after_reindex(
    client: TestClient, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.tickets import search

    real = search.index_rows

    def refuse(conn: Any, rows: Any) -> None:
        raise DataError("INSERT INTO ticket_search …", {}, Exception("string is too long for tsvector"))

    monkeypatch.setattr(search, "index_rows", refuse)
    sent = post_ticket(client, payload(content="楼上群租，住了十几个人。"))
    assert sent.status_code == 201, sent.text  # accepted input is never lost for the sake of search
    desk = auth(token_for(state, "dispatcher"))
    assert _found(client, desk, "群租") == []
    monkeypatch.setattr(search, "index_rows", real)
    with state.engine.begin() as conn:
        assert search.backfill(conn) == 1
    assert _found(client, desk, "群租") == [sent.json()["id"]]


def test_long_runs_are_cut_alike_in_the_index_and_the_query() -> None:
    long_word = "a" * 4999
    assert terms(long_word) == ["a" * 64] and query_terms("a" * 100) == ["a" * 64]
    assert {"𠮷", "𠮷野"} <= set(terms("𠮷野家"))  # characters beyond the basic block are characters too
