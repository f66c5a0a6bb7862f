"""Small models trained inside the tests (seconds, not minutes), and tiny copies of the training data."""

from __future__ import annotations

import json
import random
import shutil
from collections import defaultdict
from pathlib import Path

from classifier.data import load_dataset
from classifier.pipeline import PipelineParams
from classifier.train import train_model
from service.rules import ServiceRules
from tests.conftest import ROOT

CORPUS = ROOT / "models" / "street" / "corpus.jsonl"
REAL = ROOT / "models" / "street" / "real_labels.jsonl"
# small and quick: no calibration folds beyond the minimum, no word bigrams
PARAMS = {"word_ngram_max": 1, "char_ngram_max": 2, "calibration_folds": 2}


def write_corpus(path: Path, per_class: int, *, shuffle_labels: bool = False, seed: int = 0) -> Path:
    """The first `per_class` texts of every category of the shipped corpus; labels shuffled on request."""
    by_label: dict[str, list[dict[str, str]]] = defaultdict(list)
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            by_label[row["label"]].append({"text": row["text"], "label": row["label"]})
    rows = [r for label in sorted(by_label) for r in by_label[label][:per_class]]
    if shuffle_labels:
        labels = [r["label"] for r in rows]
        random.Random(seed).shuffle(labels)
        rows = [{"text": r["text"], "label": y} for r, y in zip(rows, labels, strict=True)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_real(path: Path, per_split: dict[str, int]) -> Path:
    """A prefix of each split of the real labels (the test split stays a fixed, frozen sample)."""
    taken: dict[str, int] = defaultdict(int)
    out = []
    for line in REAL.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if taken[row["split"]] < per_split.get(row["split"], 0):
            taken[row["split"]] += 1
            out.append(line + "\n")
    path.write_text("".join(out), encoding="utf-8")
    return path


def train_small(
    corpus: Path, rules: ServiceRules, root: Path, *, real: Path | None = None, name: str = "street"
) -> str:
    """Train into `root/<version>/` and return the version."""
    from classifier.data import load_real

    staging = root / f".staging-{random.random():.8f}"
    card = train_model(
        load_dataset(corpus, text_cols=["text"], label_col="label"),
        rules=rules,
        out_dir=staging,
        name=name,
        params=PipelineParams(**PARAMS),
        folds=2,
        real=load_real(real) if real else None,
    )
    version = str(card["model_version"])
    if (root / version).exists():
        shutil.rmtree(staging)
    else:
        staging.rename(root / version)
    return version
