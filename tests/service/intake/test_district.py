"""The district profile end to end: a ticket pushed to the webhook reaches its bureau through both levels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from classifier.decision import Classifier
from classifier.twolevel import load_classifier
from service.app import build_state, create_app
from service.rules import ServiceRules, load_rules
from service.settings import Settings
from service.state import AppState
from tests.conftest import SECRET, auth, payload, post_ticket, token_for
from tests.service.web.test_sessions import login

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "examples" / "district-rules.yaml"


@pytest.fixture(scope="module")
def district_rules() -> ServiceRules:
    return load_rules(RULES)


@pytest.fixture(scope="module")
def district_classifier(district_rules: ServiceRules) -> Classifier:
    return load_classifier(ROOT / "models" / "district", district_rules)


@pytest.fixture
def district(db_url: str, district_rules: ServiceRules, district_classifier: Classifier) -> Iterator[AppState]:
    settings = Settings(
        database_url=db_url,
        webhook_secret=SECRET,
        rules=RULES,
        model=ROOT / "models" / "district",
        scheduler=False,
    )
    st = build_state(settings, rules=district_rules, classifier=district_classifier)
    yield st
    st.engine.dispose()


def test_a_group_renting_ticket_goes_to_the_housing_bureau(district: AppState) -> None:
    text = "小区里有二房东把房子隔成十几个隔断间按床位出租，住了二十多人，要求查处群租"
    with TestClient(create_app(state=district)) as client:
        created = post_ticket(client, payload(content=text, title="群租"))
        assert created.status_code == 201, created.text
        tid = created.json()["id"]
        token = token_for(district, "dispatcher", name="区派单员")
        dispatcher = auth(token)
        detail = client.get(f"/api/v1/tickets/{tid}", headers=dispatcher).json()
        assert (detail["category"], detail["office"]) == ("group_renting", "fangguan")
        levels = detail["classification"]["levels"]
        assert [(lv["level"], lv["category"]) for lv in levels] == [(1, "urban_rural"), (2, "group_renting")]
        if detail["state"] == "pending_review":
            confirmed = client.post(f"/api/v1/tickets/{tid}/confirm", json={}, headers=dispatcher)
            assert confirmed.status_code == 200 and confirmed.json()["office"] == "fangguan"
        login(client, token)
        page = client.get(f"/ui/tickets/{tid}").text
        assert "两级判断" in page and "第一级 城乡建设" in page and "第二级 群租" in page and "区房管局" in page


def test_a_fire_hazard_names_the_fire_brigade_as_co_handler(district: AppState) -> None:
    text = "楼道里好几户居民飞线充电，电瓶车停在楼道里充电，消防通道也被堆物堵死，存在火灾隐患"
    with TestClient(create_app(state=district)) as client:
        tid = post_ticket(client, payload(content=text, title="消防隐患")).json()["id"]
        login(client, token_for(district, "dispatcher", name="区派单员"))
        page = client.get(f"/ui/tickets/{tid}").text
        assert "协办单位" in page and "区消防救援局" in page and "区应急局" in page
