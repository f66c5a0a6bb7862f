"""The rules file's `learning:` section, parsed and validated on the service side.

The classifier's rules schema refuses unknown sections and belongs to the classifier, so the service reads this
section itself (reusing the classifier's line-number helpers) and hands the classifier the file with the section
blanked out line for line: every line number in either part's errors stays the file's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from classifier.config import Rules, RulesError, _format_errors, _line_of, _plain, parse_rules

SECTION = "learning"


class LearningRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # a challenger is promoted only if no category's F1 (on an evaluation set where it has at least
    # `min_category_support` examples) falls by more than this
    max_category_drop: float = Field(default=0.05, ge=0, le=1)
    min_category_support: int = Field(default=5, ge=1)
    # and only if its overall score beats the champion's by more than this
    min_gain: float = Field(default=0.0, ge=0, le=1)
    # the newest corrections (this many days) are held out of training to judge both models on recent tickets
    holdout_days: int = Field(default=14, ge=1, le=365)
    # return reasons that say the ticket went to the wrong office (a routing correction)
    misroute_reasons: tuple[str, ...] = ("职能不符",)


class _Document(BaseModel):
    model_config = ConfigDict(extra="ignore")
    learning: LearningRules = LearningRules()


def _section_lines(raw: Any, text: str) -> tuple[int, int] | None:
    """0-based [start, end) lines of the top-level `learning:` block, or None."""
    if SECTION not in raw:
        return None
    keys = list(raw)
    start = raw.lc.key(SECTION)[0]
    later = [raw.lc.key(k)[0] for k in keys if raw.lc.key(k)[0] > start]
    return start, min(later) if later else len(text.splitlines())


def _load(path: Path) -> tuple[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RulesError(f"找不到规则文件 {path}（设置 HOTLINE_RULES 指向 rules.yaml）") from exc
    except UnicodeDecodeError as exc:
        raise RulesError(f"规则文件 {path} 不是 UTF-8 编码") from exc
    try:
        raw = YAML(typ="rt").load(text)
    except YAMLError:
        return text, None  # the classifier's parser reports the syntax error with its line
    return text, raw


def load_rules(path: str | Path) -> Rules:
    """The classifier's rules from a file that may also hold a `learning:` section."""
    file = Path(path)
    text, raw = _load(file)
    span = _section_lines(raw, text) if isinstance(raw, dict) else None
    if span is not None:
        lines = text.splitlines(keepends=True)
        text = "".join("\n" if span[0] <= i < span[1] else line for i, line in enumerate(lines))
    return parse_rules(text, path=file)


def load_learning(path: str | Path, rules: Rules) -> LearningRules:
    """The `learning:` section (defaults when absent); raises RulesError naming the line of each problem."""
    file = Path(path)
    _, raw = _load(file)
    if not isinstance(raw, dict):
        return LearningRules()
    try:
        learning = _Document.model_validate({SECTION: _plain(raw[SECTION])} if SECTION in raw else {}).learning
    except ValidationError as exc:
        raise RulesError(_format_errors(file, raw, exc)) from exc
    unknown = [r for r in learning.misroute_reasons if r not in rules.lifecycle.return_reasons]
    if unknown:
        line = _line_of(raw, (SECTION, "misroute_reasons"))
        raise RulesError(
            f"规则文件 {file} 校验失败：\n  {f'第 {line} 行 ' if line else ''}learning.misroute_reasons: "
            f"{unknown} 不在 lifecycle.return_reasons 中"
        )
    return learning
