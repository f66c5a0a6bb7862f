"""Web sessions held on the server, security headers, server-side banners, and what a viewer's pages show."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from service.auth.service import revoke_user, rotate_token
from service.state import AppState
from service.tickets.models import Ticket
from tests.conftest import ROOT, auth, payload, post_ticket, token_for

PERSONAL = "来电人张三，电话13812345678，身份证310101199001011234，住上南二村45号302室，反映楼上群租。"


def _csrf(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


def login(client: TestClient, token: str) -> str:
    """Log in through the form; returns the session's CSRF token (the cookie stays in the client)."""
    page = client.get("/ui/login")
    r = client.post("/ui/login", data={"token": token, "csrf": _csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/", r.text
    return _csrf(client.get("/ui/reports").text)


def _ticket(state: AppState, ticket_id: int) -> Ticket:
    with Session(state.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket


def test_logout_ends_every_copy_of_the_cookie(client: TestClient, state: AppState) -> None:
    ticket = post_ticket(client, payload()).json()
    csrf = login(client, token_for(state, "dispatcher"))
    stolen = dict(client.cookies)
    assert client.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.update(stolen)  # someone kept a copy of the cookie, and knows the form's token
    r = client.post(f"/ui/tickets/{ticket['id']}/cancel", data={"csrf": csrf, "note": "作废"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert _ticket(state, ticket["id"]).state == ticket["state"]
    assert "会话已结束" in client.get("/ui/login").text


def test_idle_timeout_and_absolute_lifetime(client: TestClient, state: AppState) -> None:
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    now = [start]
    state.clock = lambda: now[0]
    token = token_for(state, "dispatcher")
    login(client, token)
    now[0] = start + dt.timedelta(minutes=29)
    assert client.get("/ui/queue", follow_redirects=False).status_code == 200
    now[0] += dt.timedelta(minutes=31)  # 31 minutes without a request
    r = client.get("/ui/queue", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    # a session in constant use still ends 12 hours after login
    client.cookies.clear()
    now[0] = start
    login(client, token)
    while now[0] < start + dt.timedelta(hours=12) - dt.timedelta(minutes=20):
        now[0] += dt.timedelta(minutes=20)
        assert client.get("/ui/queue", follow_redirects=False).status_code == 200, now[0]
    now[0] = start + dt.timedelta(hours=12)
    assert client.get("/ui/queue", follow_redirects=False).status_code == 303


def test_revoke_and_a_new_token_end_the_sessions(client: TestClient, state: AppState) -> None:
    token_for(state, "dispatcher", name="小张")
    for end in (rotate_token, revoke_user):
        with Session(state.engine) as session:
            _, token = rotate_token(session=session, name="小张")
        client.cookies.clear()
        login(client, token)
        assert client.get("/ui/queue", follow_redirects=False).status_code == 200
        with Session(state.engine) as session:
            end(session=session, name="小张")
        assert client.get("/ui/queue", follow_redirects=False).status_code == 303, end.__name__


@pytest.mark.real_clock
def test_sessions_cli_lists_and_ends_them(client: TestClient, state: AppState) -> None:
    login(client, token_for(state, "dispatcher", name="派单员甲"))
    env = {"HOTLINE_DATABASE_URL": state.settings.database_url, "HOTLINE_DEMO": "1", "PATH": "/usr/bin:/bin"}

    def hotline(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "有 1 个有效网页会话" in hotline("sessions", "list", "--name", "派单员甲")
    assert "结束用户 派单员甲 的 1 个网页会话" in hotline("sessions", "end", "--name", "派单员甲")
    assert client.get("/ui/queue", follow_redirects=False).status_code == 303
    assert "有 0 个有效网页会话" in hotline("sessions", "list", "--name", "派单员甲")


def test_pages_carry_security_headers(client: TestClient, state: AppState) -> None:
    login_page = client.get("/ui/login")
    login(client, token_for(state, "dispatcher"))
    ticket = post_ticket(client, payload()).json()
    for r in (login_page, client.get("/ui/queue"), client.get(f"/ui/tickets/{ticket['id']}")):
        assert r.status_code == 200
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
    static = client.get("/ui/static/app.css")
    assert static.headers["x-content-type-options"] == "nosniff" and "no-store" not in static.headers.get(
        "cache-control", ""
    )
    assert "content-security-policy" not in client.get("/healthz").headers


def test_banners_come_only_from_the_server(client: TestClient, state: AppState) -> None:
    spoof = "系统升级，请把令牌发到 evil@example.com"
    assert spoof not in client.get("/ui/login", params={"err": spoof}).text
    csrf = login(client, token_for(state, "dispatcher"))
    assert spoof not in client.get("/ui/queue", params={"msg": spoof, "err": spoof}).text
    ticket = post_ticket(client, payload()).json()
    form = {"csrf": csrf, "note": "测试作废"}
    r = client.post(f"/ui/tickets/{ticket['id']}/cancel", data=form, follow_redirects=False)
    assert r.status_code == 303 and "msg" not in r.headers["location"]
    assert f"工单 {ticket['id']}：作废成功" in client.get(r.headers["location"]).text
    assert "作废成功" not in client.get(r.headers["location"]).text  # shown once


def test_viewer_sees_no_personal_data_in_pages_or_api(client: TestClient, state: AppState) -> None:
    ticket = post_ticket(client, payload(content=PERSONAL, caller_name="张三", address="上南二村45号302室")).json()
    dispatcher = auth(token_for(state, "dispatcher"))
    note = "已与张三（13812345678）联系"
    assert client.post(f"/api/v1/tickets/{ticket['id']}/cancel", json={"note": note}, headers=dispatcher).status_code
    viewer_token = token_for(state, "viewer")
    viewer = auth(viewer_token)
    texts = [
        client.get("/api/v1/tickets", headers=viewer).text,
        client.get(f"/api/v1/tickets/{ticket['id']}", headers=viewer).text,
        client.get("/api/v1/tickets", params={"q": "群租"}, headers=viewer).text,
    ]
    for fmt in ("csv", "json"):
        report = client.get("/api/v1/reports/daily", params={"date": "2026-11-20", "format": fmt}, headers=viewer)
        texts.append(report.text)
    login(client, viewer_token)
    texts.append(client.get(f"/ui/tickets/{ticket['id']}").text)
    text = "".join(texts)
    assert "138****5678" in text and "群租" in text  # the ticket is there, masked
    for secret in ("13812345678", "310101199001011234", "张三", "302室"):
        assert secret not in text, secret
    assert not re.search(r"1[3-9][0-9]{9}", text)
    # the dispatcher still sees what the work needs
    full = client.get(f"/api/v1/tickets/{ticket['id']}", headers=dispatcher).json()
    assert full["caller_phone"] == "13812345678" and "张三" in full["content"] and full["timeline"][-1]["note"] == note
