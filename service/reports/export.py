"""Report files: CSV (UTF-8 with BOM, so Excel reads the Chinese headers) and XLSX (frozen header, percents)."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from service.reports.models import DailyReport
from service.reports.service import LABELS, RATES

COLUMNS = tuple(LABELS)


def _rows(report: DailyReport) -> list[dict[str, Any]]:
    """The table's cells by column: each row, then 合计."""
    rows = [row.model_dump() for row in report.rows]
    return [*rows, {**report.totals.model_dump(), "office_name": "合计", "category_name": ""}]


def to_csv(report: DailyReport) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([LABELS[c] for c in COLUMNS])
    for row in _rows(report):
        writer.writerow(["" if row.get(c) is None else (f"{row[c]:.2%}" if c in RATES else row[c]) for c in COLUMNS])
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


def to_xlsx(report: DailyReport) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"日报 {report.period.start}"[:31]
    sheet.append([LABELS[c] for c in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in _rows(report):
        sheet.append([row.get(c) for c in COLUMNS])
    for index, column in enumerate(COLUMNS, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        sheet.column_dimensions[letter].width = max(10, len(LABELS[column]) * 2 + 2)
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
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
