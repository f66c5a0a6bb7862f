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

from classifier.artifact import LoadedModel, ModelError, load_model, save_model
from classifier.calibrate import conformal_lower_cutoff, grid_start, select_threshold
from classifier.config import Rules
from classifier.data import DataError, Dataset, RealDataset
from classifier.decision import Classifier, Decision
from classifier.evaluate import cross_validate, dispatch_summary, metrics
from classifier.pipeline import PipelineParams, build_pipeline
from classifier.twolevel import TwoLevelClassifier


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


def calibrate_dispatch(
    pipeline: Pipeline,
    rules: Rules,
    calib: Dataset,
    *,
    pilot: Sequence[Decision],
    calib_labels: Sequence[str],
    pilot_texts: Sequence[str] = (),
) -> dict[str, Any]:
    """The auto-dispatch section of the card: out-of-scope cut-off (from the pilot), threshold (on calib).

    With sub-models the pilot's first-level decisions are combined with the second level (on `pilot_texts`), so
    that the grid starts where the combined score, not the first level's, dispatches enough tickets."""
    settings = rules.classifier
    precision = settings.auto_dispatch_precision
    if precision is None:
        raise DataError("规则文件 classifier.auto_dispatch_precision 未设置，无法校准自动派单阈值")
    confidence = settings.auto_dispatch_confidence
    min_known = conformal_lower_cutoff([d.known_share for d in pilot], settings.out_of_scope_alpha)
    out_of_scope = {
        "signal": "known_share",
        "min_known_share": round(min_known, 4),
        "alpha": settings.out_of_scope_alpha,
        "n": len(pilot),
        "method": "conformal lower quantile of out-of-fold known-word shares of the real train split",
    }
    probe = {"precision": precision, "confidence": confidence, "threshold": 0.0, "out_of_scope": out_of_scope}
    classes = [str(c) for c in pipeline.classes_]
    model = LoadedModel(pipeline, {"model_version": "calib", "classes": classes, "auto_dispatch": probe}, Path("."))
    classifier = _calibration_classifier(model, rules)
    decisions = classifier.decide_batch(calib.texts)
    office = rules.category_office
    correct = [office(d.category) == office(y) for d, y in zip(decisions, calib_labels, strict=True)]
    scored = classifier.refine_batch(pilot, pilot_texts) if isinstance(classifier, TwoLevelClassifier) else pilot
    start = grid_start(
        [d.office_confidence for d in scored],
        [s.auto_eligible and d.known_share >= min_known for s, d in zip(scored, pilot, strict=True)],
        n_calib=len(decisions),
        precision=precision,
        confidence=confidence,
    )
    choice = select_threshold(
        [d.office_confidence for d in decisions],
        correct,
        [d.auto_eligible for d in decisions],
        precision=precision,
        confidence=confidence,
        start=start,
    )
    return {
        "precision": precision,
        "confidence": confidence,
        "threshold": choice.threshold,
        "score": "office_confidence",
        "method": "Learn-then-Test: fixed-sequence binomial tests (Clopper–Pearson) down a 0.01 grid",
        "guarantee": {
            "n_calib": choice.n_calib,
            "dispatched": choice.dispatched,
            "errors": choice.errors,
            "upper_error_bound": choice.upper_error_bound,
            "grid_start": choice.grid_start,
        },
        "tested": choice.tested,
        "out_of_scope": out_of_scope,
        "calib_curve": dispatch_summary(decisions, calib_labels, rules)["curve"],
        "calib_metrics": {
            k: v
            for k, v in metrics(calib_labels, [d.category for d in decisions], offices=office).items()
            if k in ("n", "accuracy", "macro_f1", "office_accuracy")
        },
    }


def _calibration_classifier(model: LoadedModel, rules: Rules) -> Classifier:
    """The decision the threshold guarantees: with sub-models, the combined two-level one."""
    if not rules.submodels:
        return Classifier(model, rules)
    try:
        subs = {name: load_model(sub.model) for name, sub in rules.submodels.items()}
    except ModelError as exc:
        raise DataError(f"两级模型校准需要子模型：{exc}") from exc
    return TwoLevelClassifier(model, rules, subs)


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
    real: RealDataset | None = None,
    real_weight: float = 1.0,
) -> dict[str, Any]:
    """Cross-validate, fit on all training data, calibrate auto-dispatch, save model.skops + card.json.

    With `real`, its train split joins `data` (weighted `real_weight`), its calib split sets the auto-dispatch
    threshold, and its test split is not read at all.

    With sub-models in the rules file, the model learns the first level only; the threshold is calibrated on the
    combined two-level decision, against the calib split's `target` (the final category) where given."""
    params = params or PipelineParams()
    full_rules, rules = rules, rules.first_level()
    labels = map_labels(data.labels, rules)
    texts = list(data.texts)
    weights = [1.0] * len(texts)
    real_train = real.part("train") if real else None
    if real_train is not None:
        texts += real_train.texts
        labels += map_labels(real_train.labels, rules)
        weights += [real_weight] * len(real_train.texts)
    counts = Counter(labels)
    too_few = {c: n for c, n in counts.items() if n < folds}
    if too_few:
        raise DataError(f"每个类别至少需要 {folds} 条样本才能做 {folds} 折交叉验证，不足的类别: {too_few}")
    build = pipeline_factory(rules, params, unlabelled.texts if unlabelled else None)
    oof: list[Decision | None] = []
    cv = cross_validate(
        texts,
        labels,
        build=build,
        rules=rules,
        folds=folds,
        seed=seed,
        progress=progress,
        weights=weights,
        decisions_out=oof,
    )
    pipeline = build().fit(texts, labels, model__sample_weight=weights)
    auto_dispatch = None
    if real is not None and rules.classifier.auto_dispatch_precision is not None:
        real_oof = zip(oof[len(data.texts) :], texts[len(data.texts) :], strict=True)
        pairs = [(d, t) for d, t in real_oof if d is not None]
        calib = real.part("calib", targets=True)
        auto_dispatch = calibrate_dispatch(
            pipeline,
            full_rules,
            calib,
            pilot=[d for d, _ in pairs],
            pilot_texts=[t for _, t in pairs],
            calib_labels=map_labels(calib.labels, full_rules),
        )
    card = {
        "name": name,
        "trained_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "rules_profile": rules.profile,
        "submodels": {name: sub.model for name, sub in full_rules.submodels.items()} or None,
        "data": {
            "source": Path(data.source).name,
            "sha256": data.sha256,
            "rows": len(data.texts),
            "class_counts": dict(sorted(Counter(map_labels(data.labels, rules)).items())),
        },
        "real": (
            {
                "source": Path(real.source).name,
                "sha256": real.sha256,
                "rows": {s: real.splits.count(s) for s in ("train", "calib", "test")},
                "train_class_counts": dict(sorted(Counter(real_train.labels).items())),
                "weight": real_weight,
                "used": "train split: fitting; calib split: auto-dispatch threshold; test split: never read",
            }
            if real is not None and real_train is not None
            else None
        ),
        "params": params.as_dict(),
        "unlabelled": (
            {"sources": unlabelled.source, "sha256": unlabelled.sha256, "rows": len(unlabelled.texts)}
            if unlabelled
            else None
        ),
        "metrics": {"cv": cv},
        "auto_dispatch": auto_dispatch,
        **(notes or {}),
    }
    return save_model(pipeline, card, out_dir)
