"""Rules, the model+rules decision, training determinism, artifacts and evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from classifier.artifact import ModelError, load_model
from classifier.config import KeywordRule, Rules, load_rules
from classifier.data import Dataset, load_dataset
from classifier.decision import Classifier
from classifier.evaluate import auto_dispatch_curve, metrics
from classifier.keywords import KeywordMatcher, _rule_hits
from classifier.pipeline import PipelineParams
from classifier.train import map_labels, train_model

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "models" / "street" / "corpus.jsonl"
SMALL = ("group_renting", "garbage", "parking", "greenery")


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(ROOT / "rules.yaml")


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory, rules: Rules, small_data: Dataset) -> Path:
    out = tmp_path_factory.mktemp("m") / "small"
    train_model(small_data, rules=rules, out_dir=out, name="small", folds=3)
    return out


def test_rule_semantics_any_all_none() -> None:
    rule = KeywordRule(any=("隔断", "隔成"), all=("出租",), none=("办公室",))
    assert _rule_hits(rule, "房子隔成小间出租") == ["出租", "隔成"]
    assert _rule_hits(rule, "房子隔成小间") is None
    assert _rule_hits(rule, "办公室隔断出租") is None
    assert _rule_hits(KeywordRule(all=("垃圾", "满溢")), "垃圾桶满溢") == ["垃圾", "满溢"]


def test_matcher_scores_and_overrides(rules: Rules) -> None:
    match = KeywordMatcher(rules).match("上南二村有人按床位出租,住了十几个人")
    assert "group_renting" in match.overrides
    assert match.keywords["group_renting"]
    assert KeywordMatcher(rules).urgent_words("闻到煤气,怀疑燃气泄漏") == ["燃气泄漏", "闻到煤气"]


def test_decision_explains_itself(rules: Rules) -> None:
    clf = Classifier(load_model(ROOT / "models" / "street"), rules)
    d = clf.decide("市民来电反映：上南五村12号有二房东把房子隔成小间按床位出租，住了十几个人。")
    assert d.category == "group_renting" and d.office == "pingan" and d.office_name == "平安办"
    assert d.source == "both" and d.auto_eligible
    # the shipped model could not certify 97 % office precision on the real calib split: everything is reviewed
    assert d.needs_review == (clf.auto_dispatch is not None and clf.auto_dispatch["threshold"] is None) or (
        not d.needs_review
    )
    assert len(d.alternatives) == 3 and d.alternatives[0].category == "group_renting"
    assert abs(sum(d.probabilities.values()) - 1) < 1e-3
    assert d.model_version.startswith("street-")


def test_review_on_low_confidence_and_disagreement(rules: Rules) -> None:
    model = load_model(ROOT / "models" / "street")
    strict = rules.model_copy(update={"classifier": rules.classifier.model_copy(update={"review_threshold": 0.999})})
    d = Classifier(model, strict).decide("小区门口路灯不亮")
    assert d.needs_review and "低于审核阈值" in d.review_reasons[0]
    # the model reads a fire-safety complaint; a rule that only says "垃圾" disagrees. The model is unsure, so the
    # ticket is reviewed for low confidence; the disagreement is not repeated (see test_disagreement.py)
    d = Classifier(model, rules).decide("楼道里有人飞线给电瓶车充电，旁边还堆着垃圾")
    assert d.category == "fire_safety"
    assert d.needs_review and any("低于审核阈值" in r for r in d.review_reasons)
    assert not any("不一致" in r for r in d.review_reasons)


def test_override_yields_to_a_confident_model(rules: Rules) -> None:
    clf = Classifier(load_model(ROOT / "models" / "street"), rules)
    d = clf.decide("来电人反映：群租房内住户在房间里给电瓶车电池充电，插线板连插线板，担心起火，要求整治充电问题。")
    assert d.model_category == "fire_safety"
    assert d.category == "fire_safety"


def test_training_is_deterministic(tmp_path: Path, rules: Rules, small_data: Dataset, small_model: Path) -> None:
    again = tmp_path / "again"
    train_model(small_data, rules=rules, out_dir=again, name="small", folds=3)
    a, b = load_model(small_model), load_model(again)
    texts = small_data.texts[:10]
    assert np.allclose(a.pipeline.predict_proba(texts), b.pipeline.predict_proba(texts))
    assert a.card["metrics"] == b.card["metrics"]
    assert a.card["data"]["class_counts"] == {c: 15 for c in SMALL}


def test_card_records_hash_versions_and_metrics(small_model: Path) -> None:
    card = json.loads((small_model / "card.json").read_text(encoding="utf-8"))
    assert card["data"]["sha256"] == "fixture"
    assert {"scikit-learn", "numpy", "scipy", "skops", "rjieba"} <= set(card["libraries"])
    assert 0 <= card["metrics"]["cv"]["model"]["macro_f1"] <= 1
    assert card["model_version"].startswith("small-")


def test_round_trip_predicts_the_same(small_model: Path, small_data: Dataset, rules: Rules) -> None:
    loaded = load_model(small_model)
    clf = Classifier(loaded, rules)
    decisions = clf.decide_batch(small_data.texts[:20])
    assert sum(d.model_category == y for d, y in zip(decisions, small_data.labels[:20], strict=True)) >= 16


def test_tampered_artifact_refused(tmp_path: Path, small_model: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_model, copy)
    with (copy / "model.skops").open("ab") as fh:
        fh.write(b"x")
    with pytest.raises(ModelError, match="校验和"):
        load_model(copy)


def test_incompatible_versions_refused(tmp_path: Path, small_model: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_model, copy)
    card = json.loads((copy / "card.json").read_text(encoding="utf-8"))
    card["libraries"]["scikit-learn"] = "0.20.0"
    (copy / "card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError, match=r"scikit-learn 0\.20\.0"):
        load_model(copy)


def test_missing_model_and_foreign_rules_refused(tmp_path: Path, small_model: Path) -> None:
    with pytest.raises(ModelError, match="缺少"):
        load_model(tmp_path)
    district = load_rules(ROOT / "examples" / "district-rules.yaml")
    with pytest.raises(ModelError, match="不匹配"):
        Classifier(load_model(small_model), district)


def test_untrusted_types_refused(tmp_path: Path, small_model: Path) -> None:
    import zipfile

    import skops.io as sio

    from classifier.artifact import sha256_file

    copy = tmp_path / "copy"
    shutil.copytree(small_model, copy)
    sio.dump({"evil": shutil.rmtree}, copy / "model.skops")
    card = json.loads((copy / "card.json").read_text(encoding="utf-8"))
    card["model_sha256"] = sha256_file(copy / "model.skops")
    (copy / "card.json").write_text(json.dumps(card), encoding="utf-8")
    assert zipfile.is_zipfile(copy / "model.skops")
    with pytest.raises(ModelError, match="不受信任"):
        load_model(copy)


def test_metrics_on_a_hand_computed_fixture() -> None:
    truth = ["a", "a", "b", "b"]
    pred = ["a", "b", "b", "b"]
    m = metrics(truth, pred, [0.9, 0.4, 0.8, 0.6])
    assert m["accuracy"] == 0.75
    # a: P=1 R=.5 F1=.6667; b: P=.6667 R=1 F1=.8 → macro .7333
    assert m["macro_f1"] == pytest.approx(0.7333, abs=1e-4)
    assert m["confusion"]["matrix"] == [[1, 1], [0, 2]]
    curve = {p["threshold"]: p for p in auto_dispatch_curve(truth, pred, [0.9, 0.4, 0.8, 0.6])}
    assert curve[0.5] == {"threshold": 0.5, "auto_share": 0.75, "accuracy": 1.0}
    assert curve[0.95]["auto_share"] == 0.0


def test_labels_may_be_category_names(rules: Rules) -> None:
    assert map_labels(["群租", "garbage"], rules) == ["group_renting", "garbage"]
    with pytest.raises(ValueError, match="不在规则文件的分类中"):
        map_labels(["外星人"], rules)


def test_unknown_model_type_refused(rules: Rules, small_data: Dataset, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="未知模型类型"):
        train_model(
            small_data, rules=rules, out_dir=tmp_path / "x", name="x", folds=3, params=PipelineParams(model="forest")
        )


def test_keyword_scan_finds_exactly_the_words_a_naive_search_finds(rules: Rules) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    matcher = KeywordMatcher(rules)
    words = sorted(matcher._inside)
    pieces = st.sampled_from([*words, "的", "了", "a", " ", "楼"])

    @settings(max_examples=200, deadline=None)
    @given(st.lists(pieces, max_size=12))
    def check(parts: list[str]) -> None:
        text = "".join(parts)
        naive = {w for w in words if w in text}
        assert set().union(*(matcher._inside[m.group(1)] for m in matcher._scan.finditer(text))) == naive

    check()


def test_fast_path_equals_the_pipeline(rules: Rules) -> None:
    from classifier.fast import FastPredictor
    from classifier.normalize import compile_boilerplate, normalize_text

    model = load_model(ROOT / "models" / "street")
    texts = [*load_dataset(CORPUS, text_cols=["text"], label_col="label").texts[:200], "", "  ", "zzz", "a  b\t\tc"]
    pattern = compile_boilerplate(model.pipeline.named_steps["normalize"].boilerplate)
    normalized = [normalize_text(t, pattern) for t in texts]
    fast = FastPredictor(model.pipeline)
    reference = model.pipeline.predict_proba(texts)
    assert np.abs(fast.predict_proba(normalized) - reference).max() < 1e-6
    assert np.abs(fast.predict_proba(normalized[:3]) - reference[:3]).max() < 1e-6


def test_title_weighting_and_alnum_stripping() -> None:
    from classifier.pipeline import TITLE_SEPARATOR, TextNormalizer

    plain = TextNormalizer()
    weighted = TextNormalizer(title_repeat=2, strip_alnum=True)
    text = f"群租扰民{TITLE_SEPARATOR}A3区 2019年住了 12 个人"
    assert plain.transform([text]) == ["群租扰民 a3区 2019年住了 12 个人"]
    assert weighted.transform([text]) == ["群租扰民区年住了个人 群租扰民 群租扰民"]
    assert weighted.transform(["没有标题 A1"]) == ["没有标题"]


def test_features_from_unlabelled_texts_are_frozen_and_round_trip(
    tmp_path: Path, rules: Rules, small_data: Dataset
) -> None:
    unlabelled = Dataset(texts=small_data.texts * 2, labels=[""] * 120, sha256="u", source="u")
    params = PipelineParams(lsa_components=5, title_repeat=1, strip_alnum=True, char_ngram_max=2)
    out = tmp_path / "u"
    card = train_model(small_data, rules=rules, out_dir=out, name="u", folds=3, params=params, unlabelled=unlabelled)
    assert card["unlabelled"] == {"sources": "u", "sha256": "u", "rows": 120}
    loaded = load_model(out)
    assert type(loaded.pipeline.named_steps["features"]).__name__ == "FrozenEstimator"
    clf = Classifier(loaded, rules)
    assert clf._fast is None  # the fast path declines what it cannot reproduce; the Pipeline answers
    decisions = clf.decide_batch(small_data.texts[:20])
    assert sum(d.model_category == y for d, y in zip(decisions, small_data.labels[:20], strict=True)) >= 15
