"""Reading the area registry file: the shipped example, and errors that name the row and the column."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from service.areas.models import Level
from service.areas.registry import COLUMNS, RegistryError, parse, read_rows
from service.rules import ServiceRules

ROOT = Path(__file__).resolve().parents[3]
HEADER = list(COLUMNS)


def rows(*lines: str) -> list[list[str]]:
    return [HEADER, *[line.split(",") for line in lines]]


def test_the_shipped_example_covers_the_streets_four_zones_and_the_named_places(rules: ServiceRules) -> None:
    registry = parse(read_rows(ROOT / "examples" / "areas.csv"), zones=rules.places.grids)
    zones = {a.name for a in registry.areas if a.level == Level.zone}
    assert zones == set(rules.places.grids) == {"世博片区", "上南片区", "云莲片区", "齐河片区"}
    names = {p.name for a in registry.areas for p in a.patterns}
    named = {n for places in rules.places.grids.values() for n in places}
    assert named <= names, named - names
    cells = [a for a in registry.areas if a.level == Level.cell]
    assert len(cells) >= 15 and all(a.leader for a in cells)


def test_xlsx_reads_like_csv(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append(
        ["上南片区", "上南二村居民区", "上南二村第1网格", "王军", 13800000021, "李娜、张伟", "上南二村", 1, 40, ""]
    )
    book.save(tmp_path / "areas.xlsx")
    registry = parse(read_rows(tmp_path / "areas.xlsx"))
    cell = registry.areas[-1]
    assert (cell.level, cell.name, cell.parent, cell.leader_phone) == (
        Level.cell,
        "上南二村第1网格",
        "上南二村居民区",
        "13800000021",
    )
    assert cell.members == ["李娜", "张伟"]
    assert (cell.patterns[0].lo, cell.patterns[0].hi) == (1, 40)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["上南片区,,,,,,上南路,9,3,"], "第 2 行 起号/止号：起号 9 大于止号 3"),
        (["上南片区,,,,,,上南路,9,,"], "第 2 行 起号/止号：须同时填写或同时留空"),
        (["上南片区,,,,,,上南路,x,9,"], "第 2 行 起号：「x」不是 1–99999 的整数"),
        (["上南片区,,,,,,上南路,1,9,三"], "第 2 行 单双号：「三」只能是 单、双 或留空"),
        (["上南片区,,网格A,,,,,,,"], "第 2 行 居民区：填了网格就必须填写所属居民区"),
        ([",居民区A,,,,,,,,"], "第 2 行 片区：不能为空"),
        (["火星片区,,,,,,,,,"], "第 2 行 片区：「火星片区」不在规则文件 places.grids 中"),
        (["上南片区,,,,abc,,,,,"], "第 2 行 负责人电话：「abc」只能包含数字、空格、+ 和 -"),
        (
            ["上南片区,A居民区,,,,,,,,", "齐河片区,A居民区,,,,,,,,"],
            "第 3 行 居民区：「A居民区」在第 2 行属于「上南片区」",
        ),
        (
            ["上南片区,A居民区,,张三,,,,,,", "上南片区,A居民区,,李四,,,,,,"],
            "第 3 行 负责人：「李四」与第 2 行的「张三」不一致",
        ),
        (
            ["上南片区,A居民区,G1,,,,上南路,1,100,", "上南片区,A居民区,G2,,,,上南路,51,60,"],
            "第 3 行 道路或小区：「上南路」的范围与第 2 行（G1）重叠",
        ),
        (
            ["上南片区,A居民区,G1,,,,德韵园,,,", "上南片区,B居民区,G2,,,,德韵园,,,"],
            "第 3 行 道路或小区：「德韵园」的范围与第 2 行",
        ),
    ],
)
def test_a_bad_row_is_named_with_its_column(lines: list[str], expected: str, rules: ServiceRules) -> None:
    with pytest.raises(RegistryError) as caught:
        parse(rows(*lines), zones=rules.places.grids)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_odd_and_even_sides_of_one_road_do_not_overlap(rules: ServiceRules) -> None:
    registry = parse(
        rows("齐河片区,洪山居民区,单号,,,,洪山路,1,999,单", "齐河片区,洪山居民区,双号,,,,洪山路,2,998,双"),
        zones=rules.places.grids,
    )
    assert [p.parity for a in registry.areas for p in a.patterns] == ["odd", "even"]


def test_every_problem_is_listed_at_once_and_an_unknown_column_is_named() -> None:
    with pytest.raises(RegistryError) as caught:
        parse([[*HEADER, "备注"], ["上南片区", *[""] * 9, "x"]])
    assert caught.value.problems == [f"第 1 行：不认识的列「备注」（可用列：{'、'.join(COLUMNS)}）"]
    with pytest.raises(RegistryError) as caught:
        parse(rows("上南片区,,,,,,上南路,9,3,", ",,,,,,,,,", "上南片区,,网格,,,,,,,"))
    assert [p[:7] for p in caught.value.problems] == ["第 2 行 起", "第 4 行 居"]
