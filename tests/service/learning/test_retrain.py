"""Retraining: the challenger is judged on the frozen real test split and the newest corrections; a worse one is
refused, a better one promoted, --dry-run changes nothing."""

from __future__ import annotations

import datetime as dt
import json

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from service.app import create_app
from service.cli import app as cli
from service.learning.models import ModelActivation, RoutingLabel
from service.learning.registry import active_version
from service.scheduler import add_jobs
from service.state import AppState
from tests.conftest import auth, payload, post_ticket, token_for
from tests.service.learning.conftest import MakeState, SmallModels
from tests.service.learning.test_models import _env


def _retrain(state: AppState, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["retrain", "--cv", "2", *args], env=_env(state))
    return result.exit_code, result.output


def _models_on_disk(state: AppState) -> set[str]:
    return {p.name for p in state.settings.models_root.iterdir() if not p.name.startswith(".")}


def test_a_worse_challenger_is_refused(make_learning_state: MakeState, small_models: SmallModels) -> None:
    state = make_learning_state("good")
    state.settings.retrain_corpus = small_models.shuffled  # trained on shuffled labels: worse on every test set
    before = _models_on_disk(state)
    code, out = _retrain(state, "--corpus", str(small_models.shuffled))
    assert code == 0, out
    assert "真实测试集(150)" in out and "宏F1" in out and "结论：不启用挑战者" in out, out
    assert "未启用" in out and active_version(state.engine) is None
    kept = _models_on_disk(state) - before
    assert len(kept) == 1  # kept for inspection, with the comparison in its card
    card = json.loads((state.settings.models_root / kept.pop() / "card.json").read_text(encoding="utf-8"))
    assert card["retrain"]["comparison"]["promote"] is False and card["retrain"]["comparison"]["reasons"]


def test_dry_run_then_a_better_challenger_is_promoted_with_the_corrections(
    make_learning_state: MakeState, small_models: SmallModels
) -> None:
    state = make_learning_state("bad")  # the champion was trained on shuffled labels
    now = dt.datetime.now(dt.UTC)
    with TestClient(create_app(state=state)) as client:
        dispatcher = auth(token_for(state, "dispatcher"))
        for days_ago, category in ((40, "garbage"), (30, "parking"), (2, "nuisance")):
            state.clock = lambda d=days_ago: now - dt.timedelta(days=d)
            ticket = post_ticket(client, payload(received_at=state.clock().isoformat())).json()
            r = client.post(
                f"/api/v1/tickets/{ticket['id']}/reroute",
                json={"category": category, "note": "分错了"},
                headers=dispatcher,
            )
            assert r.status_code == 200, r.text
    with Session(state.engine) as session:
        assert len(session.exec(select(RoutingLabel)).all()) == 3
    before = _models_on_disk(state)
    code, out = _retrain(state, "--dry-run")
    assert code == 0, out
    assert "纠错样本用于训练 2 条，留作评估 1 条" in out and "近期纠错(1)" in out and "试运行" in out
    assert _models_on_disk(state) == before and active_version(state.engine) is None
    code, out = _retrain(state)
    assert code == 0 and "结论：挑战者更好" in out and "已启用挑战者" in out, out
    (challenger,) = _models_on_disk(state) - before
    assert active_version(state.engine) == challenger
    card = json.loads((state.settings.models_root / challenger / "card.json").read_text(encoding="utf-8"))
    assert card["retrain"]["corrections_train"] == 2 and card["retrain"]["champion"] == small_models.bad
    assert card["metrics"]["real_test"]["n"] == 150 and card["data"]["rows"] == 12 * len(state.rules.categories) + 2
    with Session(state.engine) as session:
        kinds = [r.kind for r in session.exec(select(ModelActivation).order_by(col(ModelActivation.id)))]
    assert kinds == ["baseline", "retrain"]


def test_weekly_retrain_is_scheduled_only_when_switched_on(make_learning_state: MakeState) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    state = make_learning_state("good")
    for on in (False, True):
        state.settings.retrain_weekly = on
        scheduler = BackgroundScheduler(timezone="UTC")
        add_jobs(scheduler, state.engine, state.rules, state.settings)
        assert (scheduler.get_job("retrain") is not None) is on
