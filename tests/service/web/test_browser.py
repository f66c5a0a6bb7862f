"""The web pages in a real browser: Debian's chromium driven by Playwright against a real server on loopback."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlmodel import Session

from classifier.decision import Classifier
from service.db import upgrade
from service.flows.lifecycle import Lifecycle
from service.flows.receive import intake
from service.rules import ServiceRules
from service.state import AppState
from service.tickets.models import Ticket, TicketCreate
from service.tickets.service import Actor
from tests.conftest import ROOT, make_state, token_for
from tests.service.web.conftest import (
    CHROMIUM,
    served,
)

ARTIFACTS = ROOT / "test-artifacts"
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">楼道里有人飞线充电'

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian chromium 未安装（scripts/test.sh 以 root 运行时自动安装）",
)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, rules: ServiceRules, classifier: Classifier
) -> Iterator[dict[str, Any]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'web.db'}"
    upgrade(url)
    # every new ticket waits for review, so the dispatcher has a queue to work
    strict = rules.model_copy(update={"classifier": rules.classifier.model_copy(update={"review_threshold": 0.999})})
    state = make_state(url, strict, Classifier(classifier.model, strict))
    ids = _seed(state)
    ids["auto"] = _seed_auto_dispatched(state, rules, classifier)
    tokens = {
        "dispatcher": token_for(state, "dispatcher", name="派单员小张"),
        "pingan": token_for(state, "office", "pingan", name="平安办小李"),
        "guanli": token_for(state, "office", "guanli", name="管理办老王"),
    }
    with served(state) as base:
        yield {"base": base, "state": state, "ids": ids, "tokens": tokens}


def _seed(state: AppState) -> dict[str, int]:
    texts = {
        "renting": "市民来电反映：上南二村45号302室被二房东隔成小间按床位出租，住了十几个人。",
        "building": "洪山花苑12号一楼住户在院子里私自搭了一间彩钢板房，已经快封顶了。",
        "xss": XSS,
    }
    ids = {}
    with Session(state.engine, expire_on_commit=False) as s:
        for key, text in texts.items():
            t, _ = intake(
                session=s,
                payload=TicketCreate(
                    external_id=f"WEB-{key}",
                    received_at=time_now(),
                    channel="电话",
                    content=text,
                    caller_phone="13812345678",
                ),
                classifier=state.classifier,
                policy=state.policy,
                rules=state.rules,
            )
            assert t.id is not None
            ids[key] = t.id
    return ids


def _seed_auto_dispatched(state: AppState, rules: ServiceRules, classifier: Classifier) -> int:
    """One ticket routed at intake with no person involved, as under a rules file with no precision demand."""
    settings = rules.classifier.model_copy(update={"auto_dispatch_precision": None, "review_threshold": 0.0})
    lenient = rules.model_copy(update={"classifier": settings})
    with Session(state.engine, expire_on_commit=False) as s:
        t, _ = intake(
            session=s,
            payload=TicketCreate(
                external_id="WEB-auto",
                received_at=time_now(),
                channel="网站",
                content="上南路菜场门口每天早上都有流动摊贩占道经营卖菜，人行道完全走不通。",
            ),
            classifier=Classifier(classifier.model, lenient),
            policy=state.policy,
            rules=lenient,
        )
    assert t.id is not None and t.state == "dispatched" and t.dispatched_at == t.created_at, t.review_reasons
    return t.id


def time_now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def _login(browser: Any, base: str, token: str, width: int = 1366, height: int = 768) -> Any:
    page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=True)
    page.goto(f"{base}/ui/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _act(server: dict[str, Any], key: str, action: str, role: str, **body: Any) -> None:
    state: AppState = server["state"]
    with Session(state.engine) as s:
        Lifecycle(session=s, rules=state.rules, policy=state.policy).perform(
            ticket_id=server["ids"][key], action=action, actor=Actor(name="测试", role=role), body=body
        )


def _ticket(server: dict[str, Any], key: str) -> Ticket:
    with Session(server["state"].engine) as s:
        t = s.get(Ticket, server["ids"][key])
        assert t is not None
        return t


def test_dispatcher_confirms_and_reroutes(server: dict[str, Any], browser: Any) -> None:
    page = _login(browser, server["base"], server["tokens"]["dispatcher"])
    assert page.url.endswith("/ui/queue")
    assert "派单审核队列" in page.content()
    _shot(page, "1-dispatcher-queue")
    renting = page.locator(f"li.item[data-id='{server['ids']['renting']}']")
    assert renting.locator("mark").count() >= 1  # the keywords that drove the classification
    renting.locator("form[action$='/confirm'] button").click()
    page.wait_for_load_state("networkidle")
    assert "确认派单成功" in page.content()
    assert _ticket(server, "renting").state == "dispatched"
    building = page.locator(f"li.item[data-id='{server['ids']['building']}']")
    building.locator("form[action$='/reroute'] select[name=office]").select_option("guanli")
    building.locator("form[action$='/reroute'] input[name=note]").fill("院内搭建属违建，归管理办")
    building.locator("form[action$='/reroute'] button").click()
    page.wait_for_load_state("networkidle")
    t = _ticket(server, "building")
    assert t.state == "dispatched" and t.office == "guanli"
    _shot(page, "2-dispatcher-after-actions")
    page.close()


def test_office_accepts_contacts_and_resolves(server: dict[str, Any], browser: Any) -> None:
    tid = server["ids"]["renting"]
    if _ticket(server, "renting").state == "pending_review":  # this test also runs alone
        _act(server, "renting", "confirm", "dispatcher")
    page = _login(browser, server["base"], server["tokens"]["pingan"])
    assert page.url.endswith("/ui/workbench")
    _shot(page, "3-office-workbench")
    page.locator(f"tr.item[data-id='{tid}'] form[action$='/accept'] button").click()
    page.wait_for_load_state("networkidle")
    page.locator(f"tr.item[data-id='{tid}'] form[action$='/contact'] button").click()
    page.wait_for_load_state("networkidle")
    assert _ticket(server, "renting").state == "contacted"
    page.goto(f"{server['base']}/ui/tickets/{tid}")
    assert "13812345678" in page.content()  # the assigned office may see the caller's number
    form = page.locator("form[action$='/resolve']")
    form.locator("select[name=result]").select_option("实际解决")
    form.locator("textarea[name=note]").fill("已会同派出所上门，拆除隔断，恢复原状")
    form.locator("button").click()
    page.wait_for_load_state("networkidle")
    t = _ticket(server, "renting")
    assert t.state == "resolved" and t.resolve_result == "实际解决"
    assert "办结成功" in page.content() and "已会同派出所上门" in page.content()
    _shot(page, "4-ticket-page-resolved")
    page.close()


def test_office_cannot_open_another_offices_ticket(server: dict[str, Any], browser: Any) -> None:
    page = _login(browser, server["base"], server["tokens"]["pingan"])
    page.goto(f"{server['base']}/ui/tickets/{server['ids']['building']}")
    assert "不存在或无权查看" in page.content()
    assert "彩钢板" not in page.content()
    page.goto(f"{server['base']}/ui/queue")
    assert page.url.endswith("/ui/workbench")  # the queue is the dispatcher's
    page.close()


def test_xss_payload_renders_as_text(server: dict[str, Any], browser: Any) -> None:
    page = _login(browser, server["base"], server["tokens"]["dispatcher"])
    for path in ("/ui/queue", f"/ui/tickets/{server['ids']['xss']}"):
        page.goto(server["base"] + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__xss") is None
        assert "<script>window.__xss=1</script>" in page.inner_text("body")
    assert "138****5678" not in page.content()  # the dispatcher needs the full number
    _shot(page, "5-xss-as-text")
    page.close()


def test_report_page_with_charts(server: dict[str, Any], browser: Any) -> None:
    page = _login(browser, server["base"], server["tokens"]["dispatcher"])
    page.goto(f"{server['base']}/ui/reports")
    assert "办结率报表" in page.content() and page.locator("svg.chart").count() == 2
    assert "动态清零" in page.content() and "合计" in page.inner_text("table")
    _shot(page, "6-report-page")
    page.close()


def test_forms_need_the_csrf_token_and_a_session(server: dict[str, Any]) -> None:
    import httpx

    base = server["base"]
    anonymous = httpx.get(f"{base}/ui/queue", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/ui/login"
    with httpx.Client(base_url=base) as client:
        login = client.get("/ui/login")
        csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
        r = client.post("/ui/login", data={"token": server["tokens"]["dispatcher"], "csrf": csrf})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        forged = client.post(f"/ui/tickets/{server['ids']['xss']}/cancel", data={"csrf": "forged", "note": "x"})
        assert forged.status_code == 403
    with Session(server["state"].engine) as s:
        t = s.get(Ticket, server["ids"]["xss"])
        assert t is not None and t.state != "cancelled"


def test_dispatcher_exports_the_report_from_the_page(server: dict[str, Any], browser: Any) -> None:
    page = _login(browser, server["base"], server["tokens"]["dispatcher"])
    page.goto(f"{server['base']}/ui/reports")
    with page.expect_download() as download:
        page.click("text=导出 Excel")
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).worksheets[0]
    assert download.value.suggested_filename.endswith(".xlsx") and sheet.cell(row=1, column=1).value == "承办科室"
    page.close()


def test_queue_reads_at_phone_width(server: dict[str, Any], browser: Any) -> None:
    page = _login(browser, server["base"], server["tokens"]["dispatcher"], width=390, height=844)
    page.goto(f"{server['base']}/ui/queue")
    for link in page.locator("header.top nav a").all():
        box = link.bounding_box()
        assert box is not None and box["width"] > box["height"], link.inner_text()  # a word, not a column
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    assert page.locator("ol.queue > li").count() >= 1
    _shot(page, "7-queue-390px")
    page.close()


def test_dispatcher_finds_an_auto_dispatched_ticket_on_the_all_tickets_page(
    server: dict[str, Any], browser: Any
) -> None:
    page = _login(browser, server["base"], server["tokens"]["dispatcher"])
    page.click("header.top nav >> text=全部工单")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/ui/tickets")
    page.select_option("select[name=dispatch]", "auto")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state("networkidle")
    rows = page.locator("table.tickets tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-id") == str(server["ids"]["auto"])
    assert rows.first.locator("td.dispatch").inner_text() == "自动派单"
    _shot(page, "8-all-tickets-auto")
    rows.first.locator("a").first.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/ui/tickets/{server['ids']['auto']}") and "占道经营" in page.content()
    page.close()


def test_session_expires_mid_action_and_continues_after_login(server: dict[str, Any], browser: Any) -> None:
    state: AppState = server["state"]
    extra = _seed_one(state, "WEB-expiry", "小区东门外有人把建筑垃圾倒在绿化带里，已经堆了好几天。")
    page = _login(browser, server["base"], server["tokens"]["dispatcher"])
    page.goto(f"{server['base']}/ui/queue")
    item = page.locator(f"li.item[data-id='{extra}']")
    item.locator("form[action$='/cancel'] input[name=note]").fill("与上午工单重复，已合并处理")
    real = state.clock
    later = real() + dt.timedelta(minutes=state.settings.session_idle_minutes + 1)
    state.clock = lambda: later  # the dispatcher went to a meeting
    try:
        item.locator("form[action$='/cancel'] button").click()
        page.wait_for_load_state("networkidle")
        assert page.url.endswith("/ui/login")
        banner = page.locator("p.flash.err").inner_text()
        assert "会话已过期" in banner and f"工单 #{extra}「作废」" in banner
        with Session(state.engine) as s:
            assert s.get(Ticket, extra).state == "pending_review"  # type: ignore[union-attr]
        page.fill("input[name=token]", server["tokens"]["dispatcher"])
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert page.url.endswith("/ui/resume")
        assert page.locator("input[name=note]").input_value() == "与上午工单重复，已合并处理"
        page.locator("form.action-form button").click()
        page.wait_for_load_state("networkidle")
        assert page.url.endswith("/ui/queue") and "作废成功" in page.content()
        with Session(state.engine) as s:
            assert s.get(Ticket, extra).state == "cancelled"  # type: ignore[union-attr]
    finally:
        state.clock = real
    page.close()


def test_queue_shows_new_tickets_without_a_reload(
    server: dict[str, Any], browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.web import routes

    monkeypatch.setattr(routes, "QUEUE_POLL_SECONDS", 2)
    page = _login(browser, server["base"], server["tokens"]["dispatcher"])
    page.goto(f"{server['base']}/ui/queue")
    before = page.locator("ol.queue > li").count()
    _seed_one(server["state"], "WEB-live", "楼道里堆满了杂物，消防通道被堵住了。")
    page.wait_for_selector("#queue-live:not([hidden])", timeout=20_000)
    assert "新到 1 件工单" in page.locator("#queue-live").inner_text()
    assert page.locator("#queue-count").inner_text() == f"{before + 1} 件"
    page.click("text=刷新队列")
    page.wait_for_load_state("networkidle")
    assert page.locator("ol.queue > li").count() == before + 1
    page.close()


def _seed_one(state: AppState, external_id: str, text: str) -> int:
    with Session(state.engine, expire_on_commit=False) as s:
        t, _ = intake(
            session=s,
            payload=TicketCreate(external_id=external_id, received_at=time_now(), channel="电话", content=text),
            classifier=state.classifier,
            policy=state.policy,
            rules=state.rules,
        )
    assert t.id is not None and t.state == "pending_review"
    return t.id


def test_report_charts_are_not_clipped_and_dashes_say_why(server: dict[str, Any], browser: Any) -> None:
    _seed_one(server["state"], "WEB-chart", "上南二村有人把一套房隔成八间群租，楼道里全是电瓶车。")
    for width in (1366, 1920):
        page = _login(browser, server["base"], server["tokens"]["dispatcher"], width=width, height=900)
        page.goto(f"{server['base']}/ui/reports")
        chart = page.locator("svg.trend").bounding_box()
        dots = page.locator("svg.trend circle").all()
        assert chart is not None and dots
        for dot in dots:
            box = dot.bounding_box()
            assert box is not None
            assert chart["x"] <= box["x"] and box["x"] + box["width"] <= chart["x"] + chart["width"] + 0.5
            assert chart["y"] <= box["y"] and box["y"] + box["height"] <= chart["y"] + chart["height"] + 0.5
        # the last day is drawn at its real height: today's open 群租 ticket lifts the line off zero
        last = page.locator("svg.trend polyline").first.get_attribute("points") or ""
        assert last.split()[-1].split(",")[1] != last.split()[0].split(",")[1]
        dash = page.locator("table abbr.dash").first
        assert dash.get_attribute("title") and "分母为零" in page.inner_text("p.footnote")
        _shot(page, f"9-report-{width}")
        page.close()
