"""The saved model: round trip, and a clear refusal of tampered, incompatible, missing or unsafe artifacts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from classifier.artifact import ModelError, load_model
from classifier.config import Rules, load_rules
from classifier.data import Dataset
from classifier.decision import Classifier
from tests.classifier.conftest import ROOT


def test_round_trip_predicts_the_same(small_model: Path, small_data: Dataset, rules: Rules) -> None:
    loaded = load_model(small_model)
    clf = Classifier(loaded, rules)
    decisions = clf.decide_batch(small_data.texts[:20])
    assert sum(d.model_category == y for d, y in zip(decisions, small_data.labels[:20], strict=True)) >= 16


def test_tampered_artifact_refused(tmp_path: Path, small_model: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_model, copy)
    with (copy / "model.skops").open("ab") as fh:
        fh.write(b"x")
    with pytest.raises(ModelError, match="校验和"):
        load_model(copy)


def test_incompatible_versions_refused(tmp_path: Path, small_model: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_model, copy)
    card = json.loads((copy / "card.json").read_text(encoding="utf-8"))
    card["libraries"]["scikit-learn"] = "0.20.0"
    (copy / "card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError, match=r"scikit-learn 0\.20\.0"):
        load_model(copy)


def test_missing_model_and_foreign_rules_refused(tmp_path: Path, small_model: Path) -> None:
    with pytest.raises(ModelError, match="缺少"):
        load_model(tmp_path)
    # the district's first level has no street categories (those are its second level's)
    district = load_rules(ROOT / "examples" / "district-rules.yaml").first_level()
    with pytest.raises(ModelError, match="不匹配"):
        Classifier(load_model(small_model), district)


def test_untrusted_types_refused(tmp_path: Path, small_model: Path) -> None:
    import zipfile

    import skops.io as sio

    from classifier.artifact import sha256_file

    copy = tmp_path / "copy"
    shutil.copytree(small_model, copy)
    sio.dump({"evil": shutil.rmtree}, copy / "model.skops")
    card = json.loads((copy / "card.json").read_text(encoding="utf-8"))
    card["model_sha256"] = sha256_file(copy / "model.skops")
    (copy / "card.json").write_text(json.dumps(card), encoding="utf-8")
    assert zipfile.is_zipfile(copy / "model.skops")
    with pytest.raises(ModelError, match="不受信任"):
        load_model(copy)
