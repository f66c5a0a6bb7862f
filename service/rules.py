"""The service's sections of the rules file: clocks, calendar, lifecycle, hotspots, duplicates, reports, notify,
intake, learning.

`ServiceRules` is the classifier's schema widened by what only the service reads. Both parts are validated in one
pass over the same file, so every error names the line of the file itself. The service loads its rules here and
nowhere else.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import Field, model_validator

from classifier.config import Clock, Rules, StrictModel
from classifier.config import load_rules as _load
from classifier.config import parse_rules as _parse


class Deadlines(StrictModel):
    first_contact: Clock
    first_contact_urgent: Clock
    resolve_by_kind: dict[str, Clock]
    default_kind: str
    extension_max_total: Clock
    reopen: Clock
    supervise: Clock
    warn_fraction: float = Field(gt=0, lt=1)
    return_window: Clock
    # 督办: a ticket overdue by this much is escalated and gets the `supervise` clock
    escalate_after: Clock = Clock(hours=24)

    @model_validator(mode="after")
    def _default_kind_known(self) -> Deadlines:
        if self.default_kind not in self.resolve_by_kind:
            raise ValueError(f"default_kind「{self.default_kind}」不在 resolve_by_kind 中")
        return self


class CalendarExtras(StrictModel):
    extra_holidays: tuple[dt.date, ...] = ()
    extra_workdays: tuple[dt.date, ...] = ()
    covered_years: tuple[int, ...] = ()

    @model_validator(mode="after")
    def _disjoint(self) -> CalendarExtras:
        both = set(self.extra_holidays) & set(self.extra_workdays)
        if both:
            raise ValueError(f"日期同时出现在 extra_holidays 和 extra_workdays: {sorted(both)}")
        return self


class Lifecycle(StrictModel):
    return_reasons: tuple[str, ...] = Field(min_length=1)
    resolve_results: tuple[str, ...] = Field(min_length=1)
    satisfaction: dict[str, float]
    reopen_on: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _reopen_known(self) -> Lifecycle:
        unknown = [s for s in self.reopen_on if s not in self.satisfaction]
        if unknown:
            raise ValueError(f"reopen_on 中的满意度不在 satisfaction 中: {unknown}")
        return self


class Hotspots(StrictModel):
    """冒头就打: repeated tickets at one building, and recurrence after closure."""

    window_days: int = Field(default=30, gt=0)
    min_tickets: int = Field(default=3, ge=2)
    recurrence_days: int = Field(default=90, gt=0)


class Duplicates(StrictModel):
    window_hours: float = Field(default=72, gt=0)
    # character-bigram Jaccard similarity of the normalized texts
    similarity: float = Field(default=0.35, gt=0, le=1)


class Reports(StrictModel):
    push_time: dt.time = dt.time(8, 30)
    # 新增X动态监测: new tickets of these categories by 片区/街道 (places.grids) and week, with 回潮
    monitor: tuple[str, ...] = ()
    monitor_weeks: int = Field(default=8, ge=1, le=53)


class AlertWindow(StrictModel):
    """When robots may post non-urgent alerts: local time of day, on working days only unless told otherwise."""

    start: dt.time
    end: dt.time
    working_days_only: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> AlertWindow:
        if self.start >= self.end:
            raise ValueError(f"发送时段的开始 {self.start:%H:%M} 必须早于结束 {self.end:%H:%M}")
        return self


class Notify(StrictModel):
    # None: alerts go out whenever the sweep raises them
    alert_window: AlertWindow | None = None
    # the most tickets one robot message lists (WeCom markdown takes at most 4,096 bytes)
    batch_max: int = Field(default=20, ge=1, le=50)


class RetentionRules(StrictModel):
    """What `hotline archive` moves out of the database into compressed monthly files (docs/RETENTION.md)."""

    # the timeline of a ticket closed or cancelled at least this long ago (no activity since)
    events_after_days: int = Field(default=3 * 365, ge=365, le=50 * 365)
    # a callback delivered at least this long ago
    outbox_after_days: int = Field(default=90, ge=7, le=50 * 365)


class IntakeRules(StrictModel):
    """The hotline's received_at starts the clocks, within these bounds."""

    # a received_at later than now by more than this is refused (a wrong clock upstream would shorten every deadline)
    future_skew_minutes: float = Field(default=10, ge=0, le=24 * 60)
    # a received_at older than this is accepted, but the ticket is marked as pushed late and shown so
    stale_days: float = Field(default=3, gt=0, le=365)


