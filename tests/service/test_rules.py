"""The service's rules: its sections are validated with the file's own line numbers, and the learning section's
defaults hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier.config import RulesError
from service.rules import LearningRules, load_rules, parse_rules
from tests.conftest import ROOT


def _shipped_without_section() -> str:
    """The shipped rules file with its own `learning:` block (and that block's comment line) taken out."""
    kept: list[str] = []
    inside = False
    for line in (ROOT / "rules.yaml").read_text(encoding="utf-8").splitlines():
        if line.startswith("learning:"):
            inside = True
            if kept and kept[-1].startswith("#"):
                kept.pop()
            continue
        if inside and line[:1] not in (" ", ""):
            inside = False
        if not inside:
            kept.append(line)
    return "\n".join(kept).rstrip("\n") + "\n"


def _rules_with(tmp_path: Path, section: str) -> Path:
    text = _shipped_without_section() + section
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_section_holds_the_defaults(tmp_path: Path) -> None:
    assert load_rules(ROOT / "rules.yaml").learning == LearningRules()
    bare = _rules_with(tmp_path, "")  # no section at all: the same defaults
    assert load_rules(bare).learning == LearningRules()


def test_section_is_read_and_the_classifier_part_still_loads(tmp_path: Path) -> None:
    path = _rules_with(tmp_path, "learning:\n  max_category_drop: 0.1\n  holdout_days: 7\n")
    rules = load_rules(path)
    assert rules.learning == LearningRules(max_category_drop=0.1, holdout_days=7)
    assert rules.category_office("group_renting") == "pingan"


def test_errors_name_the_line(tmp_path: Path) -> None:
    lines = len(_shipped_without_section().splitlines())
    path = _rules_with(tmp_path, "learning:\n  max_category_drop: 2\n  surprise: 1\n")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert f"第 {lines + 2} 行 learning.max_category_drop" in message
    assert f"第 {lines + 3} 行 learning.surprise" in message
    path = _rules_with(tmp_path, "learning:\n  misroute_reasons: [不想办]\n")
    with pytest.raises(RulesError, match=f"第 {lines + 2} 行 learning.misroute_reasons"):
        load_rules(path)


def test_a_classifier_error_keeps_its_line_after_the_section(tmp_path: Path) -> None:
    text = _shipped_without_section()
    path = tmp_path / "rules.yaml"
    path.write_text("learning:\n  holdout_days: 3\n" + text.replace("version: 1", "version: 7", 1), encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if row.startswith("version:")) + 2
    with pytest.raises(RulesError, match=f"第 {line} 行 version"):
        load_rules(path)


TEXT = (ROOT / "rules.yaml").read_text(encoding="utf-8")


def _line(fragment: str) -> int:
    return TEXT[: TEXT.index(fragment)].count("\n") + 1


@pytest.mark.parametrize(
    ("fragment", "bad", "where", "why"),
    [
        (
            "first_contact: {working_days: 1}",
            "first_contact: {working_days: 1, hours: 2}",
            "deadlines.first_contact",
            "working_days 或 hours",
        ),
        ("default_kind: 投诉", "default_kind: 表扬", "deadlines", "default_kind「表扬」不在 resolve_by_kind 中"),
        ("window_hours: 72", "window_hours: -5", "duplicates.window_hours", "greater than 0"),
        ('push_time: "08:30"', 'push_time: "25:00"', "reports.push_time", "time"),
        ("window_hours: 72", "windw_hours: 72", "duplicates.windw_hours", "Extra inputs"),
        ('alert_window: {start: "08:30"', 'alert_window: {start: "18:30"', "notify.alert_window", "必须早于结束"),
        ("batch_max: 20", "batch_max: 0", "notify.batch_max", "greater than or equal to 1"),
    ],
)
def test_service_section_errors_name_line_and_entry(fragment: str, bad: str, where: str, why: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(TEXT.replace(fragment, bad, 1))
    message = str(caught.value)
    # an error about a whole section points at the section's key
    at = "\n" + where + ":" if "." not in where else fragment
    assert f"第 {_line(at) + (1 if at.startswith(chr(10)) else 0)} 行 {where}" in message
    assert why in message


def test_service_rules_are_the_classifier_rules_and_more() -> None:
    rules = load_rules(ROOT / "rules.yaml")
    district = load_rules(ROOT / "examples" / "district-rules.yaml")
    assert rules.deadlines.resolve_by_kind[rules.deadlines.default_kind].working_days is not None
    assert rules.reports.push_time.isoformat() == "08:30:00"
    assert rules.category_office("group_renting") == "pingan"
    assert district.lifecycle.return_reasons
