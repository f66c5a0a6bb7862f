"""The three street-model targets on the frozen real test split, plus the hand-written holdout.

    .venv/bin/python bench/street_real.py [--model models/street]

Prints: office precision of auto-dispatched tickets (target ≥ 0.97), office accuracy on clearly labelled messages
(model + rules, target ≥ 0.90), share of non-`other` messages dispatched without review (target ≥ 0.5); and for the
real test split and bench/data/street_holdout.jsonl the office accuracy, accuracy and macro-F1 of the model alone and
of model + rules.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from classifier.artifact import load_model
from classifier.config import load_rules
from classifier.data import load_dataset, load_real
from classifier.decision import Classifier
from classifier.evaluate import dispatch_summary, metrics

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "models/street"))
    args = parser.parse_args()
    rules = load_rules(ROOT / "rules.yaml")
    clf = Classifier(load_model(args.model), rules)
    office = rules.category_office
    real = load_real(ROOT / "models/street/real_labels.jsonl")
    test = real.part("test")
    decisions = clf.decide_batch(test.texts)
    auto = dispatch_summary(decisions, test.labels, rules)
    clear = real.part("test", clear_only=True)
    clear_m = metrics(clear.labels, [d.category for d in clf.decide_batch(clear.texts)], offices=office)
    print(f"模型 {clf.version}；真实测试集 {len(test.labels)} 条（非“其他” {auto['street']} 条）")
    print(f"1. 自动派单科室准确率 {auto['office_precision']:.4f}（自动派出 {auto['dispatched']} 条）目标 ≥ 0.97")
    print(f"2. 标注清晰工单科室准确率 {clear_m['office_accuracy']:.4f}（{clear_m['n']} 条）目标 ≥ 0.90")
    print(f"3. 非“其他”类自动派出比例 {auto['street_auto_share']:.4f} 目标 ≥ 0.5")
    holdout = load_dataset(ROOT / "bench/data/street_holdout.jsonl", text_cols=["text"], label_col="label")
    rows = {}
    for name, data in (("real-test", test), ("holdout", holdout)):
        ds = clf.decide_batch(data.texts)
        for part, pred in (("model", [d.model_category for d in ds]), ("model+rules", [d.category for d in ds])):
            m = metrics(data.labels, pred, offices=office)
            rows[f"{name}/{part}"] = {k: m[k] for k in ("office_accuracy", "accuracy", "macro_f1")}
            scores = f"科室准确率 {m['office_accuracy']:.4f} 准确率 {m['accuracy']:.4f} 宏F1 {m['macro_f1']:.4f}"
            print(f"{name:10} {part:12} {scores}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
