"""Action forms on the pages: Chinese errors that name the ticket and field and keep what was typed; a reroute needs
a reason; a session that times out mid-action keeps the action for the same user to submit after logging in."""

from __future__ import annotations

import datetime as dt
import html

from fastapi.testclient import TestClient
from sqlmodel import Session

from service.state import AppState
from service.tickets.models import Ticket
from service.web.forms import field_label, zh_message
from tests.conftest import auth, payload, post_ticket, token_for
from tests.service.web.test_sessions import _csrf, login


def _ticket(state: AppState, ticket_id: int) -> Ticket:
    with Session(state.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket


def _dispatched(client: TestClient, state: AppState) -> dict[str, object]:
    ticket = post_ticket(client, payload()).json()
    if ticket["state"] != "dispatched":
        dispatcher = auth(token_for(state, "dispatcher", name="派单员甲"))
        client.post(f"/api/v1/tickets/{ticket['id']}/confirm", json={}, headers=dispatcher)
    return dict(ticket)


def test_a_too_long_note_names_ticket_and_field_and_keeps_the_text(client: TestClient, state: AppState) -> None:
    ticket = _dispatched(client, state)
    office = _ticket(state, int(str(ticket["id"]))).office
    csrf = login(client, token_for(state, "office", office=office))
    typed = "已上门核查，" + "整改" * 997 + "完毕。"
    assert len(typed) == 2003
    r = client.post(
        f"/ui/tickets/{ticket['id']}/resolve",
        data={"csrf": csrf, "result": "实际解决", "note": typed},
        follow_redirects=False,
    )
    assert r.status_code == 422
    page = html.unescape(r.text)
    assert f"工单 #{ticket['id']}「办结」未完成" in page
    assert "办理情况：不能超过 2000 个字（现有 2003 个字）" in page
    assert typed in page  # the 2,003 characters are still in the textarea
    assert "String should" not in page and "说明：" not in page
    assert _ticket(state, int(str(ticket["id"]))).state == "dispatched"


def test_reroute_needs_a_reason_and_the_page_shows_the_new_category_evidence(
    client: TestClient, state: AppState
) -> None:
    ticket = post_ticket(client, payload(content="小区里有人在绿地上搭建违章建筑，还堆放建筑垃圾。")).json()
    csrf = login(client, token_for(state, "dispatcher"))
    other = next(c for c in state.rules.categories if c not in (ticket["category"], "other"))
    r = client.post(
        f"/ui/tickets/{ticket['id']}/reroute", data={"csrf": csrf, "category": other}, follow_redirects=False
    )
    assert r.status_code == 422 and "改派理由：改派需要说明理由" in html.unescape(r.text)
    assert f'<option value="{other}" selected' in r.text  # the chosen category is kept
    assert _ticket(state, ticket["id"]).category == ticket["category"]
    r = client.post(
        f"/ui/tickets/{ticket['id']}/reroute",
        data={"csrf": csrf, "category": other, "note": "现场核实为另一类问题"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = html.unescape(client.get(f"/ui/tickets/{ticket['id']}").text)
    name = state.rules.categories[other].name
    assert f"当前分类：{name}" in page and "理由：现场核实为另一类问题" in page
    assert "<td>现场核实为另一类问题</td>" in page  # the timeline's 说明


def test_a_refused_action_without_typed_text_returns_with_a_banner(client: TestClient, state: AppState) -> None:
    ticket = _dispatched(client, state)
    csrf = login(client, token_for(state, "dispatcher"))
    r = client.post(f"/ui/tickets/{ticket['id']}/confirm", data={"csrf": csrf, "back": "/ui/queue"})
    assert r.status_code == 200 and r.url.path == "/ui/queue"
    assert f"工单 #{ticket['id']}「确认派单」未完成" in html.unescape(r.text)
    # a "back" address that leaves the site is ignored
    r = client.post(
        f"/ui/tickets/{ticket['id']}/confirm",
        data={"csrf": csrf, "back": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.headers["location"] == f"/ui/tickets/{ticket['id']}"


def test_chinese_messages_for_every_kind_of_field_error() -> None:
    assert zh_message({"type": "missing"}, None) == "必填"
    assert zh_message({"type": "string_too_short", "ctx": {"min_length": 1}}, "") == "不能为空"
    assert zh_message({"type": "float_parsing"}, "五") == "请输入数字"
    assert zh_message({"type": "less_than_equal", "ctx": {"le": 30}}, "40") == "不能超过 30"
    assert zh_message({"type": "greater_than", "ctx": {"gt": 0}}, "0") == "必须大于 0"
    assert field_label("resolve", "note") == "办理情况" and field_label("cancel", "note") == "作废原因"
    assert field_label("request-extension", "reason") == "延期理由" and field_label("merge", "into_id") == "主工单编号"


def _expire(state: AppState) -> None:
    later = state.clock() + dt.timedelta(minutes=state.settings.session_idle_minutes + 1)
    state.clock = lambda: later


def test_session_expiry_mid_action_keeps_it_for_after_login(client: TestClient, state: AppState) -> None:
    ticket = post_ticket(client, payload()).json()
    if ticket["state"] == "dispatched":
        ticket = post_ticket(client, payload(external_id="T-2", content="路边有人占道经营卖水果。")).json()
    token = token_for(state, "dispatcher")
    csrf = login(client, token)
    _expire(state)
    r = client.post(
        f"/ui/tickets/{ticket['id']}/cancel",
        data={"csrf": csrf, "note": "重复来电，已合并处理", "back": "/ui/queue"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert _ticket(state, ticket["id"]).state == ticket["state"]  # nothing happened yet
    login_page = html.unescape(client.get("/ui/login").text)
    assert "会话已过期" in login_page and f"工单 #{ticket['id']}「作废」" in login_page
    r = client.post("/ui/login", data={"token": token, "csrf": _csrf(login_page)}, follow_redirects=False)
    assert r.headers["location"] == "/ui/resume"
    resume = client.get("/ui/resume")
    assert "重复来电，已合并处理" in resume.text and f"工单 #{ticket['id']}「作废」" in html.unescape(resume.text)
    r = client.post(
        f"/ui/tickets/{ticket['id']}/cancel",
        data={"csrf": _csrf(resume.text), "note": "重复来电，已合并处理", "back": "/ui/queue"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/ui/queue" and _ticket(state, ticket["id"]).state == "cancelled"
    # the parked action is used once
    assert client.get("/ui/resume", follow_redirects=False).headers["location"] == "/ui/queue"


def test_a_page_opened_after_expiry_is_where_login_returns(client: TestClient, state: AppState) -> None:
    token = token_for(state, "dispatcher")
    login(client, token)
    _expire(state)
    r = client.get("/ui/reports?start=2026-11-01&end=2026-11-30", follow_redirects=False)
    assert r.headers["location"] == "/ui/login"
    page = html.unescape(client.get("/ui/login").text)
    assert "会话已过期" in page and "登录后将回到刚才的页面" in page
    r = client.post("/ui/login", data={"token": token, "csrf": _csrf(page)}, follow_redirects=False)
    assert r.headers["location"] == "/ui/reports?start=2026-11-01&end=2026-11-30"


def test_another_user_or_a_forged_form_resumes_nothing(client: TestClient, state: AppState) -> None:
    ticket = post_ticket(client, payload()).json()
    csrf = login(client, token_for(state, "dispatcher", name="甲"))
    _expire(state)
    forged = client.post(
        f"/ui/tickets/{ticket['id']}/cancel", data={"csrf": "wrong", "note": "x"}, follow_redirects=False
    )
    assert "登录后可以继续" not in html.unescape(client.get("/ui/login").text)
    assert forged.headers["location"] == "/ui/login"
    client.post(f"/ui/tickets/{ticket['id']}/cancel", data={"csrf": csrf, "note": "作废"}, follow_redirects=False)
    page = client.get("/ui/login").text
    r = client.post(
        "/ui/login",
        data={"token": token_for(state, "dispatcher", name="乙"), "csrf": _csrf(page)},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/ui/"  # 乙 does not get 甲's action
    assert _ticket(state, ticket["id"]).state == ticket["state"]


def test_errors_under_ui_are_chinese_pages_and_the_api_keeps_json(client: TestClient, state: AppState) -> None:
    csrf = login(client, token_for(state, "dispatcher"))
    missing = client.get("/ui/no-such-page")
    assert missing.status_code == 404 and "页面不存在" in missing.text and "Not Found" not in missing.text
    bad = client.post("/ui/tickets/abc/confirm", data={"csrf": csrf})
    assert bad.status_code == 422 and "网址中的参数无效" in bad.text and "Input should" not in bad.text
    forged = client.post("/ui/tickets/1/confirm", data={"csrf": "forged"})
    assert (
        forged.status_code == 403
        and "CSRF 校验失败" in forged.text
        and forged.headers["content-type"].startswith("text/html")
    )
    api = client.get("/api/v1/no-such")
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


def test_one_confidence_figure_on_the_ticket_page(client: TestClient, state: AppState) -> None:
    import re

    login(client, token_for(state, "dispatcher"))
    for i, text in enumerate(
        ["上南二村45号302室被二房东隔成小间群租，住了十几个人。", "菜场门口有人占道经营，人行道走不通。"]
    ):
        ticket = post_ticket(client, payload(external_id=f"CONF-{i}", content=text)).json()
        page = client.get(f"/ui/tickets/{ticket['id']}").text
        shown = re.search(r"(?:置信度|综合概率) ([\d.]+)%", page)
        first = re.search(r'<ol class="alts"><li>(\S+) <span class="bar"[^>]*></span> ([\d.]+)%', page)
        assert shown and first, page
        assert shown.group(1) == first.group(2) == f"{ticket['confidence'] * 100:.1f}"
        assert first.group(1) == state.rules.categories[ticket["category"]].name
