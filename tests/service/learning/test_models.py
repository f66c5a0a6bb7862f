"""Model versions: promote, rollback, refusal of a model that does not load, and the hot switch under load."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from classifier.artifact import load_model
from classifier.decision import Classifier
from service.app import create_app
from service.cli import app as cli
from service.learning.models import ModelActivation
from service.learning.registry import ModelStore, active_version, promote
from service.state import AppState
from service.tickets.models import Ticket
from tests.conftest import ROOT, SECRET, payload, post_ticket
from tests.service.learning.conftest import MakeState, SmallModels


def _env(state: AppState) -> dict[str, str]:
    s = state.settings
    return {
        "HOTLINE_DATABASE_URL": s.database_url,
        "HOTLINE_WEBHOOK_SECRET": SECRET,
        "HOTLINE_RULES": str(ROOT / "rules.yaml"),
        "HOTLINE_MODEL": str(s.model),
        "HOTLINE_MODELS_ROOT": str(s.models_root),
        "HOTLINE_RETRAIN_CORPUS": str(s.retrain_corpus),
        "HOTLINE_RETRAIN_REAL": str(s.retrain_real),
    }


def _hotline(state: AppState, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=_env(state))
    return result.exit_code, result.output


def test_promote_and_rollback(make_learning_state: MakeState, small_models: SmallModels) -> None:
    state = make_learning_state("good")
    good, bad = small_models.good, small_models.bad
    code, out = _hotline(state, "model", "list")
    assert code == 0 and f"当前启用 {good}" in out and bad in out and "未启用" in out
    code, out = _hotline(state, "model", "rollback")
    assert code == 2 and "没有可回退的上一版本" in out
    code, out = _hotline(state, "model", "promote", bad, "--by", "管理员老李")
    assert code == 0 and f"已启用模型 {bad}" in out, out
    assert active_version(state.engine) == bad
    code, out = _hotline(state, "model", "promote", bad)
    assert code == 2 and "已是当前模型" in out
    code, out = _hotline(state, "model", "list")
    assert f"当前启用 {bad}" in out and "曾启用" in out
    code, out = _hotline(state, "model", "rollback")
    assert code == 0 and f"已回退到模型 {good}" in out, out
    assert active_version(state.engine) == good
    # back at the first model: nothing further to roll back to
    code, out = _hotline(state, "model", "rollback")
    assert code == 2 and "没有可回退的上一版本" in out
    with Session(state.engine) as session:
        rows = session.exec(select(ModelActivation).order_by(col(ModelActivation.id))).all()
    assert [(r.kind, r.version) for r in rows] == [("baseline", good), ("promote", bad), ("rollback", good)]
    assert rows[1].actor == "管理员老李"


def test_a_model_that_does_not_load_is_refused(make_learning_state: MakeState, small_models: SmallModels) -> None:
    state = make_learning_state("good")
    root = state.settings.models_root
    tampered = root / small_models.bad
    with (tampered / "model.skops").open("ab") as fh:
        fh.write(b"\0")  # the checksum in the card no longer matches
    code, out = _hotline(state, "model", "promote", small_models.bad)
    assert code == 2 and f"模型 {small_models.bad} 无法加载，未启用" in out and "校验和" in out
    code, out = _hotline(state, "model", "promote", "no-such-version")
    assert code == 2 and "不存在" in out
    code, out = _hotline(state, "model", "promote", "../../etc")
    assert code == 2 and "格式无效" in out
    assert active_version(state.engine) is None


def test_the_configured_model_is_kept_for_rollback(make_learning_state: MakeState, small_models: SmallModels) -> None:
    state = make_learning_state("good")
    # the shipped model lives outside the root: the first change copies it in, so a rollback can return to it
    shipped = state.settings.models_root.parent / "shipped"
    shutil.copytree(state.settings.model, shipped)
    state.settings.model = shipped
    shutil.rmtree(state.settings.models_root / small_models.good)
    store = ModelStore(state.settings.models_root, shipped)
    with Session(state.engine) as session:
        promote(
            session=session,
            store=store,
            rules=state.rules,
            version=small_models.bad,
            actor="t",
            now=dt.datetime.now(dt.UTC),
        )
    assert (state.settings.models_root / small_models.good / "model.skops").is_file()


def _decided_by(ticket: Ticket, models: dict[str, Classifier]) -> bool:
    """The stored decision is exactly what its recorded version decides for this text."""
    assert ticket.model_version is not None
    text = f"{ticket.title}\x1e{ticket.content}" if ticket.title else ticket.content
    again = models[ticket.model_version].decide(text)
    stored = ticket.classification
    return (again.category, round(again.confidence, 9)) == (stored["category"], round(stored["confidence"], 9))


def test_hot_switch_under_concurrent_intake(make_learning_state: MakeState, small_models: SmallModels) -> None:
    state = make_learning_state("good", check_seconds=0.05)
    old, new = small_models.good, small_models.bad
    statuses: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    texts = [
        "楼下小饭店油烟直排，晚上还很吵。",
        "小区门口有人摆摊卖水果，占了人行道。",
        "楼道里堆满杂物，电动车在楼道充电。",
        "绿化带被人挖了种菜。",
    ]

    def post(client: TestClient, worker: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                r = post_ticket(client, payload(title="", content=f"{texts[i % len(texts)]}（{worker}-{i}）"))
                statuses.append(r.status_code)
            except BaseException as exc:  # a failure anywhere must fail the test, not vanish in a thread
                errors.append(exc)
                return
            i += 1

    with TestClient(create_app(state=state)) as client:
        threads = [threading.Thread(target=post, args=(client, w)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        store = ModelStore(state.settings.models_root, state.settings.model)
        with Session(state.engine) as session:
            promote(
                session=session, store=store, rules=state.rules, version=new, actor="t", now=dt.datetime.now(dt.UTC)
            )
        deadline = time.monotonic() + 30
        while state.classifier.version != new and time.monotonic() < deadline:
            time.sleep(0.05)
        switched = len(statuses)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors and state.classifier.version == new
    assert statuses and set(statuses) == {201} and len(statuses) > switched
    models = {v: Classifier(load_model(state.settings.models_root / v), state.rules) for v in (old, new)}
    with Session(state.engine) as session:
        tickets = session.exec(select(Ticket).order_by(col(Ticket.id))).all()
    assert len(tickets) == len(statuses)
    versions = [t.model_version for t in tickets]
    assert set(versions) == {old, new}
    # batches are classified one after another and stored in that order: the switch is a single point in the
    # sequence of tickets, old model before it, new model after it
    first_new = versions.index(new)
    assert all(v == new for v in versions[first_new:])
    assert all(_decided_by(t, models) for t in tickets)


def test_the_switch_keeps_serving_when_the_active_model_will_not_load(
    make_learning_state: MakeState, small_models: SmallModels, tmp_path: Path
) -> None:
    from service.learning.switch import ModelSwitch

    state = make_learning_state("good")
    store = ModelStore(state.settings.models_root, state.settings.model)
    with Session(state.engine) as session:
        promote(
            session=session,
            store=store,
            rules=state.rules,
            version=small_models.bad,
            actor="t",
            now=dt.datetime.now(dt.UTC),
        )
    # this host lost the directory after the promotion (say, a volume not mounted)
    shutil.rmtree(state.settings.models_root / small_models.bad)
    switch = ModelSwitch(state, store, interval=60)
    assert switch.check() is False and state.classifier.version == small_models.good
