"""Training a model directory from labelled data: cross-validated metrics, final fit, artifact and card."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from classifier.artifact import save_model
from classifier.config import Rules
from classifier.data import DataError, Dataset
from classifier.evaluate import cross_validate
from classifier.pipeline import PipelineParams, build_pipeline


def map_labels(labels: Sequence[str], rules: Rules) -> list[str]:
    """Data labels → category codes: a code as is, or a category's 名称 (e.g. 群租 → group_renting)."""
    by_name = {cat.name: code for code, cat in rules.categories.items()}
    mapped: list[str] = []
    unknown: Counter[str] = Counter()
    for label in labels:
        code = label if label in rules.categories else by_name.get(label)
        if code is None:
            unknown[label] += 1
            continue
        mapped.append(code)
    if unknown:
        known = ", ".join(f"{c}({cat.name})" for c, cat in rules.categories.items())
        raise DataError(f"数据中的标签不在规则文件的分类中: {dict(unknown)}；已知分类: {known}")
    return mapped


def pipeline_factory(rules: Rules, params: PipelineParams, unlabelled: Sequence[str] | None = None) -> Any:
    """A builder of fresh pipelines; features learned from unlabelled texts are fitted once and shared (frozen)."""
    template = build_pipeline(
        user_words=rules.user_words(), boilerplate=rules.classifier.boilerplate, params=params, unlabelled=unlabelled
    )

    def build() -> Pipeline:
        return Pipeline(
            [(name, step if isinstance(step, FrozenEstimator) else clone(step)) for name, step in template.steps]
        )

    return build


def train_model(
    data: Dataset,
    *,
    rules: Rules,
    out_dir: Path,
    name: str,
    params: PipelineParams | None = None,
    folds: int = 5,
    seed: int = 0,
    progress: bool = False,
    notes: dict[str, Any] | None = None,
    unlabelled: Dataset | None = None,
) -> dict[str, Any]:
    """Cross-validate, fit on all data, save model.skops + card.json; returns the card."""
    params = params or PipelineParams()
    labels = map_labels(data.labels, rules)
    counts = Counter(labels)
    too_few = {c: n for c, n in counts.items() if n < folds}
    if too_few:
        raise DataError(f"每个类别至少需要 {folds} 条样本才能做 {folds} 折交叉验证，不足的类别: {too_few}")
    build = pipeline_factory(rules, params, unlabelled.texts if unlabelled else None)
    cv = cross_validate(data.texts, labels, build=build, rules=rules, folds=folds, seed=seed, progress=progress)
    pipeline = build().fit(data.texts, labels)
    card = {
        "name": name,
        "trained_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "rules_profile": rules.profile,
        "data": {
            "source": Path(data.source).name,
            "sha256": data.sha256,
            "rows": len(labels),
            "class_counts": dict(sorted(counts.items())),
        },
        "params": params.as_dict(),
        "unlabelled": (
            {"sources": unlabelled.source, "sha256": unlabelled.sha256, "rows": len(unlabelled.texts)}
            if unlabelled
            else None
        ),
        "metrics": {"cv": cv},
        **(notes or {}),
    }
    return save_model(pipeline, card, out_dir)
