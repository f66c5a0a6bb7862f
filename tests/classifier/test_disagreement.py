"""The keyword/model disagreement review reason (only real doubt is flagged) and one confidence figure per decision.

The decisions are built from fixed model probabilities (Classifier._combine), so that each case says exactly how sure
the model is; the keyword rules are those of rules.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier.artifact import load_model
from classifier.config import Rules, RulesError, load_rules, parse_rules
from classifier.data import load_dataset
from classifier.decision import Classifier, Decision

ROOT = Path(__file__).resolve().parents[2]
DISAGREE = "判断不一致"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(ROOT / "rules.yaml")


@pytest.fixture(scope="module")
def clf(rules: Rules) -> Classifier:
    return Classifier(load_model(ROOT / "models" / "street"), rules)


def _decide(clf: Classifier, text: str, **given: float) -> Decision:
    """The decision for `text` when the model gives the named categories these probabilities (the rest shared)."""
    rest = [c for c in clf.model.classes if c not in given]
    share = (1.0 - sum(given.values())) / len(rest)
    probs = {c: given.get(c, share) for c in clf.model.classes}
    return clf._combine(text, probs)


def _flagged(d: Decision) -> bool:
    return any(DISAGREE in r for r in d.review_reasons)


def _with(rules: Rules, **settings: object) -> Rules:
    return rules.model_copy(update={"classifier": rules.classifier.model_copy(update=settings)})


def test_a_broad_keyword_does_not_put_a_confident_model_in_doubt(clf: Classifier) -> None:
    # "人行道" is a road-facility keyword; the model is 95 % sure of street vending
    d = _decide(clf, "人行道边上那家店天天占着地方卖东西", street_vending=0.95)
    assert d.rules_category == "road_facility" and d.model_category == d.category == "street_vending"
    assert not _flagged(d)


def test_strong_rules_evidence_against_a_confident_model_is_flagged(clf: Classifier, rules: Rules) -> None:
    # an override phrase (窨井盖) against a model 75 % sure of another category: the model keeps the decision
    # (override_model_veto), but the doubt is real
    d = _decide(clf, "小区里窨井盖松动", property=0.75, road_facility=0.1)
    assert d.category == "property" and d.rules_category == "road_facility"
    assert d.confidence >= rules.classifier.review_threshold
    assert _flagged(d) and d.needs_review and not d.auto_eligible
    # one full keyword rule ahead of the model's category counts as strong evidence too, while the model is not
    # sure enough to settle it
    d = _decide(clf, "人行道边上那家店天天占着地方卖东西", street_vending=0.7)
    assert d.category == "street_vending" and _flagged(d)


def test_the_thresholds_come_from_the_rules_file(clf: Classifier, rules: Rules) -> None:
    text, probs = "人行道边上那家店天天占着地方卖东西", {"street_vending": 0.7}
    model = clf.model
    assert not _flagged(_decide(Classifier(model, _with(rules, disagreement_max_lead=0.3)), text, **probs))
    assert not _flagged(_decide(Classifier(model, _with(rules, disagreement_rule_margin=1.5)), text, **probs))
    assert not _flagged(_decide(Classifier(model, _with(rules, review_on_disagreement=False)), text, **probs))


def test_a_tie_is_no_evidence_against_the_model(clf: Classifier) -> None:
    # 物业 (property) and 人行道 (road facility) score the same; the rules' "top" is only the tie-break
    d = _decide(clf, "物业不管人行道上的事", property=0.7)
    assert d.rules_category == "road_facility" and d.model_category == "property"
    assert not _flagged(d)


def test_a_weak_model_is_reviewed_for_low_confidence_not_for_disagreement(clf: Classifier, rules: Rules) -> None:
    d = _decide(clf, "人行道边上那家店天天占着地方卖东西", street_vending=0.4, road_facility=0.3)
    assert d.rules_category == "road_facility" and d.model_category == "street_vending"
    assert d.confidence < rules.classifier.review_threshold
    assert d.needs_review and any("低于审核阈值" in r for r in d.review_reasons)
    assert not _flagged(d)


def test_an_override_that_overrules_the_model_says_so_with_one_confidence(clf: Classifier, rules: Rules) -> None:
    # the model leans to property (45 %, below the veto), the override phrase decides road facility
    d = _decide(clf, "小区里窨井盖松动", property=0.45, road_facility=0.1)
    assert d.category == "road_facility" and d.source == "rules" and d.decided_by_override
    # one figure: the decision's confidence is the first candidate's score, and the chosen category comes first
    assert d.alternatives[0].category == d.category
    assert d.confidence == d.alternatives[0].score < rules.classifier.override_confidence
    assert d.alternatives[1].category == "property" and d.alternatives[1].score > d.confidence
    # what the calibrated auto-dispatch threshold sees is unchanged: the override decision counts as the floor
    assert d.office_confidence >= rules.classifier.override_confidence
    assert not any("低于审核阈值" in r for r in d.review_reasons)
    # the model was overruled while it favoured another category: that is doubt
    assert _flagged(d)


def test_confidence_and_candidates_agree_on_real_tickets(clf: Classifier) -> None:
    texts = load_dataset(ROOT / "models" / "street" / "corpus.jsonl", text_cols=["text"], label_col="label").texts
    decisions = clf.decide_batch(texts[:300])
    assert any(d.decided_by_override for d in decisions)
    for d in decisions:
        assert d.alternatives[0].category == d.category
        assert d.confidence == d.alternatives[0].score
        assert [a.score for a in d.alternatives[1:]] == sorted((a.score for a in d.alternatives[1:]), reverse=True)
        assert d.office_confidence >= d.confidence
        assert d.decided_by_override == d.as_dict()["decided_by_override"]
        if not d.decided_by_override:
            assert d.alternatives[0].score >= d.alternatives[1].score


def test_no_hand_written_ticket_is_flagged_for_disagreement(clf: Classifier) -> None:
    # the complaint: every demo ticket carried the flag (209 of the 964 corpus tickets did, all correctly routed)
    texts = load_dataset(ROOT / "models" / "street" / "corpus.jsonl", text_cols=["text"], label_col="label").texts
    assert sum(_flagged(d) for d in clf.decide_batch(texts)) <= 5


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("  disagreement_max_lead: 1.5", "classifier.disagreement_max_lead"),
        ("  disagreement_max_lead: 0", "classifier.disagreement_max_lead"),
        ("  disagreement_rule_margin: -1", "classifier.disagreement_rule_margin"),
        ("  disagreement_rule_margin: 强", "classifier.disagreement_rule_margin"),
    ],
)
def test_bad_thresholds_are_refused_with_their_line(line: str, field: str) -> None:
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    key = line.split(":")[0]
    lines = text.splitlines()
    index = next(i for i, existing in enumerate(lines) if existing.startswith(key + ":"))
    lines[index] = line
    with pytest.raises(RulesError, match=rf"第 {index + 1} 行 {field}"):
        parse_rules("\n".join(lines))
