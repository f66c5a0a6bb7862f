"""Report files: CSV (UTF-8 with BOM, so Excel reads the Chinese headers) and XLSX (frozen header, percents)."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from service.reports.models import DailyReport, HotspotLine
from service.reports.service import BREAKDOWN_LABELS, LABELS, RATES

COLUMNS = tuple(LABELS)


def _columns(report: DailyReport) -> tuple[tuple[str, ...], dict[str, str]]:
    """The file's columns and their headers: by area, the first column is the 片区/居民区/网格."""
    if report.by == "office":
        return COLUMNS, LABELS
    return ("area", *COLUMNS[1:]), {**LABELS, "area": BREAKDOWN_LABELS[report.by]}


def _rows(report: DailyReport) -> list[dict[str, Any]]:
    """The table's cells by column: each row, then 合计."""
    rows = [row.model_dump() for row in report.rows]
    return [*rows, {**report.totals.model_dump(), "office_name": "合计", "area": "合计", "category_name": ""}]


def to_csv(report: DailyReport) -> bytes:
    columns, labels = _columns(report)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([labels[c] for c in columns])
    for row in _rows(report):
        writer.writerow(["" if row.get(c) is None else (f"{row[c]:.2%}" if c in RATES else row[c]) for c in columns])
    if report.ledger_areas:
        writer.writerow([])
        writer.writerow(_ledger_area_header(report))
        writer.writerows(_ledger_area_rows(report))
    if report.hotspot_list:
        writer.writerow([])
        writer.writerow(_hotspot_header(report))
        writer.writerows(_hotspot_rows(report))
    if report.assists:
        writer.writerow([])
        writer.writerow(ASSIST_HEADER)
        writer.writerows(_assist_rows(report))
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


def _hotspot_header(report: DailyReport) -> list[str]:
    level = "片区" if report.by == "office" else BREAKDOWN_LABELS[report.by]
    return [f"热点清单·{level}", "楼栋", "分类", "期内工单", "期末在办", "回潮", "最近受理", "片区", "居民区", "网格"]


def _hotspot_rows(report: DailyReport) -> list[list[Any]]:
    return [
        [
            h.area,
            h.building,
            h.category_name,
            h.tickets,
            h.open,
            "是" if h.recurrence else "",
            h.last_received,
            *_place(h),
        ]
        for h in report.hotspot_list
    ]


def _place(line: HotspotLine) -> list[str]:
    return [line.zone, line.community, line.cell]


ASSIST_HEADER = ["协办科室", "期内请协办", "期内记录协办情况", "期末协办中", "其中未记录协办情况"]


def _assist_rows(report: DailyReport) -> list[list[Any]]:
    return [[a.office_name, a.asked, a.recorded, a.open, a.open_without_part] for a in report.assists]


def _ledger_area_header(report: DailyReport) -> list[str]:
    return ["分类", BREAKDOWN_LABELS[report.by], "期初在办", "新增", "重办", "办结", "期末在办", "回潮"]


def _ledger_area_rows(report: DailyReport) -> list[list[Any]]:
    return [
        [a.name, a.area, a.opening, a.new, a.reopened, a.closed, a.closing, a.recurrence] for a in report.ledger_areas
    ]


def to_xlsx(report: DailyReport) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"日报 {report.period.start}"[:31]
    columns, labels = _columns(report)
    sheet.append([labels[c] for c in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in _rows(report):
        sheet.append([row.get(c) for c in columns])
    for index, column in enumerate(columns, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        sheet.column_dimensions[letter].width = max(10, len(labels[column]) * 2 + 2)
        if column in RATES:
            for cell in sheet[letter][1:]:
                cell.number_format = "0.00%"
    sheet.freeze_panes = "A2"
    days = [
        [item.name, day.date, day.open, day.new, day.reopened, day.closed, day.recurrence]
        for item in report.ledger
        for day in item.days
    ]
    _sheet(book, "动态清零台账", ["分类", "日期", "日末在办", "新增", "重办", "办结", "回潮"], days)
    if report.ledger_areas:
        _sheet(book, f"台账按{BREAKDOWN_LABELS[report.by]}", _ledger_area_header(report), _ledger_area_rows(report))
    if report.hotspot_list:
        _sheet(book, "热点清单", _hotspot_header(report), _hotspot_rows(report))
    if report.assists:
        _sheet(book, "联勤联动", ASSIST_HEADER, _assist_rows(report))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet(book: Workbook, title: str, header: list[str], rows: list[list[Any]]) -> None:
    """One more worksheet: a bold, frozen header row and the rows under it."""
    sheet = book.create_sheet(title)
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for line in rows:
        sheet.append(line)
    sheet.freeze_panes = "A2"
