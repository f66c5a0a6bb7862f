"""Auto-dispatch guarantee: threshold selection, its simulated validity, out-of-scope and per-category review,
the new rules keys, training from two data sources and the frozen split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from classifier.artifact import LoadedModel, ModelError, load_model
from classifier.calibrate import (
    binomial_pvalue,
    clopper_pearson_upper,
    conformal_lower_cutoff,
    default_grid,
    grid_start,
    min_sample,
    select_threshold,
)
from classifier.config import Rules, RulesError, load_rules, parse_rules
from classifier.data import Dataset, load_dataset, load_real
from classifier.decision import Classifier
from classifier.splits import assign_splits
from classifier.train import train_model

ROOT = Path(__file__).resolve().parents[2]
STREET = ROOT / "models" / "street"
REAL = STREET / "real_labels.jsonl"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(ROOT / "rules.yaml")


def _with_card(model: LoadedModel, **auto: Any) -> LoadedModel:
    card = {**model.card, "auto_dispatch": {"precision": 0.97, "confidence": 0.9, **auto}}
    return LoadedModel(pipeline=model.pipeline, card=card, path=model.path)


# --- threshold selection ---


def test_binomial_pieces_agree() -> None:
    assert min_sample(0.03, 0.1) == 76
    assert binomial_pvalue(0, 76, 0.03) <= 0.1 < binomial_pvalue(0, 75, 0.03)
    # rejecting at level δ ⇔ the Clopper–Pearson upper bound at 1 − δ is ≤ ε
    for k, n in ((0, 76), (1, 129), (2, 175), (3, 150)):
        assert (binomial_pvalue(k, n, 0.03) <= 0.1) == (clopper_pearson_upper(k, n, 0.9) <= 0.03)
    assert binomial_pvalue(0, 0, 0.03) == 1.0
    assert default_grid(1.0)[:3] == [1.0, 0.99, 0.98] and default_grid(1.0)[-1] == 0.3


def test_select_threshold_stops_at_first_failure() -> None:
    # 300 perfect tickets scored 0.95, then 100 scored 0.60 of which 30 wrong
    scores = [0.95] * 300 + [0.60] * 100
    correct = [True] * 300 + [True] * 70 + [False] * 30
    choice = select_threshold(scores, correct, [True] * 400, precision=0.97, confidence=0.9, start=0.95)
    assert choice.threshold == 0.61  # everything down to 0.61 dispatches the 300 perfect ones
    assert choice.dispatched == 300 and choice.errors == 0
    assert choice.upper_error_bound <= 0.03
    assert choice.tested[-1]["threshold"] == 0.6 and choice.tested[-1]["p_value"] > 0.1


def test_select_threshold_none_when_nothing_can_be_certified() -> None:
    choice = select_threshold([0.99] * 50, [True] * 50, [True] * 50, precision=0.97, confidence=0.9, start=0.99)
    assert choice.threshold is None and choice.upper_error_bound == 1.0


def test_ineligible_tickets_are_never_counted() -> None:
    scores = [0.99] * 200
    correct = [True] * 100 + [False] * 100
    eligible = [True] * 100 + [False] * 100
    choice = select_threshold(scores, correct, eligible, precision=0.97, confidence=0.9, start=0.99)
    assert choice.threshold is not None and choice.dispatched == 100 and choice.errors == 0


def _population(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores uniform on [0, 1]; P(right | s) = 1 − 0.3 (1 − s)², so precision(λ) = 1 − 0.1 (1 − λ)² rises with λ
    and crosses 0.97 at λ ≈ 0.452."""
    s = rng.uniform(0, 1, n)
    return s, rng.uniform(0, 1, n) < 1 - 0.3 * (1 - s) ** 2


def _true_precision(lam: float) -> float:
    # E[1 − 0.3 (1 − s)² | s ≥ λ] for s ~ U(0, 1)
    return 1 - 0.1 * (1 - lam) ** 2


def test_simulated_guarantee_holds() -> None:
    """Over many calibration draws, the chosen threshold misses the precision target at most δ of the time."""
    rng = np.random.default_rng(0)
    pilot_s, _ = _population(rng, 2000)
    start = grid_start(pilot_s, np.ones(2000, bool), n_calib=1500, precision=0.97, confidence=0.9)
    misses, chosen = 0, []
    runs = 400
    for _ in range(runs):
        s, ok = _population(rng, 1500)
        choice = select_threshold(s, ok, np.ones(1500, bool), precision=0.97, confidence=0.9, start=start)
        if choice.threshold is not None:
            chosen.append(choice.threshold)
            misses += _true_precision(choice.threshold) < 0.97
    assert misses / runs <= 0.1 + 0.03  # δ plus Monte-Carlo slack (sd ≈ 0.015)
    assert len(chosen) > runs * 0.7 and np.median(chosen) < 0.7  # and it is not vacuous


