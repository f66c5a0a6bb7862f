"""The FastAPI application factory: loads rules, model and database once, mounts the routers."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, InternalError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from classifier.decision import Classifier
from classifier.twolevel import load_classifier
from service.areas import routes as area_routes
from service.db import STORAGE_MESSAGES, StorageProblem, make_engine, storage_problem
from service.deadlines.service import DeadlinePolicy
from service.errors import DomainError, InvalidInputError, http_status
from service.evidence import routes as photo_routes
from service.evidence.storage import PhotoStore, make_store
from service.intake import devices as device_routes
from service.intake import open311
from service.intake import routes as intake_routes
from service.keypoints import routes as keypoint_routes
from service.notify import routes as notify_routes
from service.ops import routes as ops_routes
from service.ops.metrics import Metrics
from service.reports import routes as report_routes
from service.rules import ServiceRules, load_rules
from service.settings import Settings, get_settings
from service.state import AppState
from service.tickets import routes as ticket_routes
from service.tickets.models import TicketCreate
from service.web import keypoints as web_keypoints
from service.web import listing as web_listing
from service.web import patrol as web_patrol
from service.web import routes as web_routes
from service.web.headers import UIHeaders

log = logging.getLogger(__name__)


def build_state(
    settings: Settings, *, rules: ServiceRules | None = None, classifier: Classifier | None = None
) -> AppState:
    """Load everything the app needs; raises RulesError / ModelError / UnsafeSettingsError with clear messages.

    Already loaded rules and classifier may be passed in (tests share one across many apps)."""
    settings.check_safe()
    rules = rules or load_rules(settings.rules)
    classifier = classifier or load_classifier(settings.model, rules)
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    return AppState(
        settings=settings,
        engine=engine,
        rules=rules,
        classifier=classifier,
        policy=DeadlinePolicy(rules),
        metrics=Metrics(engine),
        photos=photo_store(settings),
        report_engine=make_engine(settings.report_database_url) if settings.report_database_url else None,
    )


def photo_store(settings: Settings) -> PhotoStore:
    """The photo store the settings name; a wrong setting stops start-up with a clear message."""
    secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
    return make_store(
        settings.photo_store,
        local_dir=settings.photo_dir,
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        access_key=settings.s3_access_key,
        secret_key=secret,
        region=settings.s3_region,
    )


class ErrorBody(BaseModel):
    detail: str | list[dict[str, Any]]


# Every route may answer these; documenting them keeps the OpenAPI schema truthful for clients and fuzzers.
_COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "请求体无法解析"},
    401: {"model": ErrorBody, "description": "未认证或签名无效"},
    403: {"model": ErrorBody, "description": "无权访问"},
    404: {"model": ErrorBody, "description": "不存在或不可见"},
    409: {"model": ErrorBody, "description": "状态冲突"},
    413: {"model": ErrorBody, "description": "请求体过大"},
    429: {"model": ErrorBody, "description": "认证失败过多，稍后再试"},
    503: {"model": ErrorBody, "description": "数据库暂时不可用或只读（带 Retry-After）"},
    507: {"model": ErrorBody, "description": "数据库所在磁盘已满（带 Retry-After）"},
}


def _document_webhook_body(app: FastAPI) -> None:
    """The webhook reads its raw body itself (signature first), so FastAPI does not see the model it refers to:
    add TicketCreate (and what it refers to) to the OpenAPI components."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if "TicketCreate" not in components:
            body = TicketCreate.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components["TicketCreate"] = body
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None, state: AppState | None = None) -> FastAPI:
    state = state or build_state(settings or get_settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the loaded model is millions of long-lived objects: left to the collector, every full collection walks
        # them all and stalls requests for tens of milliseconds
        gc.collect()
        gc.freeze()
        scheduler = None
        if state.settings.scheduler:
            from service.scheduler import start_background

            scheduler = start_background(state.engine, state.rules, state.settings)
        switch = None
        if state.settings.model_check_seconds > 0:
            from service.learning.registry import ModelStore
            from service.learning.switch import ModelSwitch

            store = ModelStore(state.settings.models_root, state.settings.model)
            switch = ModelSwitch(state, store, state.settings.model_check_seconds)
            switch.start()
        yield
        if switch is not None:
            switch.stop()
        if scheduler is not None:
            scheduler.shutdown(wait=False)

    # Swagger UI and ReDoc from locally served assets: /docs works on a machine without internet
    app = FastAPIOffline(
        lifespan=lifespan,
        title="Hotline 12345 工单服务",
        version="0.1.0",
        description="12345 热线工单接收、自动分类派单、时限跟踪与办结管理。",
        responses=_COMMON_RESPONSES,
    )
    app.state.hotline = state
    _document_webhook_body(app)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(InternalError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # nothing was committed: the caller retries later and loses nothing. A read-only database or a full disk
        # is said so (an administrator must act; reads still work), distinct from "temporarily unavailable".
        problem = storage_problem(exc)
        if problem is None and isinstance(exc, InternalError):
            raise exc  # not a storage problem: a genuine server error
        log.error(
            "database_unavailable",
            extra={"path": request.url.path, "error": type(exc).__name__, "problem": problem or "unreachable"},
        )
        return JSONResponse(
            {"detail": STORAGE_MESSAGES[problem] if problem else "数据库暂时不可用，请稍后重试"},
            status_code=507 if problem is StorageProblem.disk_full else 503,
            headers={"Retry-After": str(state.settings.retry_after_seconds)},
        )

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        # the one place where a domain error becomes an HTTP answer; services never see HTTP
        code = http_status(exc)
        if isinstance(exc, InvalidInputError):
            detail: Any = [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]
        else:
            detail = exc.message
        return JSONResponse({"detail": detail}, status_code=code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # a person in the browser gets a Chinese page; API clients keep the JSON answer
        if web_routes.wants_page(request):
            return web_routes.error_page(request, exc.status_code, str(exc.detail))
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if web_routes.wants_page(request):
            return web_routes.error_page(request, 422, "网址中的参数无效")
        return await request_validation_exception_handler(request, exc)

    @app.exception_handler(web_routes.NotForRole)
    async def not_for_role(request: Request, exc: web_routes.NotForRole) -> RedirectResponse:
        return RedirectResponse(exc.landing, status_code=303)

    @app.exception_handler(web_routes.LoginRequired)
    async def login_required(request: Request, exc: web_routes.LoginRequired) -> RedirectResponse:
        return web_routes.login_redirect(state, exc)

    for module in (
        intake_routes,
        ticket_routes,
        area_routes,
        keypoint_routes,
        photo_routes,
        device_routes,
        notify_routes,
        report_routes,
        open311,
        ops_routes,
        web_listing,
        web_patrol,
        web_keypoints,
        web_routes,
    ):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=str(web_routes.STATIC)), name="static")
    app.add_middleware(UIHeaders)
    return app
