"""How far auto-dispatch precision can go on the real labels: out-of-fold decisions on the real train split only.

    .venv/bin/python bench/street_ceiling.py [--model models/street] [--alt-weight 0.5]

Five-fold cross-validation over the real train split (the hand-written corpus joins every fold's training), with the
shipped model's hyperparameters and the full decision (model + rules). The calib and test splits are not read.

For the operating point that auto-dispatches half of the non-`other` messages (the issue's coverage target) it prints
the office precision over all labels and over the clearly labelled ones, and how many of the wrong dispatches are
messages the labeller marked ambiguous; then the largest coverage whose precision reaches the target empirically, and
the largest a Clopper–Pearson bound at the rules' confidence would certify on this many messages. `--alt-weight W`
adds a second run where each ambiguous message also trains as its second-choice label at weight W (soft labels).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from classifier.calibrate import clopper_pearson_upper
from classifier.config import Rules, load_rules
from classifier.data import load_dataset, load_real
from classifier.decision import Decision
from classifier.evaluate import fold_classifier
from classifier.pipeline import PipelineParams, build_pipeline
from classifier.train import map_labels

ROOT = Path(__file__).resolve().parents[1]
FOLDS = 5
COVERAGE = 0.5


@dataclass
class Train:
    texts: list[str]
    labels: list[str]
    clear: np.ndarray
    alt: list[str | None]


def _real_train(path: Path, rules: Rules) -> Train:
    real = load_real(path)
    keep = [i for i, split in enumerate(real.splits) if split == "train"]
    return Train(
        texts=[real.texts[i] for i in keep],
        labels=map_labels([real.labels[i] for i in keep], rules),
        clear=np.array([real.clarity[i] == "clear" for i in keep], dtype=bool),
        alt=[
            real.alts[i] if real.clarity[i] == "ambiguous" and real.alts[i] in rules.categories else None for i in keep
        ],
    )


def _oof(
    train: Train, corpus: tuple[list[str], list[str]], rules: Rules, params: PipelineParams, alt_weight: float
) -> list[Decision]:
    base_x, base_y = corpus
    out: list[Decision | None] = [None] * len(train.labels)
    splitter = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=params.seed)
    for fit_idx, held_idx in splitter.split(train.texts, train.labels):
        x = base_x + [train.texts[i] for i in fit_idx]
        y = base_y + [train.labels[i] for i in fit_idx]
        w = [1.0] * len(x)
        for i in fit_idx:
            second = train.alt[i]
            if alt_weight > 0 and second is not None and second != train.labels[i]:
                x.append(train.texts[i])
                y.append(second)
                w.append(alt_weight)
        pipe = build_pipeline(user_words=rules.user_words(), boilerplate=rules.classifier.boilerplate, params=params)
        pipe.fit(x, y, model__sample_weight=np.asarray(w))
        decisions = fold_classifier(pipe, rules).decide_batch([train.texts[i] for i in held_idx])
        for i, d in zip(held_idx, decisions, strict=True):
            out[i] = d
    return [d for d in out if d is not None]


def _report(name: str, decisions: list[Decision], train: Train, rules: Rules) -> dict[str, float]:
    office = rules.category_office
    settings = rules.classifier
    target = settings.auto_dispatch_precision or 0.97
    confidence = settings.auto_dispatch_confidence
    truth = train.labels
    right = np.array([office(d.category) == office(t) for d, t in zip(decisions, truth, strict=True)])
    street = np.array([t != settings.fallback_category for t in truth])
    eligible = np.array([d.auto_eligible for d in decisions])
    score = np.array([d.office_confidence for d in decisions])
    best_empirical = best_certified = 0.0
    point: dict[str, float] = {}
    for threshold in np.round(np.arange(1.0, 0.0, -0.01), 2):
        sent = eligible & (score >= threshold)
        n = int(sent.sum())
        if not n:
            continue
        errors = int((sent & ~right).sum())
        share = float((sent & street).sum() / street.sum())
        if 1 - errors / n >= target:
            best_empirical = max(best_empirical, share)
        if clopper_pearson_upper(errors, n, confidence) <= 1 - target:
            best_certified = max(best_certified, share)
        if not point and share >= COVERAGE:
            clear_sent = sent & train.clear
            point = {
                "threshold": float(threshold),
                "dispatched": n,
                "errors": errors,
                "precision": round(1 - errors / n, 4),
                "errors_ambiguous": int((sent & ~right & ~train.clear).sum()),
                "precision_clear_only": round(float(right[clear_sent].mean()), 4),
                "street_share": round(share, 4),
            }
    print(f"{name}（真实 train {len(truth)} 条 {FOLDS} 折交叉验证，非“其他” {int(street.sum())} 条）")
    if point:
        print(
            f"  自动派出一半非“其他”工单时（阈值 {point['threshold']:.2f}）：派出 {point['dispatched']} 条，"
            f"错 {point['errors']} 条（其中 {point['errors_ambiguous']} 条标注为 ambiguous），科室准确率 "
            f"{point['precision']:.4f}；只看标注清晰的工单 {point['precision_clear_only']:.4f}"
        )
    print(f"  经验准确率 ≥ {target} 的最大覆盖：非“其他”工单的 {best_empirical:.1%}")
    print(f"  {confidence:.0%} 置信上界能证明 ≥ {target} 的最大覆盖（同样条数）：{best_certified:.1%}")
    return {**point, "best_empirical_share": round(best_empirical, 4), "best_certified_share": round(best_certified, 4)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "models/street"))
    parser.add_argument("--alt-weight", type=float, default=0.5, help="0 跳过软标签对照")
    args = parser.parse_args()
    rules: Rules = load_rules(ROOT / "rules.yaml")
    card = json.loads((Path(args.model) / "card.json").read_text(encoding="utf-8"))
    params = PipelineParams(**card["params"])
    train = _real_train(ROOT / "models/street/real_labels.jsonl", rules)
    hand = load_dataset(ROOT / "models/street/corpus.jsonl", text_cols=["text"], label_col="label")
    corpus = (list(hand.texts), map_labels(hand.labels, rules))
    result = {"shipped": _report("随附设置", _oof(train, corpus, rules, params, 0.0), train, rules)}
    if args.alt_weight > 0:
        soft = _oof(train, corpus, rules, params, args.alt_weight)
        result["soft"] = _report(f"软标签（第二选择权重 {args.alt_weight}）", soft, train, rules)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
