"""Rules file validation: errors name the line and the entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier.config import RulesError, load_rules, parse_rules

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "rules.yaml").read_text(encoding="utf-8")


def _line_of(fragment: str) -> int:
    return TEXT[: TEXT.index(fragment)].count("\n") + 1


def test_shipped_rules_files_are_valid() -> None:
    street = load_rules(ROOT / "rules.yaml")
    district = load_rules(ROOT / "examples" / "district-rules.yaml")
    assert street.category_office("group_renting") == "pingan"
    assert district.office_name(district.category_office("group_renting")) == "区房管局"
    assert district.categories["urban_rural"].refine == "street" and "urban_rural" not in district.second_level()
    assert "上南二村" in street.user_words()


def test_unknown_office_points_at_its_line() -> None:
    bad = TEXT.replace("office: pingan", "office: nowhere", 1)
    with pytest.raises(RulesError) as err:
        parse_rules(bad)
    assert f"第 {_line_of('office: pingan')} 行" in str(err.value)
    assert "categories.group_renting.office" in str(err.value)


def test_bad_weight_points_at_its_line() -> None:
    bad = TEXT.replace("weight: 0.8", "weight: -1", 1)
    with pytest.raises(RulesError) as err:
        parse_rules(bad)
    assert f"第 {_line_of('weight: 0.8')} 行" in str(err.value)
    assert "weight" in str(err.value)


def test_yaml_syntax_error_and_missing_file() -> None:
    with pytest.raises(RulesError, match="YAML 语法错误"):
        parse_rules("version: 1\ncategories: [unclosed\n")
    with pytest.raises(RulesError, match="找不到规则文件"):
        load_rules(ROOT / "nope.yaml")


def test_unknown_key_and_bad_category_clock_refused() -> None:
    with pytest.raises(RulesError, match="typo"):
        parse_rules(TEXT.replace("profile:", "typo: 1\nprofile:", 1))
    bad = TEXT.replace("first_action_hours: 24", "first_action_hours: 24\n    resolve: {working_days: 1, hours: 2}", 1)
    with pytest.raises(RulesError, match="working_days 或 hours"):
        parse_rules(bad)


def test_service_sections_are_taken_unread() -> None:
    """The classifier's commands accept the whole file; the service validates its own sections (tests/service)."""
    rules = parse_rules(TEXT.replace("window_hours: 72", "window_hours: -5", 1))
    assert rules.duplicates == {"window_hours": -5, "similarity": 0.35}


def test_invalid_boilerplate_regex_refused() -> None:
    bad = TEXT.replace("  boilerplate:\n", "  boilerplate:\n    - '(unclosed'\n", 1)
    with pytest.raises(RulesError, match="正则表达式无效"):
        parse_rules(bad)
