"""Report API: the daily closure-rate report as JSON, CSV or XLSX, and the weekly 新增违建 monitor."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status

from service.auth.models import Role
from service.deps import CurrentUser, RulesDep, StateDep
from service.errors import InvalidInputError
from service.reports.export import to_csv, to_xlsx
from service.reports.models import MonitorReport
from service.reports.period import check_period
from service.reports.service import load_report, monitor

router = APIRouter(prefix="/api/v1/reports", tags=["报表"])


def _check_period(start: dt.date, end: dt.date | None, **fields: str) -> None:
    """422 naming the query field when the dates are outside what a report can cover."""
    try:
        check_period(start, end, **fields)
    except InvalidInputError as exc:
        detail = [{"loc": ["query", exc.field], "msg": exc.message, "type": "value_error"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from exc


@router.get(
    "/daily",
    responses={
        200: {"content": {"text/csv": {}, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}
    },
)
def daily_route(
    user: CurrentUser,
    rules: RulesDep,
    state: StateDep,
    date: Annotated[dt.date, Query(description="日期 YYYY-MM-DD（Asia/Shanghai）")],
    end: Annotated[dt.date | None, Query(description="结束日期（含），缺省同 date")] = None,
    format: Annotated[Literal["json", "csv", "xlsx"], Query()] = "json",
    by: Annotated[
        Literal["office", "grid", "community", "cell"],
        Query(description="分行方式：office 承办科室、grid 片区、community 居民区、cell 网格"),
    ] = "office",
) -> Response:
    """Daily closure-rate report for a date or date range (per office or area × category, totals, ledger)."""
    _check_period(date, end)
    office = user.office if user.role == Role.office else None
    report = load_report(state.reads, rules, date, end, office, by=by)
    name = f"hotline-report-{date}{'_' + str(end) if end else ''}{'' if by == 'office' else '-' + by}"
    if format == "csv":
        return Response(
            to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if format == "xlsx":
        return Response(
            to_xlsx(report),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )

    return Response(report.model_dump_json(), media_type="application/json")


@router.get("/monitor", response_model=MonitorReport)
def monitor_route(
    user: CurrentUser,
    rules: RulesDep,
    state: StateDep,
    end: Annotated[dt.date, Query(description="截止日期 YYYY-MM-DD：最后一周为含该日的一周")],
    weeks: Annotated[int | None, Query(ge=1, le=53, description="周数，缺省取规则文件 reports.monitor_weeks")] = None,
) -> MonitorReport:
    """新增违建（等）动态监测: new tickets of the monitored categories by 片区/街道 and week."""
    _check_period(end, None, start_field="end")
    office = user.office if user.role == Role.office else None
    with state.reads.connect() as conn:
        return monitor(conn, rules, end, weeks, office=office)
