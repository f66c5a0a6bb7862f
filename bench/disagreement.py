"""The keyword/model disagreement flag ("关键词规则与模型判断不一致") before and after the strong-evidence criterion.

    .venv/bin/python bench/disagreement.py [--model models/street]

Before: flagged whenever the rules' top category differs from the model's top category. After: flagged only when the
rules' evidence is strong (an override phrase, or a keyword score at least `disagreement_rule_margin` above the model
category's) and the decided category leads the other side by less than `disagreement_max_lead`, for tickets not
already below `review_threshold` (see rules.yaml `classifier:`).

A ticket is misrouted when the decision's office differs from the office of its label. For each part: how many
tickets the flag raises, how many of those are misrouted (precision as an error detector), how many of all misrouted
tickets it flags (recall), and the same among the tickets that have no other review reason — there the flag alone
decides whether the ticket may go out without review; and how many misrouted tickets any review reason other than
the auto-dispatch threshold holds back. The thresholds are chosen on the calib split (the train split
and the hand-written corpus are training data: the model is right on almost all of them): the grid point with the
best F1 among calib tickets with no other review reason, fewer flags breaking ties. Test and corpus are only
reported. Runs in about 30 s.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from classifier.artifact import load_model
from classifier.config import Rules, load_rules
from classifier.data import load_dataset, load_real
from classifier.decision import Classifier, Decision, _softmax_boost, contested
from classifier.keywords import KeywordMatcher, RuleMatch
from classifier.normalize import compile_boilerplate, normalize_text

ROOT = Path(__file__).resolve().parents[1]
MARGINS = (0.4, 0.6, 1.0, 1.4, 2.0, math.inf)  # inf: override phrases only
LEADS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DISAGREE = "判断不一致"


@dataclass(frozen=True)
class Ticket:
    decision: Decision
    match: RuleMatch
    combined: dict[str, float]
    misrouted: bool
    other_reason: bool  # a review reason other than the disagreement flag and the auto-dispatch threshold
    low: bool  # below review_threshold (those are not flagged: they are reviewed anyway)


def _tickets(clf: Classifier, rules: Rules, texts: list[str], labels: list[str]) -> list[Ticket]:
    matcher = KeywordMatcher(rules)
    pattern = compile_boilerplate(rules.classifier.boilerplate)
    settings = rules.classifier
    office = rules.category_office
    out = []
    for text, label, d in zip(texts, labels, clf.decide_batch(texts), strict=True):
        match = matcher.match(normalize_text(text, pattern))
        combined = (
            _softmax_boost(d.probabilities, match.scores, settings.rule_boost) if match.scores else d.probabilities
        )
        floored = max(d.confidence, settings.override_confidence) if d.decided_by_override else d.confidence
        other = [r for r in d.review_reasons if DISAGREE not in r and not r.startswith(("模型未能", "派单置信度"))]
        out.append(
            Ticket(
                decision=d,
                match=match,
                combined=combined,
                misrouted=office(d.category) != office(label),
                other_reason=bool(other),
                low=floored < settings.review_threshold,
            )
        )
    return out


def old_flag(t: Ticket) -> bool:
    d = t.decision
    return d.rules_category is not None and d.rules_category != d.model_category


def new_flag(t: Ticket, margin: float, lead: float) -> bool:
    d = t.decision
    return not t.low and contested(
        t.match, t.combined, d.category, d.model_category, d.rules_category, rule_margin=margin, max_lead=lead
    )


def _ratio(a: int, b: int) -> str:
    return f"{a}/{b} = {a / b:.3f}" if b else f"{a}/0"


def summary(tickets: list[Ticket], flags: list[bool]) -> dict[str, int]:
    alone = [not t.other_reason for t in tickets]
    return {
        "flagged": sum(flags),
        "hit": sum(f and t.misrouted for f, t in zip(flags, tickets, strict=True)),
        "misrouted": sum(t.misrouted for t in tickets),
        "flagged_alone": sum(f and a for f, a in zip(flags, alone, strict=True)),
        "hit_alone": sum(f and a and t.misrouted for f, a, t in zip(flags, alone, tickets, strict=True)),
        "misrouted_alone": sum(a and t.misrouted for a, t in zip(alone, tickets, strict=True)),
    }


def f1_alone(s: dict[str, int]) -> float:
    p = s["hit_alone"] / s["flagged_alone"] if s["flagged_alone"] else 0.0
    r = s["hit_alone"] / s["misrouted_alone"] if s["misrouted_alone"] else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def _line(name: str, s: dict[str, int]) -> str:
    return (
        f"  {name:6} 提示 {s['flagged']:4}  精确率 {_ratio(s['hit'], s['flagged']):18}  "
        f"召回率 {_ratio(s['hit'], s['misrouted']):18} | 无其他审核原因：提示 {s['flagged_alone']:3}  "
        f"精确率 {_ratio(s['hit_alone'], s['flagged_alone']):18}  召回率 {_ratio(s['hit_alone'], s['misrouted_alone'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "models/street"))
    args = parser.parse_args()
    rules = load_rules(ROOT / "rules.yaml")
    settings = rules.classifier
    clf = Classifier(load_model(args.model), rules)
    real = load_real(ROOT / "models/street/real_labels.jsonl")
    corpus = load_dataset(ROOT / "models/street/corpus.jsonl", text_cols=["text"], label_col="label")
    parts = {split: real.part(split) for split in ("train", "calib", "test")}
    data = {name: _tickets(clf, rules, p.texts, p.labels) for name, p in parts.items()}
    data["corpus"] = _tickets(clf, rules, corpus.texts, corpus.labels)
    margin, lead = settings.disagreement_rule_margin, settings.disagreement_max_lead

    # the flag the classifier raises is the one the grid evaluates at the configured point
    for name, tickets in data.items():
        raised = [any(DISAGREE in r for r in t.decision.review_reasons) for t in tickets]
        recomputed = [new_flag(t, margin, lead) for t in tickets]
        mismatch = sum(a != b for a, b in zip(raised, recomputed, strict=True))
        if mismatch:
            print(f"注意：{name} 上 {mismatch} 条工单的提示与重算结果不同（概率四舍五入）")

    print(f"模型 {clf.version}；rules.yaml: disagreement_rule_margin={margin} disagreement_max_lead={lead}")
    print("\n阈值选择（calib，无其他审核原因的工单上的 F1；train 为训练数据，仅供参考）")
    grid = []
    for m in MARGINS:
        for g in LEADS:
            s = summary(data["calib"], [new_flag(t, m, g) for t in data["calib"]])
            grid.append((-f1_alone(s), s["flagged"], m, g, s))
    grid.sort(key=lambda row: row[:2])
    for neg_f1, _, m, g, s in grid[:5]:
        train = sum(new_flag(t, m, g) for t in data["train"])
        mark = "  ← rules.yaml" if (m, g) == (margin, lead) else ""
        print(f"  margin={m:<4} lead={g:<4} F1={-neg_f1:.3f}  calib 提示 {s['flagged']:4}  train 提示 {train:4}{mark}")
    best = grid[0]
    if (best[2], best[3]) != (margin, lead):
        print(f"  注意：calib 上最好的是 margin={best[2]} lead={best[3]}，与 rules.yaml 不同")

    print("\n之前 = 规则首选分类与模型首选分类不同即提示；之后 = rules.yaml 的强证据判据。误派 = 科室与标注不符。")
    for name in ("test", "corpus", "calib", "train"):
        tickets = data[name]
        note = {"corpus": "（手写语料，训练数据）", "train": "（训练数据）", "calib": "（选阈值用）"}.get(name, "")
        before = summary(tickets, [old_flag(t) for t in tickets])
        after = summary(tickets, [new_flag(t, margin, lead) for t in tickets])
        wrong, alone = before["misrouted"], before["misrouted_alone"]
        print(f"{name}{note}：{len(tickets)} 条，误派 {wrong} 条（其中无其他审核原因 {alone}）")
        print(_line("之前", before))
        print(_line("之后", after))
        if before["misrouted"]:
            held = before["misrouted"] - before["misrouted_alone"]
            print(
                f"  误派工单被任一审核原因（不含自动派单阈值）拦下：之前 {held + before['hit_alone']}，"
                f"之后 {held + after['hit_alone']}（共 {before['misrouted']}）"
            )


if __name__ == "__main__":
    main()
