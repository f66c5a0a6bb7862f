"""The rules file (`rules.yaml`): schema, loading and validation with line numbers.

Every domain constant (categories, offices, keywords, clocks, holidays, places) lives in the rules file. This module
holds the schema of what the classifier reads (offices, categories, keywords, places) and the loader with its
line-numbered errors; the service extends the schema with its own sections in `service/rules.py`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError


class RulesError(ValueError):
    """The rules file is missing or invalid; the message names the file, line and entry."""


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo in the rules file must not be ignored); values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Office(StrictModel):
    name: str = Field(min_length=1)


class KeywordRule(StrictModel):
    """Matches when any `any` word occurs (or `any` is empty), all `all` words occur and no `none` word occurs."""

    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    weight: float = Field(default=1.0, gt=0, le=10)
    override: bool = False

    @model_validator(mode="after")
    def _needs_words(self) -> KeywordRule:
        if not self.any and not self.all:
            raise ValueError("规则至少需要 any 或 all 关键词")
        for word in (*self.any, *self.all, *self.none):
            if not word.strip():
                raise ValueError("关键词不能为空")
        return self


class Category(StrictModel):
    name: str = Field(min_length=1)
    office: str
    # other offices that share the work (the plan names several lead units): shown with the decision
    co_handlers: tuple[str, ...] = ()
    # a sub-model (see `submodels`) that refines this category's tickets into finer categories
    refine: str | None = None
    rules: tuple[KeywordRule, ...] = ()
    first_action_hours: float | None = Field(default=None, gt=0)
    clearance: bool = False
    first_contact: Clock | None = None
    resolve: Clock | None = None


class Clock(StrictModel):
    """A time allowance: either working days (official calendar) or plain hours."""

    working_days: float | None = Field(default=None, gt=0, le=60)
    hours: float | None = Field(default=None, gt=0, le=24 * 60)

    @model_validator(mode="after")
    def _exactly_one(self) -> Clock:
        if (self.working_days is None) == (self.hours is None):
            raise ValueError("时限必须且只能给出 working_days 或 hours 之一")
        return self


Category.model_rebuild()


class ClassifierSettings(StrictModel):
    review_threshold: float = Field(default=0.55, ge=0, le=1)
    rule_boost: float = Field(default=1.2, ge=0, le=10)
    override_confidence: float = Field(default=0.9, ge=0, le=1)
    # an override phrase does not decide when the model gives another category at least this probability
    override_model_veto: float = Field(default=0.5, ge=0, le=1)
    review_on_disagreement: bool = True
    # The disagreement flag is raised only for real doubt: the keyword rules' evidence for another category than the
    # model's is strong — an override phrase, or a keyword score at least this much above the score of the model's
    # category (a tie or a weaker rule is no evidence against the model) …
    disagreement_rule_margin: float = Field(default=0.6, gt=0, le=10)
    # … and after combining, the decided category leads the other side (the model's category when the rules decided,
    # the rules' category otherwise) by less than this probability: a keyword does not put a confident model in doubt.
    # Tickets below review_threshold are not flagged (they are reviewed for low confidence anyway).
    disagreement_max_lead: float = Field(default=0.8, gt=0, le=1)
    # the category used when nothing else fits (rules-only evaluation, failed classification)
    fallback_category: str = "other"
    # operator boilerplate removed before features are extracted ("市民来电反映：" …), as regular expressions
    boilerplate: tuple[str, ...] = ()
    # Auto-dispatch guarantee: `hotline train --real` picks the dispatch threshold on the calib split so that
    # tickets dispatched without review go to the right office with at least this precision, with this confidence
    # (fixed-sequence test with an exact binomial bound). None: no guarantee, only `review_threshold` applies.
    auto_dispatch_precision: float | None = Field(default=None, gt=0.5, lt=1)
    auto_dispatch_confidence: float = Field(default=0.9, ge=0.5, lt=1)
    # out of scope: at most this share of ordinary tickets (conformal quantile of the known-word share) are sent
    # to review as unlike anything the model knows
    out_of_scope_alpha: float = Field(default=0.01, ge=0, lt=0.5)
    # per category: "always" sends every ticket of that category to the dispatcher's queue; "auto" (default) lets
    # confident ones through
    category_review: dict[str, Literal["always", "auto"]] = {}


class Submodel(StrictModel):
    """A second-level model: for tickets of the categories that name it in `refine`, it decides between finer
    categories (e.g. the street taxonomy under a district's 城乡建设)."""

    # the model directory, relative to the working directory like HOTLINE_MODEL
    model: str = Field(min_length=1)
    # the sub-model's classes that become categories of this file (defined in `categories`, with their office);
    # its other classes (e.g. "other") keep the first-level category
    categories: tuple[str, ...] = Field(min_length=1)


class Urgency(StrictModel):
    keywords: tuple[str, ...] = ()


class Places(StrictModel):
    grids: dict[str, tuple[str, ...]] = {}
    extra_words: tuple[str, ...] = ()


class Rules(StrictModel):
    version: Literal[1]
    profile: str
    timezone: str = "Asia/Shanghai"
    offices: dict[str, Office] = Field(min_length=1)
    categories: dict[str, Category] = Field(min_length=2)
    classifier: ClassifierSettings = ClassifierSettings()
    urgency: Urgency = Urgency()
    places: Places = Places()
    submodels: dict[str, Submodel] = {}
    # The service's sections: the service reads and validates them itself (service/rules.py, with line numbers);
    # the classifier takes them unread so that its commands accept the same file.
    deadlines: Any = None
    calendar: Any = None
    lifecycle: Any = None
    hotspots: Any = None
    duplicates: Any = None
    reports: Any = None
    notify: Any = None
    intake: Any = None
    retention: Any = None
    learning: Any = None
    evidence: Any = None
    key_points: Any = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"未知时区「{value}」") from exc
        return value

    def cross_check(self) -> list[tuple[tuple[str, ...], str]]:
        """References between sections: (location, message) for each dangling one."""
        problems: list[tuple[tuple[str, ...], str]] = []
        for code, category in self.categories.items():
            if category.office not in self.offices:
                msg = f"承办科室「{category.office}」未在 offices 中定义"
                problems.append((("categories", code, "office"), msg))
        if self.classifier.fallback_category not in self.categories:
            msg = f"fallback_category「{self.classifier.fallback_category}」不是已定义的分类"
            problems.append((("classifier", "fallback_category"), msg))
        problems.extend(self._check_submodels())
        for code in self.classifier.category_review:
            if code not in self.categories:
                problems.append((("classifier", "category_review", code), f"「{code}」不是已定义的分类"))
        for i, pattern in enumerate(self.classifier.boilerplate):
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append((("classifier", "boilerplate", str(i)), f"正则表达式无效: {exc}"))
        return problems

    def _check_submodels(self) -> list[tuple[tuple[str, ...], str]]:
        problems: list[tuple[tuple[str, ...], str]] = []
        second = self.second_level()
        for code, category in self.categories.items():
            for i, office in enumerate(category.co_handlers):
                if office not in self.offices:
                    problems.append(
                        (("categories", code, "co_handlers", str(i)), f"协办单位「{office}」未在 offices 中定义")
                    )
            if category.refine is None:
                continue
            if category.refine not in self.submodels:
                problems.append((("categories", code, "refine"), f"子模型「{category.refine}」未在 submodels 中定义"))
            if code in second:
                problems.append((("categories", code, "refine"), "第二级分类不能再指定子模型"))
        for name, sub in self.submodels.items():
            for i, code in enumerate(sub.categories):
                if code not in self.categories:
                    problems.append((("submodels", name, "categories", str(i)), f"「{code}」不是已定义的分类"))
            if not any(c.refine == name for c in self.categories.values()):
                problems.append((("submodels", name), f"没有分类以 refine: {name} 使用这个子模型"))
        if self.classifier.fallback_category in second:
            msg = "fallback_category 必须是第一级分类"
            problems.append((("classifier", "fallback_category"), msg))
        return problems

    def second_level(self) -> set[str]:
        """Categories that only a sub-model decides."""
        return {code for sub in self.submodels.values() for code in sub.categories}

    def first_level(self) -> Rules:
        """This file as the first-level model sees it: without the sub-models' categories."""
        second = self.second_level()
        if not second:
            return self
        kept = {code: cat for code, cat in self.categories.items() if code not in second}
        return self.model_copy(update={"categories": kept})

    def office_name(self, code: str) -> str:
        return self.offices[code].name

    def category_office(self, category: str) -> str:
        return self.categories[category].office

    def user_words(self) -> list[str]:
        """Words the tokenizer must keep whole: keywords, road and estate names."""
        words: set[str] = set(self.places.extra_words)
        for names in self.places.grids.values():
            words.update(names)
        words.update(self.places.grids)
        for category in self.categories.values():
            words.add(category.name)
            for rule in category.rules:
                words.update(rule.any)
                words.update(rule.all)
        words.update(self.urgency.keywords)
        return sorted(w for w in words if len(w) > 1)


