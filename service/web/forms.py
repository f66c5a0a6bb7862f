"""The lifecycle action forms of the pages: field names in Chinese, validation errors in Chinese, typed text kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from service.errors import DomainError, InvalidInputError

# what each field is called on the form of each action (the same `note` is 办理情况 on 办结 and 作废原因 on 作废)
_NOTE = {
    "resolve": "办理情况",
    "cancel": "作废原因",
    "reopen": "重办原因",
    "reroute": "改派理由",
    "return": "补充说明",
}
_FIELDS = {
    "office": "承办科室",
    "category": "分类",
    "into_id": "主工单编号",
    "result": "办结结果",
    "days": "延期天数",
    "satisfaction": "满意度",
}
_REASON = {"return": "退单理由", "request-extension": "延期理由"}
FORM_FIELDS = ("note", "office", "category", "into_id", "result", "reason", "days", "satisfaction", "area_id")
ACTION_BUTTONS = {
    "confirm": "确认派单",
    "reroute": "改派",
    "merge": "合并",
    "split": "不是重复，派单",
    "cancel": "作废",
    "approve-extension": "批准延期",
    "refuse-extension": "驳回延期",
    "accept": "签收",
    "contact": "记录先行联系",
    "resolve": "办结",
    "return": "退单",
    "request-extension": "申请延期",
    "follow-up": "记录回访",
    "reopen": "重办",
    "approve-resolution": "审核通过",
    "reject-resolution": "驳回办结",
}


def field_label(action: str, name: str) -> str:
    if name == "note":
        return _NOTE.get(action, "备注")
    if name == "reason":
        return _REASON.get(action, "理由")
    return _FIELDS.get(name, name)


@dataclass
class FormProblem:
    """Why a submitted form was refused: a message per field (or for the whole form), and what was typed."""

    action: str
    ticket_id: int
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    general: str = ""

    def summary(self) -> str:
        parts = [f"{field_label(self.action, k)}：{v}" for k, v in self.errors.items()]
        what = "；".join(parts + ([self.general] if self.general else []))
        return f"工单 #{self.ticket_id}「{ACTION_BUTTONS.get(self.action, self.action)}」未完成：{what}"


def _chars(n: Any) -> str:
    return f"{n} 个字"


def zh_message(error: dict[str, Any], typed: str | None) -> str:
    """One pydantic error in the words a dispatcher uses."""
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "missing":
        return "必填"
    if kind == "string_too_short":
        return "不能为空" if ctx.get("min_length", 1) <= 1 else f"至少 {_chars(ctx['min_length'])}"
    if kind == "string_too_long":
        now = f"（现有 {len(typed)} 个字）" if typed is not None else ""
        return f"不能超过 {_chars(ctx.get('max_length'))}{now}"
    if kind in ("int_parsing", "float_parsing", "int_type", "float_type", "int_from_float"):
        return "请输入数字"
    if kind in ("greater_than", "greater_than_equal"):
        return f"必须大于{'或等于' if kind.endswith('equal') else ''} {ctx.get('gt', ctx.get('ge'))}"
    if kind in ("less_than", "less_than_equal"):
        return f"不能超过 {ctx.get('le', ctx.get('lt'))}"
    if kind == "extra_forbidden":
        return "该操作没有这一项"
    return "格式不正确"


def parse_action(
    *, action: str, ticket_id: int, model: type[BaseModel], values: dict[str, str]
) -> BaseModel | FormProblem:
    """The typed body of an action from its form fields, or a problem that names the field and keeps the text."""
    body: dict[str, Any] = {k: v.strip() for k, v in values.items() if v.strip()}
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problem = FormProblem(action=action, ticket_id=ticket_id, values=values)
        for error in exc.errors():
            name = str(error["loc"][0]) if error.get("loc") else ""
            problem.errors.setdefault(name, zh_message(dict(error), body.get(name)))
        return problem


def domain_problem(*, action: str, ticket_id: int, values: dict[str, str], exc: DomainError) -> FormProblem:
    problem = FormProblem(action=action, ticket_id=ticket_id, values=values)
    if isinstance(exc, InvalidInputError) and exc.field in FORM_FIELDS:
        problem.errors[exc.field] = _without_field_code(exc.message)
    else:
        problem.general = exc.message
    return problem


def _without_field_code(message: str) -> str:
    """Service messages name the API field for API users, e.g. "（note）"; the form names it in Chinese instead."""
    for name in FORM_FIELDS:
        message = message.replace(f"（{name}）", "")
    return message
