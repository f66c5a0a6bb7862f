"""Reading an area registry file (CSV or XLSX, one row per address pattern) into a checked registry.

Columns (the header row names them; order is free): 片区, 居民区, 网格, 负责人, 负责人电话, 网格员, 道路或小区, 起号,
止号, 单双号. A row describes the deepest area it names (a 网格, else its 居民区, else its 片区); several rows may
describe one area, each adding a pattern. Every error names the row (the header is row 1) and the column.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from service.areas.models import Level

COLUMNS = ("片区", "居民区", "网格", "负责人", "负责人电话", "网格员", "道路或小区", "起号", "止号", "单双号")
REQUIRED = ("片区",)
PARITIES = {"": "all", "全部": "all", "单": "odd", "单号": "odd", "双": "even", "双号": "even"}
MAX_NAME = 64
MAX_ZONE = 32  # Ticket.grid holds the 片区 name
MAX_ROWS = 100_000
_MEMBERS = re.compile(r"[、,，;；/\s]+")
_PHONE = re.compile(r"[0-9+\- ]{3,32}")


class RegistryError(ValueError):
    """A registry file that cannot be imported; `problems` lists every fault found, each naming its row."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PatternSpec:
    name: str
    lo: int | None
    hi: int | None
    parity: str
    row: int

    def overlaps(self, other: PatternSpec) -> bool:
        if self.name != other.name:
            return False
        if self.lo is None or other.lo is None:
            return self.lo is None and other.lo is None
        assert self.hi is not None and other.hi is not None
        if self.hi < other.lo or other.hi < self.lo:
            return False
        return "all" in (self.parity, other.parity) or self.parity == other.parity


@dataclass
class AreaSpec:
    level: Level
    name: str
    parent: str | None
    row: int
    leader: str = ""
    leader_phone: str = ""
    members: list[str] = field(default_factory=list)
    patterns: list[PatternSpec] = field(default_factory=list)


@dataclass(frozen=True)
class Registry:
    """Areas in import order: every parent comes before its children."""

    areas: list[AreaSpec]

    def count(self, level: Level) -> int:
        return sum(1 for a in self.areas if a.level == level)


def clean(value: object) -> str:
    """A cell as text: NFKC (full-width digits and letters), no surrounding spaces; None and numbers as text."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


def read_rows(path: Path) -> list[list[str]]:
    """The file's rows as text cells: .xlsx through openpyxl (first sheet), anything else as UTF-8 CSV."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            return [[clean(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        finally:
            book.close()
    text = path.read_bytes().decode("utf-8-sig")
    return [[clean(v) for v in row] for row in csv.reader(io.StringIO(text))]


def header(
    row: Sequence[str], *, required: Sequence[str] = REQUIRED, columns: Sequence[str] = COLUMNS
) -> tuple[dict[str, int], list[str]]:
    """The header row's column positions, and what is missing or unknown in it (a table file's first row)."""
    index = {name: i for i, name in enumerate(row) if name}
    problems = [f"第 1 行：缺少列「{name}」" for name in required if name not in index]
    problems += [
        f"第 1 行：不认识的列「{name}」（可用列：{'、'.join(columns)}）" for name in index if name not in columns
    ]
    return index, problems


def _number(cell: str, column: str, line: int, problems: list[str]) -> int | None:
    if not cell:
        return None
    if not cell.isdigit() or not 0 < int(cell) < 100_000:
        problems.append(f"第 {line} 行 {column}：「{cell}」不是 1–99999 的整数")
        return None
    return int(cell)


def _pattern(get: dict[str, str], line: int, problems: list[str]) -> PatternSpec | None:
    name = get["道路或小区"]
    lo, hi = _number(get["起号"], "起号", line, problems), _number(get["止号"], "止号", line, problems)
    parity = PARITIES.get(get["单双号"])
    if parity is None:
        problems.append(f"第 {line} 行 单双号：「{get['单双号']}」只能是 单、双 或留空")
    if not name:
        if lo or hi or get["单双号"]:
            problems.append(f"第 {line} 行 道路或小区：填了门牌范围却没有道路或小区名称")
        return None
    if len(name) > MAX_NAME or len(name) < 2:
        problems.append(f"第 {line} 行 道路或小区：「{name[:20]}」长度须为 2–{MAX_NAME} 个字")
        return None
    if (lo is None) != (hi is None):
        problems.append(f"第 {line} 行 起号/止号：须同时填写或同时留空")
        return None
    if lo is not None and hi is not None and lo > hi:
        problems.append(f"第 {line} 行 起号/止号：起号 {lo} 大于止号 {hi}")
        return None
    if lo is None and parity not in (None, "all"):
        problems.append(f"第 {line} 行 单双号：没有门牌范围时不能限定单双号")
        return None
    return PatternSpec(name=name, lo=lo, hi=hi, parity=parity or "all", row=line)


