"""The patrol's phone page: filing with photos, the patrol's own area only, errors shown with the form kept."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.state import AppState
from service.tickets.models import Ticket
from tests.service.areas.test_placement import load_example
from tests.service.evidence.test_ticket_photos import HTML, files, phone_photo
from tests.service.flows.test_discover import RENTING, area_id, patrol_token
from tests.service.web.test_sessions import login


def test_a_patrol_files_from_the_phone_page(client: TestClient, state: AppState) -> None:
    load_example(state)
    csrf = login(client, patrol_token(state, "上南二村居民区"))
    page = client.get("/ui/report")
    assert page.status_code == 200 and 'capture="environment"' in page.text
    # only the patrol's own area and what lies under it can be picked
    assert "上南二村第1网格" in page.text and "齐河第1网格" not in page.text
    form = {
        "csrf": csrf,
        "text": RENTING,
        "area_id": str(area_id(state, "上南二村第1网格")),
        "category": "group_renting",
    }
    refused = client.post("/ui/report", data=form, files=files(("x.jpg", HTML, "image/jpeg")))
    assert refused.status_code == 422 and "上报失败" in refused.text and RENTING in refused.text
    done = client.post(
        "/ui/report", data=form, files=files(("a.jpg", phone_photo(), "image/jpeg")), follow_redirects=True
    )
    assert "已上报：工单 #" in done.text and "平安办" in done.text
    assert "我最近上报的" in done.text
    with Session(state.engine) as session:
        ticket = session.exec(select(Ticket)).one()
        assert (ticket.channel, ticket.cell, ticket.office) == ("巡查发现", "上南二村第1网格", "pingan")
    # the patrol's pages: its landing is the filing form; the dispatcher's queue is not for it
    assert client.get("/ui/", follow_redirects=False).headers["location"] == "/ui/report"
    assert client.get("/ui/queue", follow_redirects=False).status_code in (302, 303)
