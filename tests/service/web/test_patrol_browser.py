"""At phone size in a real browser: a 网格员 files a 群租 problem with a photo from the camera; it reaches 平安办 with
channel 巡查发现; the office contacts and closes it with an after-photo (refused without one); the dispatcher rejects
the 办结 once (办结审核), the office takes a new after-photo and closes again, the dispatcher accepts; the report by
片区 counts it as 主动发现 with one rejection."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from classifier.decision import Classifier
from service.db import upgrade
from service.evidence.models import TicketPhoto
from service.flows.lifecycle import Lifecycle
from service.rules import EvidenceRules, ServiceRules
from service.tickets.models import Ticket
from service.tickets.service import Actor
from tests.conftest import make_state, token_for
from tests.service.areas.test_placement import load_example
from tests.service.evidence.test_ticket_photos import phone_photo
from tests.service.flows.test_discover import RENTING, area_id, patrol_token
from tests.service.web.conftest import served
from tests.service.web.test_browser import CHROMIUM, _login, _shot

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium 未安装（scripts/browser-deps.sh）")
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, rules: ServiceRules, classifier: Classifier
) -> Iterator[dict[str, Any]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('patrol') / 'web.db'}"
    upgrade(url)
    evidence = EvidenceRules(require_after_photo=("group_renting",), review_resolution=("group_renting",))
    strict = rules.model_copy(update={"evidence": evidence})
    state = make_state(url, strict, Classifier(classifier.model, strict))
    load_example(state)
    tokens = {
        "patrol": patrol_token(state, "上南二村居民区"),
        "pingan": token_for(state, "office", "pingan", name="平安办小李"),
        "dispatcher": token_for(state, "dispatcher", name="派单员小王"),
    }
    with served(state) as base:
        yield {"base": base, "state": state, "tokens": tokens}
    state.engine.dispose()


def _photo(tmp: Path, name: str, seed: int) -> Path:
    path = tmp / name
    path.write_bytes(phone_photo(seed))
    return path


def test_a_grid_worker_files_on_the_phone_and_the_office_closes_with_an_after_photo(
    server: dict[str, Any],
    browser: Any,
    tmp_path: Path,
) -> None:
    state = server["state"]
    page = _login(browser, server["base"], server["tokens"]["patrol"], **PHONE)
    assert page.url.endswith("/ui/report")
    # nothing on the page is wider than the phone: no sideways scrolling
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.select_option("select[name=category]", "group_renting")
    page.fill("textarea[name=text]", RENTING)
    page.select_option("select[name=area_id]", str(area_id(state, "上南二村第2网格")))
    page.fill("input[name=address]", "上南二村45号")
    page.set_input_files("input[name=files]", str(_photo(tmp_path, "found.jpg", 1)))
    _shot(page, "patrol-1-form")
    page.click("form.patrol button[type=submit]")
    page.wait_for_load_state("networkidle")
    banner = page.locator(".flash.ok").inner_text()
    assert "已上报：工单 #" in banner and "平安办" in banner
    _shot(page, "patrol-2-filed")
    with Session(state.engine) as session:
        ticket = session.exec(select(Ticket)).one()
        assert (ticket.channel, ticket.source, ticket.office, ticket.cell) == (
            "巡查发现",
            "patrol",
            "pingan",
            "上南二村第2网格",
        )
        if ticket.state == "pending_review":  # the street model leaves every ticket to the dispatcher
            Lifecycle(session=session, rules=state.rules, policy=state.policy).perform(
                ticket_id=ticket.id, action="confirm", actor=Actor(name="派单员", role="dispatcher"), body={}
            )
        ticket_id = ticket.id
    office = _login(browser, server["base"], server["tokens"]["pingan"], **PHONE)
    office.goto(f"{server['base']}/ui/tickets/{ticket_id}")
    assert office.locator(".photos img").count() == 1  # the patrol's photo
    for action in ("accept", "contact"):
        office.locator(f"form[action$='/{action}'] button").click()
        office.wait_for_load_state("networkidle")
    office.locator("form[action$='/resolve'] textarea[name=note]").fill("已拆除隔断，恢复原状")
    office.locator("form[action$='/resolve'] button").click()
    office.wait_for_load_state("networkidle")
    assert "整改后照片" in office.content()  # 群租 needs an after-photo to close
    office.goto(f"{server['base']}/ui/tickets/{ticket_id}")
    office.select_option("form.photo-upload select[name=stage]", "resolve")
    office.set_input_files("form.photo-upload input[name=files]", str(_photo(tmp_path, "after.jpg", 2)))
    office.locator("form.photo-upload button").click()
    office.wait_for_load_state("networkidle")
    assert "已上传照片 1 张" in office.content()
    office.locator("form[action$='/resolve'] textarea[name=note]").fill("已拆除隔断，恢复原状")
    office.locator("form[action$='/resolve'] button").click()
    office.wait_for_load_state("networkidle")
    _shot(office, "patrol-3-submitted")
    assert _state(state, ticket_id) == "resolution_review"  # 群租's 办结 waits for the dispatcher
    desk = _login(browser, server["base"], server["tokens"]["dispatcher"])
    desk.goto(f"{server['base']}/ui/queue")
    item = desk.locator(f"li.item[data-id='{ticket_id}']")
    assert "办结待审" in item.inner_text()
    item.locator("form[action$='/reject-resolution'] input[name=note]").fill("照片看不出隔断已拆除，请补拍全景")
    item.locator("form[action$='/reject-resolution'] button").click()
    desk.wait_for_load_state("networkidle")
    assert _state(state, ticket_id) == "contacted"
    office.goto(f"{server['base']}/ui/workbench")
    assert "照片看不出隔断已拆除" in office.locator(".rejection").first.inner_text()
    office.goto(f"{server['base']}/ui/tickets/{ticket_id}")
    office.locator("form[action$='/resolve'] textarea[name=note]").fill("已拆除隔断，恢复原状")
    office.locator("form[action$='/resolve'] button").click()
    office.wait_for_load_state("networkidle")
    assert "重新拍摄" in office.content()  # the rejected 办结's photo does not count again
    office.goto(f"{server['base']}/ui/tickets/{ticket_id}")
    office.select_option("form.photo-upload select[name=stage]", "resolve")
    office.set_input_files("form.photo-upload input[name=files]", str(_photo(tmp_path, "after2.jpg", 3)))
    office.locator("form.photo-upload button").click()
    office.wait_for_load_state("networkidle")
    office.locator("form[action$='/resolve'] textarea[name=note]").fill("隔断已全部拆除，补拍全景")
    office.locator("form[action$='/resolve'] button").click()
    office.wait_for_load_state("networkidle")
    desk.goto(f"{server['base']}/ui/tickets/{ticket_id}")
    assert desk.locator("#photos img").count() == 3
    desk.locator("form[action$='/approve-resolution'] button").click()
    desk.wait_for_load_state("networkidle")
    _shot(desk, "patrol-4-approved")
    with Session(state.engine) as session:
        done = session.get(Ticket, ticket_id)
        assert done is not None and done.state == "resolved" and done.rejections == 1
        assert done.resolve_note == "隔断已全部拆除，补拍全景"
        stages = sorted(p.stage for p in session.exec(select(TicketPhoto)).all())
        assert stages == ["found", "resolve", "resolve"]
    today = dt.datetime.now(ZoneInfo(state.rules.timezone)).date()
    start = (today - dt.timedelta(days=1)).isoformat()
    office.goto(f"{server['base']}/ui/reports?start={start}&end={today}&by=grid")
    row = office.locator("table.by-grid tbody tr", has_text="上南片区").first.inner_text()
    cells = row.split("\t")
    assert cells[0] == "上南片区" and cells[2:4] == ["1", "1"]  # 受理 1, 主动发现 1
    assert cells[5] == "1" and cells[15] == "1"  # 办结 1, 办结驳回 1
    page.close()
    office.close()
    desk.close()


def _state(state: Any, ticket_id: int) -> str:
    with Session(state.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.state
