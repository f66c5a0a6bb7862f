"""The learning page: weekly auto-dispatch and correction rates by category, model history; dispatchers and
admins only, every text escaped."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlmodel import Session

from service.app import create_app
from service.learning.registry import ModelStore, promote
from tests.conftest import auth, payload, post_ticket, token_for
from tests.service.learning.conftest import MakeState, SmallModels
from tests.service.web.test_sessions import login


def test_page_shows_weeks_rates_and_history(make_learning_state: MakeState, small_models: SmallModels) -> None:
    state = make_learning_state("good")
    now = dt.datetime(2026, 11, 18, 2, 0, tzinfo=dt.UTC)  # ISO week 2026-W47 in Shanghai
    state.clock = lambda: now
    store = ModelStore(state.settings.models_root, state.settings.model)
    with Session(state.engine) as session:
        promote(session=session, store=store, rules=state.rules, version=small_models.bad, actor="<b>老李</b>", now=now)
    with TestClient(create_app(state=state)) as client:
        dispatcher = auth(token_for(state, "dispatcher"))
        tickets = [post_ticket(client, payload(received_at=now.isoformat())).json() for _ in range(2)]
        for t in tickets:
            client.post(
                f"/api/v1/tickets/{t['id']}/reroute", json={"category": "garbage", "note": "分错了"}, headers=dispatcher
            )
        login(client, token_for(state, "dispatcher"))
        page = client.get("/ui/learning")
        assert page.status_code == 200
        html = page.text
        assert "模型学习" in html and 'href="/ui/learning"' in html and "2026-W47" in html
        assert "自动派单率" in html and "纠正率" in html and "派错退单" in html
        assert small_models.bad in html and "（当前）" in html and "手动启用" in html and "初始模型" in html
        assert "&lt;b&gt;老李&lt;/b&gt;" in html and "<b>老李</b>" not in html
        assert "交叉验证" in html and page.headers["X-Frame-Options"] == "DENY"
        client.cookies.clear()
        login(client, token_for(state, "office", office="pingan"))
        r = client.get("/ui/learning", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/ui/workbench"
        assert 'href="/ui/learning"' not in client.get("/ui/workbench").text
