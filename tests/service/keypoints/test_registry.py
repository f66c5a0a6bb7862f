"""Reading a key point file: every problem listed at once, naming row and column; the shipped example is valid; the
rules' key_points section is checked against the categories with its line."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from classifier.config import RulesError
from service.keypoints.registry import COLUMNS, RegistryError, parse, read_rows
from service.rules import ServiceRules, parse_rules
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "keypoints.csv"
HEADER = list(COLUMNS)


def _types(rules: ServiceRules) -> dict[str, str]:
    return {code: rules.categories[code].name for code in rules.key_points.types}


def _parse(rules: ServiceRules, *rows: list[str], header: list[str] = HEADER) -> object:
    return parse([header, *rows], types=_types(rules), construction=rules.key_points.construction_type)


def _row(**cells: str) -> list[str]:
    base = {"编号": "1", "地址": "上南二村45号", "问题类型": "违法建筑", "性质": "存量", "面积": "40"}
    base.update(cells)
    return [base.get(c, "") for c in COLUMNS]


def test_the_shipped_example_is_valid(rules: ServiceRules) -> None:
    points = parse(read_rows(EXAMPLE), types=_types(rules), construction=rules.key_points.construction_type)
    by_code = {p.code: p for p in points.points}
    assert len(by_code) == 8 and points.unlinked() == []
    twelve = by_code["12"]
    assert (twelve.building_key, twelve.category, twelve.kind, twelve.status) == (
        "上南二村45号",
        "illegal_construction",
        "existing",
        "working",
    )
    assert by_code["3"].cleared_on == dt.date(2026, 5, 20) and by_code["3"].demolished_m2 == 120
    assert by_code["8"].category == "street_vending"  # a code works as well as the Chinese name
    assert by_code["21"].status is None  # blank: a re-import keeps the stored status


def test_every_problem_is_listed_with_its_row_and_column(rules: ServiceRules) -> None:
    with pytest.raises(RegistryError) as caught:
        _parse(
            rules,
            _row(),
            _row(编号="1"),  # duplicate
            _row(编号="2", 问题类型="乱扔烟头"),
            _row(编号="3", 性质="老的"),
            _row(编号="4", 面积="很大"),
            _row(编号="5", 面积=""),
            _row(编号="6", 性质="新增"),
            _row(编号="7", 整治期限="2026-02-30"),
            _row(编号="8", 状态="已整治"),
            _row(编号="9", 状态="完成了"),
            _row(编号="10", 完成日期="2026-03-01"),
            _row(编号="11", 地址=""),
            _row(编号="12", 备注="夹带\x00字符"),
        )
    problems = caught.value.problems
    expected = [
        "第 3 行 编号：「1」与第 2 行重复",
        "第 4 行 问题类型：「乱扔烟头」不是可用的类型",
        "第 5 行 性质：「老的」只能是 存量 或 新增",
        "第 6 行 面积：「很大」不是",
        "第 7 行 面积：违建点位须填写违建面积",
        "第 8 行 发现日期：新增点位须填写发现日期",
        "第 9 行 整治期限：「2026-02-30」不是日期",
        "第 10 行 拆除面积：违建点位已整治的须填写实际拆除面积",
        "第 10 行 完成日期：已整治的点位须填写完成日期",
        "第 11 行 状态：「完成了」只能是",
        "第 12 行 完成日期：只有状态为已整治的点位才填完成日期",
        "第 13 行 地址：不能为空",
        "第 14 行 备注：不能包含控制字符（U+0000）",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)
    assert len(problems) == len(expected)


def test_header_problems_stop_before_the_rows(rules: ServiceRules) -> None:
    header = [c for c in HEADER if c != "性质"] + ["负责人"]
    with pytest.raises(RegistryError) as caught:
        _parse(rules, _row(), header=header)
    assert caught.value.problems == [
        "第 1 行：缺少列「性质」",
        f"第 1 行：不认识的列「负责人」（可用列：{'、'.join(COLUMNS)}）",
    ]


def test_dates_and_areas_in_the_forms_people_type(rules: ServiceRules) -> None:
    points = _parse(
        rules,
        _row(面积="1,250.5㎡", 发现日期="2026年3月1日", 整治期限="2026/6/30 00:00:00", 性质="新增"),
    )
    (point,) = points.points  # type: ignore[attr-defined]
    assert point.area_m2 == 1250.5 and point.kind == "new"
    assert (point.found_at, point.target_date) == (dt.date(2026, 3, 1), dt.date(2026, 6, 30))


def test_a_type_outside_the_rules_section_is_refused(rules: ServiceRules) -> None:
    with pytest.raises(RegistryError, match="第 2 行 问题类型：「停车秩序」不是可用的类型"):
        _parse(rules, _row(问题类型="停车秩序"))  # parking is a category, but not a key point type
    off = rules.model_copy(update={"key_points": rules.key_points.model_copy(update={"types": ()})})
    with pytest.raises(RegistryError, match=re.escape("key_points.types 为空")):
        _parse(off, _row())


def _line(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


def test_the_rules_section_is_checked_against_the_categories() -> None:
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    bad = text.replace("types: [illegal_construction, group_renting", "types: [illegal_construction, renting", 1)
    with pytest.raises(RulesError) as caught:
        parse_rules(bad)
    assert f"第 {_line(bad, 'types: [illegal')} 行 key_points.types.1: 「renting」不是已定义的分类" in str(caught.value)
    bad = text.replace("construction_type: illegal_construction", "construction_type: garbage_x", 1)
    with pytest.raises(
        RulesError, match=re.escape("key_points.construction_type: 「garbage_x」不在 key_points.types 中")
    ):
        parse_rules(bad)
    bad = text.replace("yearly_demolition_target_m2: 3000", "yearly_demolition_target_m2: -1", 1)
    with pytest.raises(
        RulesError, match=f"第 {_line(bad, 'yearly_demolition_target_m2: -1')} 行 key_points.yearly_demolition"
    ):
        parse_rules(bad)


def test_the_shipped_rules_and_the_district_example_load(rules: ServiceRules) -> None:
    assert rules.key_points.yearly_demolition_target_m2 == 3000
    assert rules.key_points.construction_type in rules.key_points.types
    district = parse_rules((ROOT / "examples" / "district-rules.yaml").read_text(encoding="utf-8"))
    assert district.key_points.types == ()  # no section: no key points, and nothing to check


def test_an_xlsx_file_reads_like_the_csv(rules: ServiceRules, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append(["12", "上南二村45号", "违法建筑", "存量", 46, dt.datetime(2025, 11, 2), dt.datetime(2026, 8, 31)])
    path = tmp_path / "points.xlsx"
    book.save(path)
    (point,) = parse(read_rows(path), types=_types(rules), construction="illegal_construction").points
    assert (point.code, point.area_m2, point.found_at) == ("12", 46.0, dt.date(2025, 11, 2))
