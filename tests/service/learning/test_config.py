"""The rules file's `learning:` section: defaults, validation with line numbers, and the rest still loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier.config import RulesError
from service.learning.config import LearningRules, load_learning, load_rules
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
    rules = load_rules(ROOT / "rules.yaml")
    assert load_learning(ROOT / "rules.yaml", rules) == LearningRules()
    bare = _rules_with(tmp_path, "")  # no section at all: the same defaults
    assert load_learning(bare, load_rules(bare)) == LearningRules()


def test_section_is_read_and_the_classifier_part_still_loads(tmp_path: Path) -> None:
    path = _rules_with(tmp_path, "learning:\n  max_category_drop: 0.1\n  holdout_days: 7\n")
    rules = load_rules(path)
    assert load_learning(path, rules) == LearningRules(max_category_drop=0.1, holdout_days=7)


def test_errors_name_the_line(tmp_path: Path) -> None:
    lines = len(_shipped_without_section().splitlines())
    path = _rules_with(tmp_path, "learning:\n  max_category_drop: 2\n  surprise: 1\n")
    with pytest.raises(RulesError) as caught:
        load_learning(path, load_rules(path))
    message = str(caught.value)
    assert f"第 {lines + 2} 行 learning.max_category_drop" in message
    assert f"第 {lines + 3} 行 learning.surprise" in message
    path = _rules_with(tmp_path, "learning:\n  misroute_reasons: [不想办]\n")
    with pytest.raises(RulesError, match=f"第 {lines + 2} 行 learning.misroute_reasons"):
        load_learning(path, load_rules(path))


def test_a_classifier_error_keeps_its_line_after_the_section(tmp_path: Path) -> None:
    text = _shipped_without_section()
    path = tmp_path / "rules.yaml"
    path.write_text("learning:\n  holdout_days: 3\n" + text.replace("version: 1", "version: 7", 1), encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if row.startswith("version:")) + 2
    with pytest.raises(RulesError, match=f"第 {line} 行 version"):
        load_rules(path)
