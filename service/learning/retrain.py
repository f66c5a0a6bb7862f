"""Retraining: a challenger from the hand-written corpus, the real labels and the stored corrections, judged
against the champion on the frozen real test split and on the most recent corrections (held out of training)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from classifier.artifact import CARD_FILE, load_model
from classifier.data import Dataset, RealDataset, load_dataset, load_real
from classifier.decision import Classifier
from classifier.evaluate import metrics
from classifier.pipeline import PipelineParams
from classifier.train import map_labels, train_model
from service.learning.labels import training_labels
from service.learning.models import RoutingLabel
from service.learning.registry import ModelRefusedError, ModelStore, current_version, loadable, promote
from service.rules import LearningRules, ServiceRules

log = logging.getLogger(__name__)
REAL_TEST = "real_test"
RECENT = "recent_corrections"
SET_LABELS = {REAL_TEST: "真实测试集", RECENT: "近期纠错"}


@dataclass(frozen=True)
class Corrections:
    train: list[RoutingLabel]
    recent: list[RoutingLabel]


def split_corrections(
    labels: Sequence[RoutingLabel], rules: ServiceRules, *, now: dt.datetime, days: int
) -> Corrections:
    """The last `days` of corrections are held out of training: both models are judged on them."""
    usable = [r for r in labels if r.category in rules.categories]
    cutoff = now - dt.timedelta(days=days)
    return Corrections([r for r in usable if r.at < cutoff], [r for r in usable if r.at >= cutoff])


def evaluate(
    classifier: Classifier, texts: Sequence[str], labels: Sequence[str], rules: ServiceRules
) -> dict[str, Any]:
    predicted = [d.category for d in classifier.decide_batch(list(texts))] if texts else []
    return metrics(list(labels), predicted, offices=rules.category_office) if texts else {"n": 0}


def _score(evaluation: dict[str, Any], name: str) -> float | None:
    if not evaluation.get("n"):
        return None
    return float(evaluation["macro_f1"] if name == REAL_TEST else evaluation["accuracy"])


def overall(evaluations: dict[str, dict[str, Any]]) -> float:
    """Mean of the real test split's macro-F1 and the recent corrections' accuracy (whichever exist)."""
    scores = [s for name, e in evaluations.items() if (s := _score(e, name)) is not None]
    return sum(scores) / len(scores) if scores else 0.0


@dataclass
class Verdict:
    promote: bool
    champion: float
    challenger: float
    reasons: list[str] = field(default_factory=list)


def judge(
    champion: dict[str, dict[str, Any]],
    challenger: dict[str, dict[str, Any]],
    learning: LearningRules,
    rules: ServiceRules,
) -> Verdict:
    """Better overall, and no category worse by more than the margin on any evaluation set."""
    verdict = Verdict(False, overall(champion), overall(challenger))
    if verdict.challenger <= verdict.champion + learning.min_gain:
        verdict.reasons.append(
            f"总体得分 {verdict.challenger:.4f} 未超过冠军 {verdict.champion:.4f}"
            + (f" + {learning.min_gain:g}" if learning.min_gain else "")
        )
    for name, before in champion.items():
        after = challenger.get(name, {})
        for category, stats in before.get("per_class", {}).items():
            if stats["support"] < learning.min_category_support:
                continue
            new = after.get("per_class", {}).get(category, {"f1": 0.0})["f1"]
            if stats["f1"] - new > learning.max_category_drop:
                label = rules.categories[category].name if category in rules.categories else category
                verdict.reasons.append(
                    f"「{label}」在{SET_LABELS[name]}上 F1 下降 {stats['f1'] - new:.4f}"
                    f"（{stats['f1']:.4f} → {new:.4f}，上限 {learning.max_category_drop:g}）"
                )
    verdict.promote = not verdict.reasons
    return verdict


def comparison_table(
    champion: dict[str, dict[str, Any]], challenger: dict[str, dict[str, Any]], verdict: Verdict, rules: ServiceRules
) -> str:
    """The Chinese comparison the operator reads."""
    lines = [f"{'评估集':<14} {'指标':<6}{'冠军':>9}{'挑战者':>9}{'变化':>9}"]
    for name, before in champion.items():
        after = challenger[name]
        title = f"{SET_LABELS[name]}({before.get('n', 0)})"
        if not before.get("n"):
            lines.append(f"{title:<14} （无数据）")
            continue
        for key, zh in (("macro_f1", "宏F1"), ("accuracy", "准确率"), ("office_accuracy", "科室准确率")):
            a, b = float(before[key]), float(after[key])
            lines.append(f"{title:<14} {zh:<6}{a:>9.4f}{b:>9.4f}{b - a:>+9.4f}")
    gain = verdict.challenger - verdict.champion
    lines.append(f"{'总体得分':<21}{verdict.champion:>9.4f}{verdict.challenger:>9.4f}{gain:>+9.4f}")
    lines.append("")
    lines.append("各分类 F1（冠军 → 挑战者）：")
    for code, category in rules.categories.items():
        cells = []
        for name, before in champion.items():
            b = before.get("per_class", {}).get(code)
            a = challenger[name].get("per_class", {}).get(code)
            if b is None and a is None:
                continue
            f1_b, f1_a = (b or {"f1": 0.0})["f1"], (a or {"f1": 0.0})["f1"]
            support = (b or a or {"support": 0})["support"]
            cells.append(f"{SET_LABELS[name]} {f1_b:.3f} → {f1_a:.3f}（{f1_a - f1_b:+.3f}，{support} 条）")
        if cells:
            lines.append(f"  {category.name}：" + "；".join(cells))
    lines.append("")
    if verdict.promote:
        lines.append("结论：挑战者更好，且没有分类明显变差。")
    else:
        lines.append("结论：不启用挑战者。原因：" + "；".join(verdict.reasons))
    return "\n".join(lines)


@dataclass
class RetrainResult:
    champion_version: str
    challenger_version: str
    verdict: Verdict
    table: str
    promoted: bool
    corrections_used: int
    corrections_held_out: int


def _params(card: dict[str, Any]) -> PipelineParams:
    try:
        return PipelineParams(**card.get("params", {}))
    except TypeError:  # the champion was trained with options this version no longer has
        return PipelineParams()


def _training_data(corpus: Dataset, corrections: Sequence[RoutingLabel]) -> Dataset:
    digest = hashlib.sha256(corpus.sha256.encode())
    for row in corrections:
        digest.update(f"{row.id}:{row.category}\n".encode())
    return Dataset(
        texts=[*corpus.texts, *(r.text for r in corrections)],
        labels=[*corpus.labels, *(str(r.category) for r in corrections)],
        sha256=digest.hexdigest(),
        source=f"{Path(corpus.source).name}+纠错{len(corrections)}条",
    )


def retrain(
    *,
    engine: Engine,
    rules: ServiceRules,
    learning: LearningRules,
    store: ModelStore,
    corpus_path: Path,
    real_path: Path | None,
    now: dt.datetime,
    folds: int = 5,
    dry_run: bool = False,
    actor: str = "retrain",
    notes: dict[str, Any] | None = None,
) -> RetrainResult:
    """Train a challenger, judge it against the active model and promote it when it wins (unless dry_run)."""
    if rules.submodels:
        # corrections name the final (second-level) category: retraining the first level from them would be wrong
        raise ModelRefusedError(
            "两级模型（规则文件含 submodels）暂不支持按派单员纠正自动重训；请按模型说明卡的命令重新训练"
        )
    with Session(engine, expire_on_commit=False) as session:
        champion_version = current_version(session=session, store=store)
        labels = training_labels(session=session)
    champion_dir = store.dir_of(champion_version)
    if not (champion_dir / CARD_FILE).is_file() and champion_version == store.configured_version():
        champion_dir = store.configured
    champion = loadable(champion_dir, rules, champion_version)
    corrections = split_corrections(labels, rules, now=now, days=learning.holdout_days)
    corpus = load_dataset(corpus_path, text_cols=["text"], label_col="label")
    real: RealDataset | None = load_real(real_path) if real_path is not None else None
    staging = store.staging_dir()
    try:
        card = train_model(
            _training_data(corpus, corrections.train),
            rules=rules,
            out_dir=staging,
            name=str(champion.model.card.get("name") or "street"),
            params=_params(champion.model.card),
            folds=folds,
            real=real,
            notes={
                "retrain": {
                    "champion": champion_version,
                    "corrections_train": len(corrections.train),
                    "corrections_held_out": len(corrections.recent),
                    "holdout_days": learning.holdout_days,
                    **(notes or {}),
                }
            },
        )
        challenger = Classifier(load_model(staging), rules)
        sets: dict[str, tuple[list[str], list[str]]] = {}
        if real is not None:
            test = real.part("test")
            sets[REAL_TEST] = (test.texts, map_labels(test.labels, rules))
        sets[RECENT] = ([r.text for r in corrections.recent], [str(r.category) for r in corrections.recent])
        before = {name: evaluate(champion, t, y, rules) for name, (t, y) in sets.items()}
        after = {name: evaluate(challenger, t, y, rules) for name, (t, y) in sets.items()}
        verdict = judge(before, after, learning, rules)
        table = comparison_table(before, after, verdict, rules)
        version = str(card["model_version"])
        if dry_run:
            shutil.rmtree(staging, ignore_errors=True)
        else:
            _add_test_metrics(staging, after, before, verdict)
            store.keep(staging, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    promoted = False
    if verdict.promote and not dry_run and version != champion_version:
        with Session(engine, expire_on_commit=False) as session:
            promote(session=session, store=store, rules=rules, version=version, actor=actor, now=now, kind="retrain")
        promoted = True
    log.info("retrain_done", extra={"challenger": version, "promoted": promoted, "dry_run": dry_run})
    return RetrainResult(
        champion_version, version, verdict, table, promoted, len(corrections.train), len(corrections.recent)
    )


def _brief(evaluation: dict[str, Any]) -> dict[str, Any]:
    return {k: evaluation[k] for k in ("n", "accuracy", "macro_f1", "office_accuracy", "per_class") if k in evaluation}


def _add_test_metrics(
    model_dir: Path, after: dict[str, dict[str, Any]], before: dict[str, dict[str, Any]], verdict: Verdict
) -> None:
    """The held-out results go into the challenger's card (the checksum covers model.skops only)."""
    path = model_dir / CARD_FILE
    card = json.loads(path.read_text(encoding="utf-8"))
    card.setdefault("metrics", {}).update({name: _brief(e) for name, e in after.items()})
    card["retrain"]["comparison"] = {
        "champion": {name: _brief(e) for name, e in before.items()},
        "champion_score": round(verdict.champion, 4),
        "challenger_score": round(verdict.challenger, 4),
        "promote": verdict.promote,
        "reasons": verdict.reasons,
    }
    path.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