def test_conformal_cutoff() -> None:
    values = list(np.linspace(0, 1, 199))
    cut = conformal_lower_cutoff(values, 0.05)
    assert cut == pytest.approx(values[9])  # floor(0.05 × 200) = 10th smallest
    assert conformal_lower_cutoff([0.5] * 10, 0.01) == 0.0  # too few values: never out of scope
    rng = np.random.default_rng(1)
    below = 0
    for _ in range(500):
        draw = rng.uniform(0, 1, 201)
        below += draw[200] < conformal_lower_cutoff(draw[:200], 0.05)
    assert below / 500 <= 0.05 + 0.03


# --- the decision ---


def test_out_of_scope_goes_to_review(rules: Rules) -> None:
    clf = Classifier(_with_card(load_model(STREET), threshold=0.0, out_of_scope={"min_known_share": 0.3}), rules)
    d = clf.decide("qwertyuiop zxcvbnm asdfghjkl")
    assert d.needs_review and d.known_share < 0.3 and not d.auto_eligible
    assert any("超出模型已知范围" in r for r in d.review_reasons)
    ordinary = clf.decide("市民来电反映：上南五村12号有二房东把房子隔成小间按床位出租，住了十几个人。")
    assert ordinary.known_share > 0.3 and not any("超出" in r for r in ordinary.review_reasons)


def test_known_share_same_on_fast_and_slow_path(rules: Rules) -> None:
    from classifier.fast import known_share

    clf = Classifier(load_model(STREET), rules)
    texts = [r["text"] for r in map(json.loads, (STREET / "corpus.jsonl").read_text("utf-8").splitlines()[:40])]
    texts.append("qwerty")
    fast = [d.known_share for d in clf.decide_batch(texts)]
    slow = known_share(clf.model.pipeline, texts)
    assert np.allclose(fast, slow, atol=1e-4)
    assert np.allclose([clf.decide(t).known_share for t in texts[:5]], slow[:5], atol=1e-4)


def test_per_category_review(rules: Rules) -> None:
    model = _with_card(load_model(STREET), threshold=0.0, out_of_scope={"min_known_share": 0.0})
    text = "请问孩子明年上小学，入学需要准备哪些材料？户籍在外区可以入学吗？"
    d = Classifier(model, rules).decide(text)
    assert d.category == "other" and d.needs_review
    assert any("一律由派单员审核" in r for r in d.review_reasons)
    relaxed = rules.model_copy(update={"classifier": rules.classifier.model_copy(update={"category_review": {}})})
    assert not any("一律" in r for r in Classifier(model, relaxed).decide(text).review_reasons)


def test_threshold_from_card_decides(rules: Rules) -> None:
    model = load_model(STREET)
    text = "市民来电反映：上南五村12号有二房东把房子隔成小间按床位出租，住了十几个人。"
    low = Classifier(_with_card(model, threshold=0.0, out_of_scope={"min_known_share": 0.0}), rules).decide(text)
    assert not low.needs_review and low.auto_eligible
    high = Classifier(_with_card(model, threshold=0.999, out_of_scope={}), rules).decide(text)
    assert high.needs_review and "低于自动派单阈值" in high.review_reasons[-1]
    none = Classifier(_with_card(model, threshold=None, out_of_scope={}), rules).decide(text)
    assert none.needs_review and "未能在校准数据上证明" in none.review_reasons[-1]


def test_weaker_calibration_than_rules_is_refused(rules: Rules) -> None:
    model = load_model(STREET)
    card = {**model.card, "auto_dispatch": {"precision": 0.9, "confidence": 0.9}}
    weak = LoadedModel(model.pipeline, card, model.path)
    with pytest.raises(ModelError, match="重新训练"):
        Classifier(weak, rules)


# --- rules keys ---


def _rules_text(extra: str) -> str:
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    return text.replace("  fallback_category: other\n", "  fallback_category: other\n" + extra, 1)


def test_new_keys_parse(rules: Rules) -> None:
    assert rules.classifier.auto_dispatch_precision == 0.97
    assert rules.classifier.auto_dispatch_confidence == 0.9
    assert rules.classifier.category_review == {"other": "always"}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("auto_dispatch_precision", "1.5", "auto_dispatch_precision"),
        ("auto_dispatch_confidence", "0.2", "auto_dispatch_confidence"),
        ("out_of_scope_alpha", "0.7", "out_of_scope_alpha"),
    ],
)
def test_bad_values_point_at_the_line(key: str, value: str, message: str) -> None:
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    number = next(i for i, line in enumerate(lines, start=1) if line.strip().startswith(f"{key}:"))
    lines[number - 1] = f"  {key}: {value}"
    with pytest.raises(RulesError) as err:
        parse_rules("\n".join(lines))
    assert f"第 {number} 行" in str(err.value) and message in str(err.value)


