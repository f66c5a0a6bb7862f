"""Reading a key point file (CSV or XLSX, one row per key point) into checked specs.

Columns (the header row names them; order is free): 编号, 地址, 问题类型, 性质, 面积, 发现日期, 整治期限, 状态,
拆除面积, 完成日期, 备注. Every error names the row (the header is row 1) and the column; one error and nothing is
imported.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from service.areas.registry import RegistryError, clean, header, read_rows
from service.keypoints.models import (
    KIND_LABELS,
    MAX_M2,
    STATUS_LABELS,
    KeyPointKind,
    KeyPointStatus,
    control_char,
)
from service.places.address import building_key

__all__ = ["COLUMNS", "KeyPointFile", "KeyPointSpec", "RegistryError", "parse", "read_rows"]

COLUMNS = ("编号", "地址", "问题类型", "性质", "面积", "发现日期", "整治期限", "状态", "拆除面积", "完成日期", "备注")
REQUIRED = ("编号", "地址", "问题类型", "性质")
MAX_ROWS = 10_000
_CODE = re.compile(r"[0-9A-Za-z\-_.#]{1,32}")
# 2026-03-01, 2026/3/1, 2026.3.1, 2026年3月1日; a spreadsheet date comes as "2026-03-01 00:00:00"
_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?: 00:00:00)?")
_KINDS = {label: code.value for code, label in KIND_LABELS.items()} | {c.value: c.value for c in KeyPointKind}
_STATUSES = {label: code.value for code, label in STATUS_LABELS.items()} | {c.value: c.value for c in KeyPointStatus}


@dataclass(frozen=True)
class KeyPointSpec:
    """One checked row. None in status, demolished_m2 or cleared_on: the column was left blank, so a re-import
    keeps what the stored point has (a new point starts 待整治)."""

    row: int
    code: str
    address: str
    building_key: str | None
    category: str
    kind: str
    area_m2: float
    found_at: dt.date | None
    target_date: dt.date | None
    status: str | None
    demolished_m2: float | None
    cleared_on: dt.date | None
    note: str


@dataclass(frozen=True)
class KeyPointFile:
    points: list[KeyPointSpec]

    def unlinked(self) -> list[KeyPointSpec]:
        """Points whose address names no building: no ticket will link to them."""
        return [p for p in self.points if p.building_key is None]


class _Row:
    """One row's cells by column, collecting the problems found in it."""

    def __init__(self, get: dict[str, str], line: int, problems: list[str]) -> None:
        self.get, self.line, self.problems = get, line, problems

    def fail(self, column: str, message: str) -> None:
        self.problems.append(f"第 {self.line} 行 {column}：{message}")

    def date(self, column: str) -> dt.date | None:
        cell = self.get[column]
        if not cell:
            return None
        found = _DATE.fullmatch(cell)
        try:
            if found is None:
                raise ValueError(cell)
            return dt.date(int(found[1]), int(found[2]), int(found[3]))
        except ValueError:
            self.fail(column, f"「{cell[:20]}」不是日期（例如 2026-03-31）")
            return None

    def m2(self, column: str) -> float | None:
        # NFKC has made ㎡ "m2"
        cell = re.sub(r"(m2|平方米|平米)$", "", self.get[column].replace(",", "")).strip()
        if not cell:
            return None
        try:
            value = float(cell)
        except ValueError:
            value = -1.0
        if not 0 <= value <= MAX_M2:
            self.fail(column, f"「{self.get[column][:20]}」不是 0–{MAX_M2:,.0f} 之间的平方米数")
            return None
        return value


def _category(r: _Row, types: Mapping[str, str]) -> str | None:
    """The row's 问题类型, given as a category code or its Chinese name."""
    cell = r.get["问题类型"]
    by_name = {name: code for code, name in types.items()}
    code = cell if cell in types else by_name.get(cell)
    if code is None:
        r.fail("问题类型", f"「{cell[:20]}」不是可用的类型（{'、'.join(f'{n}（{c}）' for c, n in types.items())}）")
    return code


