"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from service.db import STORAGE_MESSAGES, probe_writes
from service.deps import StateDep

router = APIRouter(tags=["运维"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: StateDep) -> JSONResponse:
    """Readiness: database reachable and writable, model loaded; calendar coverage reported."""
    checks: dict[str, Any] = {}
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        # reachable is not enough: a read-only database or a full disk cannot take tickets (reads still work)
        problem = probe_writes(state.engine)
        checks["database"] = (
            {"ok": True, "writable": True}
            if problem is None
            else {"ok": False, "writable": False, "problem": str(problem), "error": STORAGE_MESSAGES[problem]}
        )
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    checks["model"] = {"ok": state.classifier is not None, "version": state.classifier.version}
    today = state.clock().astimezone(ZoneInfo(state.rules.timezone)).date()
    horizon = today + dt.timedelta(days=state.settings.readiness_calendar_days)
    covered_until = state.policy.calendar.coverage_end()
    calendar_ok = covered_until >= horizon
    checks["calendar"] = {
        "ok": calendar_ok,
        "covered_until": covered_until.isoformat(),
        "required_until": horizon.isoformat(),
        **(
            {}
            if calendar_ok
            else {
                "warning": "官方日历数据不足：请在 rules.yaml 的 calendar 中补充下一年节假日与调休，"
                "在此之前时限按周一至周五估算并在工单上标记"
            }
        ),
    }
    ready = checks["database"]["ok"] and checks["model"]["ok"]
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics")
def metrics(state: StateDep) -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
