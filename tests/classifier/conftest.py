"""Shared fixtures of the classifier tests: a small corpus and a model trained on it once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier.config import Rules
from classifier.data import Dataset, load_dataset
from classifier.train import train_model

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "models" / "street" / "corpus.jsonl"
SMALL = ("group_renting", "garbage", "parking", "greenery")


@pytest.fixture(scope="session")
def small_data() -> Dataset:
    full = load_dataset(CORPUS, text_cols=["text"], label_col="label")
    picked = [(t, y) for t, y in zip(full.texts, full.labels, strict=True) if y in SMALL]
    per: dict[str, int] = {}
    rows = []
    for t, y in picked:
        if per.get(y, 0) < 15:
            per[y] = per.get(y, 0) + 1
            rows.append((t, y))
    return Dataset(texts=[t for t, _ in rows], labels=[y for _, y in rows], sha256="fixture", source="fixture")


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory, rules: Rules, small_data: Dataset) -> Path:
    out = tmp_path_factory.mktemp("m") / "small"
    train_model(small_data, rules=rules, out_dir=out, name="small", folds=3)
    return out