def _status(r: _Row, category: str | None, construction: str, demolished: float | None) -> str | None:
    cell = r.get["状态"]
    status = _STATUSES.get(cell) if cell else None
    if cell and status is None:
        r.fail("状态", f"「{cell[:20]}」只能是 待整治、整治中、已整治 或留空")
    cleared_on = r.get["完成日期"]
    if status == KeyPointStatus.cleared:
        if category == construction and demolished is None:
            r.fail("拆除面积", "违建点位已整治的须填写实际拆除面积")
        if not cleared_on:
            r.fail("完成日期", "已整治的点位须填写完成日期")
    elif cleared_on:
        r.fail("完成日期", "只有状态为已整治的点位才填完成日期")
    return status


def _spec(r: _Row, types: Mapping[str, str], construction: str) -> KeyPointSpec | None:
    get, before = r.get, len(r.problems)
    for column, cell in get.items():
        bad = control_char(cell)
        if bad is not None:
            r.fail(column, f"不能包含控制字符（U+{ord(bad):04X}）")
    code, address = get["编号"], get["地址"]
    if not _CODE.fullmatch(code):
        r.fail("编号", f"「{code[:20]}」须为 1–32 位数字、字母或 - _ . #" if code else "不能为空")
    if not address or len(address) > 300:
        r.fail("地址", "不能为空" if not address else "超过 300 个字")
    category = _category(r, types)
    kind = _KINDS.get(get["性质"])
    if kind is None:
        r.fail("性质", f"「{get['性质'][:20]}」只能是 存量 或 新增")
    area = r.m2("面积")
    if area is None and category == construction and not get["面积"]:
        r.fail("面积", "违建点位须填写违建面积（平方米）")
    found_at, target, cleared_on = r.date("发现日期"), r.date("整治期限"), r.date("完成日期")
    if kind == KeyPointKind.new and found_at is None and not get["发现日期"]:
        r.fail("发现日期", "新增点位须填写发现日期")
    demolished = r.m2("拆除面积")
    status = _status(r, category, construction, demolished)
    if len(get["备注"]) > 2000:
        r.fail("备注", "超过 2000 个字")
    if len(r.problems) > before or category is None or kind is None:
        return None
    return KeyPointSpec(
        row=r.line,
        code=code,
        address=address,
        building_key=building_key(address),
        category=category,
        kind=kind,
        area_m2=area or 0.0,
        found_at=found_at,
        target_date=target,
        status=status,
        demolished_m2=demolished,
        cleared_on=cleared_on,
        note=get["备注"],
    )


def parse(rows: Iterable[Sequence[str]], *, types: Mapping[str, str], construction: str) -> KeyPointFile:
    """Checked key points, or RegistryError listing every problem. `types` maps the category codes a key point may
    have (rules key_points.types) to their names; `construction` is the 违建 category."""
    rows = [[clean(c) for c in row] for row in rows]
    if not types:
        raise RegistryError(["规则文件 rules.yaml 的 key_points.types 为空：先列出点位可用的问题类型"])
    if not rows:
        raise RegistryError(["文件是空的：第 1 行应是列名（" + "、".join(COLUMNS) + "）"])
    if len(rows) > MAX_ROWS + 1:
        raise RegistryError([f"行数超过 {MAX_ROWS}"])
    index, problems = header(rows[0], required=REQUIRED, columns=COLUMNS)
    if problems:
        raise RegistryError(problems)
    points: list[KeyPointSpec] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        get = {c: (row[index[c]] if c in index and index[c] < len(row) else "") for c in COLUMNS}
        if not any(get.values()):
            continue
        spec = _spec(_Row(get, line, problems), types, construction)
        if get["编号"] in seen:
            problems.append(f"第 {line} 行 编号：「{get['编号']}」与第 {seen[get['编号']]} 行重复")
        seen.setdefault(get["编号"], line)
        if spec is not None:
            points.append(spec)
    if not seen and not problems:
        problems.append("文件中没有任何点位")
    if problems:
        raise RegistryError(problems)
    return KeyPointFile(points=points)