class LearningRules(StrictModel):
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


class EvidenceRules(StrictModel):
    """Photos attached at 先行联系 and 办结: limits, and the categories that need an after-photo to close."""

    max_count: int = Field(default=9, ge=1, le=50)  # photos per upload
    max_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024, le=50 * 1024 * 1024)
    max_pixels: int = Field(default=40_000_000, ge=1_000_000, le=200_000_000)
    # 办结 of these categories needs at least one photo taken at 办结 (整改后照片) in the current round
    require_after_photo: tuple[str, ...] = ()
    # 办结 of these categories waits for a dispatcher's review (办结审核) before it counts and is sent to the hotline
    review_resolution: tuple[str, ...] = ()


class KeyPointRules(StrictModel):
    """五违四必 key points (库内重点点位): the categories they may have, and the year's 违建 demolition target."""

    # m² of existing 违建 to demolish in a calendar year (local time): the ledger's target
    yearly_demolition_target_m2: float = Field(default=0, ge=0, le=10_000_000)
    # category codes a key point may have; empty: no key points can be imported
    types: tuple[str, ...] = ()
    # the category that is 违建: clearing such a point needs the m² demolished, and the ledger counts its m²
    construction_type: str = "illegal_construction"


class ServiceRules(Rules):
    deadlines: Deadlines
    calendar: CalendarExtras = CalendarExtras()
    lifecycle: Lifecycle
    hotspots: Hotspots = Hotspots()
    duplicates: Duplicates = Duplicates()
    reports: Reports = Reports()
    notify: Notify = Notify()
    intake: IntakeRules = IntakeRules()
    retention: RetentionRules = RetentionRules()
    learning: LearningRules = LearningRules()
    evidence: EvidenceRules = EvidenceRules()
    key_points: KeyPointRules = KeyPointRules()

    def cross_check(self) -> list[tuple[tuple[str, ...], str]]:
        problems = super().cross_check()
        for i, code in enumerate(self.reports.monitor):
            if code not in self.categories:
                problems.append((("reports", "monitor", str(i)), f"「{code}」不是已定义的分类"))
        for i, code in enumerate(self.evidence.require_after_photo):
            if code not in self.categories:
                problems.append((("evidence", "require_after_photo", str(i)), f"「{code}」不是已定义的分类"))
        for i, code in enumerate(self.evidence.review_resolution):
            if code not in self.categories:
                problems.append((("evidence", "review_resolution", str(i)), f"「{code}」不是已定义的分类"))
        problems += self._key_point_problems()
        unknown = [r for r in self.learning.misroute_reasons if r not in self.lifecycle.return_reasons]
        if unknown:
            problems.append((("learning", "misroute_reasons"), f"{unknown} 不在 lifecycle.return_reasons 中"))
        return problems

    def _key_point_problems(self) -> list[tuple[tuple[str, ...], str]]:
        section = self.key_points
        problems: list[tuple[tuple[str, ...], str]] = [
            (("key_points", "types", str(i)), f"「{code}」不是已定义的分类")
            for i, code in enumerate(section.types)
            if code not in self.categories
        ]
        # without types the feature is off, and the 违建 category need not exist (a district's file)
        if section.types and section.construction_type not in section.types:
            problems.append(
                (("key_points", "construction_type"), f"「{section.construction_type}」不在 key_points.types 中")
            )
        return problems


def load_rules(path: str | Path) -> ServiceRules:
    """The whole rules file as the service reads it; raises RulesError naming the line of each problem."""
    return _load(path, schema=ServiceRules)


def parse_rules(text: str, *, path: Path = Path("<string>")) -> ServiceRules:
    return _parse(text, path=path, schema=ServiceRules)
