"""Address normalization, suspected duplicates, 回潮 and hotspots at intake, at their window boundaries."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session, select

from service.auth.models import Role
from service.flows.lifecycle import Lifecycle
from service.notify.models import Alert
from service.places.address import building_key
from service.state import AppState
from service.tickets.models import Ticket
from service.tickets.service import Actor
from tests.conftest import receive

T0 = dt.datetime(2026, 11, 2, 2, tzinfo=dt.UTC)
OFFICE = Actor("平安办", Role.office, "pingan")
DISPATCHER = Actor("派单员", Role.dispatcher)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("上南二村45号302室", "上南二村45号"),
        ("上南二村 45 号", "上南二村45号"),
        ("上海市浦东新区周家渡街道上南二村45号", "上南二村45号"),
        ("上南二村０４５号", "上南二村45号"),
        ("洪山路123弄5号楼602", "洪山路123弄5号"),
        ("云台大厦2幢1201", "云台大厦2号"),
        ("成山路100号", "成山路100号"),
        ("洪山花苑", "洪山花苑"),
        # an estate ending in 小区 is not a district prefix to strip
        ("齐河小区12号302室", "齐河小区12号"),
        ("浦东新区云莲小区3号楼", "云莲小区3号"),
        ("黄浦区上南路3855弄12号", "上南路3855弄12号"),
        ("上南路近昌里路口", None),
        ("", None),
    ],
)
def test_building_key(address: str, key: str | None) -> None:
    assert building_key(address) == key


def _new(state: AppState, key: str, when: dt.datetime, address: str, text: str) -> Ticket:
    ticket: Ticket = receive(state, key, when, text, address=address)
    return ticket


RENT = [
    "{}有二房东按床位出租，住了十几个人，要求查处。",
    "我家楼下{}被隔成好多小间，住满了人，天天吵。",
    "反映{}群租问题，上下铺住了很多外地务工人员。",
    "{}一套房子住了二十多人，按床位收钱，消防隐患大。",
]


def test_similar_ticket_at_same_building_is_a_suspected_duplicate(state: AppState) -> None:
    first = _new(state, "D1", T0, "上南二村45号302室", RENT[0].format("上南二村45号302室"))
    again = _new(state, "D2", T0 + dt.timedelta(hours=71), "上南二村 45 号", RENT[0].format("上南二村45号"))
    assert again.duplicate_of_id == first.id and again.state == "pending_review"
    assert any("疑似重复" in r for r in again.review_reasons)
    _new(state, "E1", T0, "上南五村7号", RENT[0].format("上南五村7号"))
    late = _new(state, "E2", T0 + dt.timedelta(hours=73), "上南五村7号", RENT[0].format("上南五村7号"))
    assert late.duplicate_of_id is None  # outside the 72-hour window
    other = _new(state, "D4", T0 + dt.timedelta(hours=1), "上南二村46号", RENT[0].format("上南二村46号"))
    assert other.duplicate_of_id is None  # another building


def test_merge_and_split(state: AppState) -> None:
    first = _new(state, "M1", T0, "德韵园8号", RENT[0].format("德韵园8号"))
    dup = _new(state, "M2", T0 + dt.timedelta(hours=1), "德韵园8号", RENT[0].format("德韵园8号"))
    not_dup = _new(state, "M3", T0 + dt.timedelta(hours=2), "德韵园8号", RENT[0].format("德韵园8号"))
    assert dup.id and not_dup.id and first.id
    with Session(state.engine, expire_on_commit=False) as s:
        life = Lifecycle(session=s, rules=state.rules, policy=state.policy, now=T0 + dt.timedelta(hours=3))
        merged = life.perform(ticket_id=dup.id, action="merge", actor=DISPATCHER, body={"into_id": first.id})
        split = life.perform(ticket_id=not_dup.id, action="split", actor=DISPATCHER, body={})
    assert merged.state == "cancelled" and merged.merged_into_id == first.id
    assert split.state == "dispatched" and split.duplicate_of_id is None


def test_three_tickets_in_thirty_days_make_a_hotspot(state: AppState) -> None:
    a = _new(state, "H1", T0, "洪山花苑12号", RENT[1].format("洪山花苑12号"))
    b = _new(state, "H2", T0 + dt.timedelta(days=10), "洪山花苑12号", RENT[2].format("洪山花苑12号"))
    c = _new(state, "H3", T0 + dt.timedelta(days=29, hours=23), "洪山花苑12号", RENT[3].format("洪山花苑12号"))
    assert not a.hotspot and not b.hotspot and c.hotspot
    assert "30 天内同楼栋同类工单 3 件" in (c.hotspot_reason or "")
    far = _new(state, "H4", T0 + dt.timedelta(days=45), "洪山花苑12号", RENT[0].format("洪山花苑12号"))
    assert not far.hotspot  # H1 and H2 have left the 30-day window: H3 and H4 are only two
    with Session(state.engine) as s:
        alerts = s.exec(select(Alert).where(Alert.kind == "hotspot")).all()
    assert [x.ticket_id for x in alerts] == [c.id]


def test_recurrence_within_ninety_days_of_closure(state: AppState) -> None:
    first = _new(state, "C1", T0, "云台大厦3号", RENT[0].format("云台大厦3号"))
    assert first.id is not None
    with Session(state.engine, expire_on_commit=False) as s:
        life = Lifecycle(session=s, rules=state.rules, policy=state.policy, now=T0 + dt.timedelta(days=1))
        if first.state == "pending_review":
            life.perform(ticket_id=first.id, action="confirm", actor=DISPATCHER, body={})
        life.perform(ticket_id=first.id, action="accept", actor=OFFICE, body={})
        life.perform(ticket_id=first.id, action="resolve", actor=OFFICE, body={"result": "实际解决", "note": "已清退"})
    back = _new(state, "C2", T0 + dt.timedelta(days=90), "云台大厦3号", RENT[1].format("云台大厦3号"))
    assert back.recurrence and back.hotspot and "回潮" in (back.hotspot_reason or "")
    later = _new(state, "C3", T0 + dt.timedelta(days=92), "云台大厦3号 ", "云台大厦3号楼道里有人飞线给电瓶车充电")
    assert not later.recurrence  # another category
