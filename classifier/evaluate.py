"""Evaluation: accuracy, macro-F1, per-class scores, confusion matrix and the auto-dispatch curve."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from tqdm import tqdm

from classifier.artifact import LoadedModel
from classifier.config import Rules
from classifier.decision import Classifier, Decision
from classifier.keywords import rules_only

THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 0.95)
# office-confidence thresholds of the coverage–precision curve
DISPATCH_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.92, 0.94, 0.96, 0.98)


def metrics(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    confidence: Sequence[float] | None = None,
    *,
    offices: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """All scores for one set of predictions; `confidence` adds the auto-dispatch curve, `offices` (category →
    office) the office accuracy."""
    labels = sorted(set(y_true) | set(y_pred))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    result: dict[str, Any] = {
        "n": len(y_true),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(
            float(f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0)), 4
        ),
        "per_class": {
            label: {
                "precision": round(float(p), 4),
                "recall": round(float(r), 4),
                "f1": round(float(f), 4),
                "support": int(s),
            }
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion": {"labels": labels, "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
    }
    if offices is not None:
        right = [offices(p) == offices(t) for t, p in zip(y_true, y_pred, strict=True)]
        result["office_accuracy"] = round(sum(right) / len(right), 4) if right else 0.0
    if confidence is not None:
        result["auto_dispatch"] = auto_dispatch_curve(y_true, y_pred, confidence)
    return result


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def dispatch_summary(decisions: Sequence[Decision], labels: Sequence[str], rules: Rules) -> dict[str, Any]:
    """What reaches an office without review, and how often it is the right office.

    `street_auto_share` is the share of the tickets whose true category is not the fallback (`other`) that are
    dispatched automatically. The curve varies the office-confidence threshold over the eligible tickets (no other
    review reason)."""
    office = rules.category_office
    fallback = rules.classifier.fallback_category
    right = np.array([office(d.category) == office(y) for d, y in zip(decisions, labels, strict=True)], dtype=bool)
    street = np.array([y != fallback for y in labels], dtype=bool)
    auto = np.array([not d.needs_review for d in decisions], dtype=bool)
    eligible = np.array([d.auto_eligible for d in decisions], dtype=bool)
    score = np.array([d.office_confidence for d in decisions], dtype=float)

    def point(mask: np.ndarray[Any, Any]) -> dict[str, float]:
        n = int(mask.sum())
        return {
            "dispatched": n,
            "auto_share": _share(n, len(labels)),
            "office_precision": _share(int(right[mask].sum()), n),
            "street_auto_share": _share(int((mask & street).sum()), int(street.sum())),
        }

    curve = [{"threshold": t, **point(eligible & (score >= t))} for t in DISPATCH_THRESHOLDS]
    return {"n": len(labels), "street": int(street.sum()), **point(auto), "curve": curve}


def auto_dispatch_curve(
    y_true: Sequence[str], y_pred: Sequence[str], confidence: Sequence[float]
) -> list[dict[str, float]]:
    """For each threshold: the share of tickets dispatched without review and the accuracy among them."""
    truth = np.asarray(y_true)
    pred = np.asarray(y_pred)
    conf = np.asarray(confidence, dtype=float)
    curve = []
    for threshold in THRESHOLDS:
        auto = conf >= threshold
        share = float(auto.mean()) if len(conf) else 0.0
        acc = float((truth[auto] == pred[auto]).mean()) if auto.any() else 0.0
        curve.append({"threshold": threshold, "auto_share": round(share, 4), "accuracy": round(acc, 4)})
    return curve


def fold_classifier(pipeline: Pipeline, rules: Rules) -> Classifier:
    """The full decision (model + rules) around a pipeline fitted in memory, e.g. on one cross-validation fold."""
    classes = [str(c) for c in pipeline.classes_]
    model = LoadedModel(pipeline=pipeline, card={"model_version": "cv", "classes": classes}, path=Path("<cv>"))
    return Classifier(model, rules)


def cross_validate(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    build: Callable[[], Pipeline],
    rules: Rules,
    folds: int = 5,
    seed: int = 0,
    progress: bool = False,
    weights: Sequence[float] | None = None,
    decisions_out: list[Decision | None] | None = None,
) -> dict[str, Any]:
    """Stratified K-fold: scores of the model alone, of the combined decision, and of the rules alone.

    `weights` are sample weights for fitting; `decisions_out`, when given, receives every text's out-of-fold
    decision (used to set the out-of-scope cut-off and the start of the threshold grid)."""
    x = np.asarray(texts, dtype=object)
    y = np.asarray(labels, dtype=object)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    if decisions_out is not None:
        decisions_out[:] = [None] * len(y)
    model_pred = np.empty(len(y), dtype=object)
    model_conf = np.zeros(len(y))
    final_pred = np.empty(len(y), dtype=object)
    final_conf = np.zeros(len(y))
    fold_f1: list[float] = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(x, y))
    for train_idx, test_idx in tqdm(splits, desc="交叉验证", disable=not progress, unit="折"):
        pipeline = build().fit(list(x[train_idx]), list(y[train_idx]), model__sample_weight=w[train_idx])
        decisions = fold_classifier(pipeline, rules).decide_batch(list(x[test_idx]))
        for i, d in zip(test_idx, decisions, strict=True):
            if decisions_out is not None:
                decisions_out[i] = d
            model_pred[i] = d.model_category
            model_conf[i] = d.probabilities[d.model_category]
            final_pred[i] = d.category
            final_conf[i] = d.confidence
        fold_f1.append(float(f1_score(y[test_idx], model_pred[test_idx], average="macro", zero_division=0)))
    rules_pred = rules_only(rules, list(texts))
    return {
        "folds": folds,
        "seed": seed,
        "model": {
            **metrics(list(y), list(model_pred), list(model_conf), offices=rules.category_office),
            "fold_macro_f1": [round(f, 4) for f in fold_f1],
        },
        "decision": metrics(list(y), list(final_pred), list(final_conf), offices=rules.category_office),
        "rules_only": metrics(list(y), rules_pred, offices=rules.category_office),
    }


def evaluate_model(classifier: Classifier, texts: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Scores of a trained model on held-out data: model alone, combined decision, rules alone, and auto-dispatch
    (what goes out without review, at the model's calibrated threshold, and the coverage–precision curve)."""
    decisions = classifier.decide_batch(list(texts))
    office = classifier.rules.category_office
    calibrated = classifier.auto_dispatch or {}
    return {
        "model_version": classifier.version,
        "model": metrics(
            labels,
            [d.model_category for d in decisions],
            [d.probabilities[d.model_category] for d in decisions],
            offices=office,
        ),
        "decision": metrics(labels, [d.category for d in decisions], [d.confidence for d in decisions], offices=office),
        "rules_only": metrics(labels, rules_only(classifier.rules, list(texts)), offices=office),
        "dispatch": {
            **dispatch_summary(decisions, labels, classifier.rules),
            "precision": calibrated.get("precision"),
            "confidence": calibrated.get("confidence"),
            "threshold": calibrated.get("threshold"),
            "guarantee": calibrated.get("guarantee"),
            "out_of_scope": calibrated.get("out_of_scope"),
        },
    }
