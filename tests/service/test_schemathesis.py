"""Schemathesis over the whole OpenAPI schema: no 5xx, responses match the schema (SQLite)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from classifier.artifact import load_model
from classifier.decision import Classifier
from service.app import create_app
from service.db import upgrade
from service.rules import load_rules
from tests.conftest import ROOT, make_state, token_for


def _app_and_token(tmp: Path) -> tuple[object, str]:
    url = f"sqlite:///{tmp / 'fuzz.db'}"
    upgrade(url)
    rules = load_rules(ROOT / "rules.yaml")
    state = make_state(url, rules, Classifier(load_model(ROOT / "models" / "street"), rules))
    return create_app(state=state), token_for(state, "admin")


# schemathesis parametrizes at import time, so the app (on its own SQLite file) is built then
APP, TOKEN = _app_and_token(Path(tempfile.mkdtemp(prefix="hotline-fuzz-")))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_5xx_and_matches_schema(case: schemathesis.Case) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance])
