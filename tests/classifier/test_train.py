"""Training: deterministic, the card records what made the model, labels, frozen unlabelled features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifier.artifact import load_model
from classifier.config import Rules
from classifier.data import Dataset
from classifier.decision import Classifier
from classifier.pipeline import PipelineParams
from classifier.train import map_labels, train_model
from tests.classifier.conftest import SMALL


def test_training_is_deterministic(tmp_path: Path, rules: Rules, small_data: Dataset, small_model: Path) -> None:
    again = tmp_path / "again"
    train_model(small_data, rules=rules, out_dir=again, name="small", folds=3)
    a, b = load_model(small_model), load_model(again)
    texts = small_data.texts[:10]
    assert np.allclose(a.pipeline.predict_proba(texts), b.pipeline.predict_proba(texts))
    assert a.card["metrics"] == b.card["metrics"]
    assert a.card["data"]["class_counts"] == {c: 15 for c in SMALL}


def test_card_records_hash_versions_and_metrics(small_model: Path) -> None:
    card = json.loads((small_model / "card.json").read_text(encoding="utf-8"))
    assert card["data"]["sha256"] == "fixture"
    assert {"scikit-learn", "numpy", "scipy", "skops", "rjieba"} <= set(card["libraries"])
    assert 0 <= card["metrics"]["cv"]["model"]["macro_f1"] <= 1
    assert card["model_version"].startswith("small-")


def test_labels_may_be_category_names(rules: Rules) -> None:
    assert map_labels(["群租", "garbage"], rules) == ["group_renting", "garbage"]
    with pytest.raises(ValueError, match="不在规则文件的分类中"):
        map_labels(["外星人"], rules)


def test_unknown_model_type_refused(rules: Rules, small_data: Dataset, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="未知模型类型"):
        train_model(
            small_data, rules=rules, out_dir=tmp_path / "x", name="x", folds=3, params=PipelineParams(model="forest")
        )


def test_features_from_unlabelled_texts_are_frozen_and_round_trip(
    tmp_path: Path, rules: Rules, small_data: Dataset
) -> None:
    unlabelled = Dataset(texts=small_data.texts * 2, labels=[""] * 120, sha256="u", source="u")
    params = PipelineParams(lsa_components=5, title_repeat=1, strip_alnum=True, char_ngram_max=2)
    out = tmp_path / "u"
    card = train_model(small_data, rules=rules, out_dir=out, name="u", folds=3, params=params, unlabelled=unlabelled)
    assert card["unlabelled"] == {"sources": "u", "sha256": "u", "rows": 120}
    loaded = load_model(out)
    assert type(loaded.pipeline.named_steps["features"]).__name__ == "FrozenEstimator"
    clf = Classifier(loaded, rules)
    assert clf._fast is None  # the fast path declines what it cannot reproduce; the Pipeline answers
    decisions = clf.decide_batch(small_data.texts[:20])
    assert sum(d.model_category == y for d, y in zip(decisions, small_data.labels[:20], strict=True)) >= 15
