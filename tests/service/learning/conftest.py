"""Fixtures for learning: two small models (a decent one and one trained on shuffled labels) and app states that
serve one of them from a private models root."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from classifier.artifact import load_model
from classifier.decision import Classifier
from service.app import build_state
from service.rules import ServiceRules
from service.settings import Settings
from service.state import AppState
from tests.conftest import ROOT, SECRET
from tests.service.learning.helpers import train_small, write_corpus, write_real


@dataclass(frozen=True)
class SmallModels:
    dir: Path
    good: str
    bad: str
    corpus: Path
    shuffled: Path
    real: Path


@pytest.fixture(scope="session")
def small_models(rules: ServiceRules, tmp_path_factory: pytest.TempPathFactory) -> SmallModels:
    base = tmp_path_factory.mktemp("small-models")
    corpus = write_corpus(base / "corpus.jsonl", 12)
    shuffled = write_corpus(base / "shuffled.jsonl", 12, shuffle_labels=True)
    real = write_real(base / "real.jsonl", {"train": 60, "calib": 150, "test": 150})
    good = train_small(corpus, rules, base, real=real)
    bad = train_small(shuffled, rules, base)
    return SmallModels(base, good, bad, corpus, shuffled, real)


MakeState = Callable[..., AppState]


@pytest.fixture
def make_learning_state(
    db_url: str, rules: ServiceRules, tmp_path: Path, small_models: SmallModels
) -> Iterator[MakeState]:
    """An app state serving `serving` (good / bad) from a models root holding both small models."""
    root = tmp_path / "models"
    root.mkdir()
    for version in (small_models.good, small_models.bad):
        shutil.copytree(small_models.dir / version, root / version)
    made: list[AppState] = []

    def make(serving: str = "good", check_seconds: float = 0.0) -> AppState:
        version = small_models.good if serving == "good" else small_models.bad
        classifier = Classifier(load_model(root / version), rules)
        settings = Settings(
            database_url=db_url,
            webhook_secret=SECRET,
            rules=ROOT / "rules.yaml",
            scheduler=False,
            model=root / version,
            models_root=root,
            model_check_seconds=check_seconds,
            retrain_corpus=small_models.corpus,
            retrain_real=small_models.real,
        )
        st = build_state(settings, rules=rules, classifier=classifier)
        made.append(st)
        return st

    yield make
    for st in made:
        st.engine.dispose()
