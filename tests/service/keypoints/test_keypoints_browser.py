"""In a real browser: a street leader's question "is the 违建 at key point 12 demolished, and where are the photos?"
answered on the point's page, and a dispatcher recording its demolition (refused without the m²)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from classifier.decision import Classifier
from service.db import upgrade
from service.evidence.service import attach
from service.rules import ServiceRules
from service.tickets.service import Actor
from tests.conftest import make_state, receive, token_for
from tests.service.areas.test_placement import load_example
from tests.service.evidence.test_ticket_photos import phone_photo
from tests.service.keypoints.test_keypoints import BUILDING, import_file, point
from tests.service.web.conftest import served
from tests.service.web.test_browser import CHROMIUM, _login, _shot

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium 未安装（scripts/browser-deps.sh）")
# the pages count the ledger on this clock: the test means the same at any hour, in any time zone
NOW = dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, rules: ServiceRules, classifier: Classifier
) -> Iterator[dict[str, Any]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('keypoints') / 'web.db'}"
    upgrade(url)
    state = make_state(url, rules, classifier)
    state.clock = lambda: NOW
    load_example(state)
    import_file(state)
    ticket = receive(state, "KP12", NOW - dt.timedelta(days=30), BUILDING, address="上南二村45号1楼")
    with Session(state.engine) as session:
        attach(
            session=session,
            store=state.photos,
            rules=state.rules.evidence,
            ticket_id=ticket.id,
            actor=Actor(name="派单员小张", role="dispatcher"),
            stage="contact",
            uploads=[phone_photo(5)],
            now=NOW - dt.timedelta(days=29),
        )
    tokens = {"dispatcher": token_for(state, "dispatcher", name="派单员小张")}
    with served(state) as base:
        yield {"base": base, "state": state, "tokens": tokens, "ticket": ticket.id}
    state.engine.dispose()


def test_key_point_12_shows_its_tickets_and_photos_and_a_dispatcher_records_the_demolition(
    server: dict[str, Any], browser: Any
) -> None:
    state, base = server["state"], server["base"]
    twelve = point(state, "12")
    page = _login(browser, base, server["tokens"]["dispatcher"])
    page.click("nav a[href='/ui/keypoints']")
    page.wait_for_load_state("networkidle")
    assert "120 / 3000 平方米" in page.locator("section.ledger").inner_text()
    page.click("table.keypoints a:text-is('12')")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/ui/keypoints/{twelve.id}")
    assert page.locator("dd.place").inner_text().startswith("上南片区 / 上南二村居民区 / 上南二村第2网格")
    link = page.locator(f"table.linked a[href='/ui/tickets/{server['ticket']}']")
    assert link.count() == 1
    image = page.locator(".photos img").first
    image.wait_for()
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", image.element_handle())
    _shot(page, "keypoint-1-detail")
    page.select_option("form.keypoint-form select[name=status]", "cleared")
    page.click("form.keypoint-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "拆除面积（demolished_m2）" in page.locator(".flash.err").inner_text()
    assert point(state, "12").status == "working"
    page.fill("form.keypoint-form input[name=demolished_m2]", "46")
    page.select_option("form.keypoint-form select[name=status]", "cleared")
    page.click("form.keypoint-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "点位已更新" in page.locator(".flash.ok").inner_text()
    assert (
        page.locator("span.status").inner_text() == "已整治"
        and "46 平方米" in page.locator("dd.demolished").inner_text()
    )
    _shot(page, "keypoint-2-cleared")
    link.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/ui/tickets/{server['ticket']}")
    page.goto(f"{base}/ui/keypoints")
    assert "166 / 3000 平方米" in page.locator("section.ledger").inner_text()
    page.close()