R = TypeVar("R", bound=Rules)


def _line_of(node: Any, loc: tuple[int | str, ...]) -> int | None:
    """Best line number (1-based) for a pydantic error location inside a ruamel round-trip tree."""
    line: int | None = None
    for key in loc:
        lc = getattr(node, "lc", None)
        if lc is None:
            break
        try:
            if isinstance(node, dict):
                line = lc.key(key)[0] + 1
                node = node[key]
            elif isinstance(node, list) and str(key).isdigit():
                line = lc.item(int(key))[0] + 1
                node = node[int(key)]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    return line


def _format_errors(path: Path, raw: Any, error: ValidationError) -> str:
    lines = [f"规则文件 {path} 校验失败："]
    for item in error.errors():
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-after")))
        where = ".".join(str(p) for p in loc) or "(根)"
        line = _line_of(raw, loc)
        at = f"第 {line} 行 " if line else ""
        lines.append(f"  {at}{where}: {item['msg']}")
    return "\n".join(lines)


def parse_rules(text: str, *, path: Path = Path("<string>"), schema: type[R] = Rules) -> R:  # type: ignore[assignment]
    """Parse and validate rules text against `schema`; raises RulesError naming the line of each problem."""
    yaml = YAML(typ="rt")
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else "?"
        raise RulesError(f"规则文件 {path} 第 {line} 行 YAML 语法错误: {exc.problem}") from exc
    if not isinstance(raw, dict):
        raise RulesError(f"规则文件 {path} 必须是一个映射（键: 值）")
    try:
        rules = schema.model_validate(_plain(raw))
    except ValidationError as exc:
        raise RulesError(_format_errors(path, raw, exc)) from exc
    problems = rules.cross_check()
    if problems:
        lines = [f"规则文件 {path} 校验失败："]
        for loc, msg in problems:
            line = _line_of(raw, loc)
            lines.append(f"  {f'第 {line} 行 ' if line else ''}{'.'.join(loc)}: {msg}")
        raise RulesError("\n".join(lines))
    return rules


def _plain(node: Any) -> Any:
    """ruamel containers → plain Python so pydantic sees ordinary types."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_rules(path: str | Path, *, schema: type[R] = Rules) -> R:  # type: ignore[assignment]
    """Load and validate a rules file against `schema` (the service passes its own, wider one)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RulesError(f"找不到规则文件 {file}（设置 HOTLINE_RULES 指向 rules.yaml）") from exc
    except UnicodeDecodeError as exc:
        raise RulesError(f"规则文件 {file} 不是 UTF-8 编码") from exc
    return parse_rules(text, path=file, schema=schema)