def _people(spec: AreaSpec, get: dict[str, str], line: int, problems: list[str]) -> None:
    """The row's 负责人, 电话 and 网格员 belong to its deepest area; rows of one area must not disagree."""
    members = [m for m in _MEMBERS.split(get["网格员"]) if m]
    phone = get["负责人电话"]
    if phone and not _PHONE.fullmatch(phone):
        problems.append(f"第 {line} 行 负责人电话：「{phone[:20]}」只能包含数字、空格、+ 和 -")
    for attr, value, label in (("leader", get["负责人"], "负责人"), ("leader_phone", phone, "负责人电话")):
        if len(value) > 32:
            problems.append(f"第 {line} 行 {label}：超过 32 个字")
        elif value and getattr(spec, attr) and getattr(spec, attr) != value:
            problems.append(f"第 {line} 行 {label}：「{value}」与第 {spec.row} 行的「{getattr(spec, attr)}」不一致")
        elif value:
            setattr(spec, attr, value)
    spec.members += [m for m in members if m not in spec.members]


def _area(
    areas: dict[tuple[Level, str], AreaSpec],
    level: Level,
    name: str,
    parent: str | None,
    line: int,
    problems: list[str],
) -> AreaSpec | None:
    label = {Level.zone: "片区", Level.community: "居民区", Level.cell: "网格"}[level]
    limit = MAX_ZONE if level == Level.zone else MAX_NAME
    if len(name) > limit:
        problems.append(f"第 {line} 行 {label}：「{name[:20]}…」超过 {limit} 个字")
        return None
    spec = areas.get((level, name))
    if spec is None:
        spec = areas[(level, name)] = AreaSpec(level=level, name=name, parent=parent, row=line)
    elif spec.parent != parent:
        problems.append(
            f"第 {line} 行 {label}：「{name}」在第 {spec.row} 行属于「{spec.parent}」，名称在同级中必须唯一"
        )
        return None
    return spec


def parse(rows: Iterable[Sequence[str]], *, zones: Iterable[str] | None = None) -> Registry:
    """A checked registry, or RegistryError listing every problem. `zones`, when given, are the 片区 the rules
    file knows: a registry 片区 must be one of them (the rules also feed them to the tokenizer and the filters)."""
    rows = list(rows)
    if not rows:
        raise RegistryError(["文件是空的：第 1 行应是列名（" + "、".join(COLUMNS) + "）"])
    if len(rows) > MAX_ROWS + 1:
        raise RegistryError([f"行数超过 {MAX_ROWS}"])
    index, problems = header(rows[0])
    if problems:
        raise RegistryError(problems)
    known = set(zones) if zones is not None else None
    areas: dict[tuple[Level, str], AreaSpec] = {}
    for line, row in enumerate(rows[1:], start=2):
        get = {c: (row[index[c]] if c in index and index[c] < len(row) else "") for c in COLUMNS}
        if not any(get.values()):
            continue
        _row(areas, get, line, problems, known)
    _check_overlaps(list(areas.values()), problems)
    if not areas and not problems:
        problems.append("文件中没有任何区域")
    if problems:
        raise RegistryError(problems)
    return Registry(areas=list(areas.values()))


def _row(
    areas: dict[tuple[Level, str], AreaSpec],
    get: dict[str, str],
    line: int,
    problems: list[str],
    known: set[str] | None,
) -> None:
    zone, community, cell = get["片区"], get["居民区"], get["网格"]
    if not zone:
        problems.append(f"第 {line} 行 片区：不能为空")
        return
    if known is not None and zone not in known:
        problems.append(f"第 {line} 行 片区：「{zone}」不在规则文件 places.grids 中（{'、'.join(sorted(known))}）")
        return
    if cell and not community:
        problems.append(f"第 {line} 行 居民区：填了网格就必须填写所属居民区")
        return
    deepest = _area(areas, Level.zone, zone, None, line, problems)
    if community and deepest is not None:
        deepest = _area(areas, Level.community, community, zone, line, problems)
    if cell and deepest is not None:
        deepest = _area(areas, Level.cell, cell, community, line, problems)
    if deepest is None:
        return
    _people(deepest, get, line, problems)
    pattern = _pattern(get, line, problems)
    if pattern is not None:
        deepest.patterns.append(pattern)


def _check_overlaps(areas: list[AreaSpec], problems: list[str]) -> None:
    """Two areas may share a road only on disjoint 弄/号 ranges (or sides): otherwise an address is in both."""
    by_name: dict[str, list[tuple[AreaSpec, PatternSpec]]] = {}
    for area in areas:
        for pattern in area.patterns:
            by_name.setdefault(pattern.name, []).append((area, pattern))
    for entries in by_name.values():
        for i, (a, p) in enumerate(entries):
            for b, q in entries[:i]:
                if p.overlaps(q):
                    where = "同一区域重复" if a is b else f"与第 {q.row} 行（{b.name}）重叠"
                    problems.append(f"第 {p.row} 行 道路或小区：「{p.name}」的范围{where}")
