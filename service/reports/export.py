"""Report files: CSV (UTF-8 with BOM, so Excel reads the Chinese headers) and XLSX (frozen header, percents)."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from service.reports.models import DailyReport
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
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


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
    ledger = book.create_sheet("动态清零台账")
    ledger.append(["分类", "日期", "日末在办", "新增", "重办", "办结", "回潮"])
    for cell in ledger[1]:
        cell.font = Font(bold=True)
    for item in report.ledger:
        for day in item.days:
            ledger.append([item.name, day.date, day.open, day.new, day.reopened, day.closed, day.recurrence])
    ledger.freeze_panes = "A2"
    if report.ledger_areas:
        where = book.create_sheet(f"台账按{BREAKDOWN_LABELS[report.by]}")
        where.append(_ledger_area_header(report))
        for cell in where[1]:
            cell.font = Font(bold=True)
        for line in _ledger_area_rows(report):
            where.append(line)
        where.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