def test_category_review_unknown_category_or_value() -> None:
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8").replace("    other: always", "    bogus: always")
    number = text.splitlines().index("    bogus: always") + 1
    with pytest.raises(RulesError) as err:
        parse_rules(text)
    assert f"第 {number} 行" in str(err.value) and "bogus" in str(err.value)
    with pytest.raises(RulesError, match="category_review"):
        parse_rules(text.replace("    bogus: always", "    other: sometimes"))


# --- training with two data sources, the split ---


def test_train_with_real_data(tmp_path: Path, rules: Rules) -> None:
    corpus = load_dataset(STREET / "corpus.jsonl", text_cols=["text"], label_col="label")
    keep = [i for i, y in enumerate(corpus.labels) if y in ("garbage", "parking", "other")][::2]
    small = Dataset([corpus.texts[i] for i in keep], [corpus.labels[i] for i in keep], "x", "corpus")
    rows = [json.loads(line) for line in REAL.read_text("utf-8").splitlines()]
    picked = [r for r in rows if r["label"] in ("garbage", "parking", "other")][:400]
    for r in picked:
        if r["split"] == "test":
            r["label"] = "never_read"  # the test split must not be touched by training
    real_file = tmp_path / "real.jsonl"
    real_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in picked), encoding="utf-8")
    card = train_model(small, rules=rules, out_dir=tmp_path / "m", name="m", folds=3, real=load_real(real_file))
    assert card["real"]["rows"]["train"] == sum(r["split"] == "train" for r in picked)
    assert card["data"]["rows"] == len(keep) and card["real"]["sha256"] != card["data"]["sha256"]
    auto = card["auto_dispatch"]
    assert auto["precision"] == 0.97 and auto["guarantee"]["n_calib"] == sum(r["split"] == "calib" for r in picked)
    assert 0 <= auto["out_of_scope"]["min_known_share"] < 1
    loaded = load_model(tmp_path / "m")
    assert Classifier(loaded, rules).auto_dispatch == loaded.card["auto_dispatch"]


def test_frozen_split_is_stratified() -> None:
    real = load_real(REAL)
    assert set(real.splits) == {"train", "calib", "test"}
    share = {s: real.splits.count(s) / len(real.splits) for s in ("train", "calib", "test")}
    assert abs(share["test"] - 0.30) < 0.02 and abs(share["calib"] - 0.25) < 0.02
    for label in set(real.labels):
        members = [s for s, y in zip(real.splits, real.labels, strict=True) if y == label]
        if len(members) >= 10:
            assert "test" in members and "calib" in members, label
    # deterministic and independent of order
    ids, labels = real.ids, real.labels
    assert assign_splits(ids[::-1], labels[::-1])[::-1] == assign_splits(ids, labels)


def test_copies_of_a_message_share_a_split() -> None:
    ids = list(range(200))
    labels = ["other"] * 100 + ["road_facility"] * 100
    groups = [str(i) for i in ids]
    groups[150] = groups[7] = "copy"  # one message sent twice, under different labels
    plain = assign_splits(ids, labels)
    grouped = assign_splits(ids, labels, groups)
    assert grouped[150] == grouped[7] == plain[7]
    assert [s for i, s in enumerate(grouped) if i not in (7, 150)] == [
        s for i, s in enumerate(plain) if i not in (7, 150)
    ]


def test_shipped_labels_never_split_a_message() -> None:
    real = load_real(REAL)
    split_of: dict[str, str] = {}
    for text, split in zip(real.texts, real.splits, strict=True):
        assert split_of.setdefault(text, split) == split, text[:40]


def test_no_precision_in_the_rules_means_no_guarantee(rules: Rules) -> None:
    model = load_model(STREET)
    text = "市民来电反映：上南五村12号有二房东把房子隔成小间按床位出租，住了十几个人。"
    card = _with_card(model, threshold=None, out_of_scope={"min_known_share": 0.0})
    without = rules.model_copy(
        update={"classifier": rules.classifier.model_copy(update={"auto_dispatch_precision": None})}
    )
    decision = Classifier(card, without).decide(text)
    assert not any("未能在校准数据上证明" in r for r in decision.review_reasons)
    assert decision.needs_review == (decision.confidence < rules.classifier.review_threshold)
