"""The Chinese names of every code a person reads in alerts and pages: one table, so no code leaks into text."""

from __future__ import annotations

from collections.abc import Mapping

ALERT_KINDS: Mapping[str, str] = {
    "due_soon": "临期预警",
    "overdue": "超期",
    "escalated": "督办",
    "hotspot": "热点预警（冒头就打）",
}
CLOCKS: Mapping[str, str] = {"contact": "先行联系", "resolve": "办结", "intake": "接收"}
LIGHTS: Mapping[str, str] = {"green": "正常", "yellow": "临期", "red": "超期"}
# events written by the system rather than by a lifecycle action (those carry their own label in the state machine)
SYSTEM_ACTIONS: Mapping[str, str] = {
    "receive": "接收",
    "classify": "自动分类",
    "supervise": "督办",
    "recalendar": "日历更新后重算时限",
    "place": "更正位置",
    "photo": "上传照片",
    "discover": "主动发现",
    "assist": "添加协办科室",
    "unassist": "移除协办科室",
    "assist-part": "协办情况",
    "archive": "流转记录归档",
}
UNKNOWN = "其他"


def zh(table: Mapping[str, str], code: str | None) -> str:
    """The Chinese name of `code`; an unknown code reads 其他, never the code itself."""
    return table.get(code or "", UNKNOWN)
