"""The routing decision: model probabilities combined with keyword rules, explained."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any, Literal

from classifier.artifact import LoadedModel, ModelError
from classifier.config import Rules
from classifier.fast import FastPredictor, UnsupportedPipeline, known_share
from classifier.keywords import KeywordMatcher, RuleMatch
from classifier.normalize import compile_boilerplate, normalize_text

Source = Literal["model", "rules", "both"]


@dataclass(frozen=True)
class Alternative:
    category: str
    name: str
    score: float


@dataclass(frozen=True)
class Decision:
    category: str
    category_name: str
    office: str
    office_name: str
    # combined probability (model + keyword boost) of the chosen category: the figure to show; the same number as
    # alternatives[0].score (the chosen category is always the first alternative). Not the auto-dispatch score.
    confidence: float
    alternatives: list[Alternative]
    matched_keywords: dict[str, list[str]]
    source: Source
    needs_review: bool
    review_reasons: list[str]
    urgent: bool
    urgent_keywords: list[str]
    model_version: str
    model_category: str
    rules_category: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    # combined probability of the chosen office (what the auto-dispatch threshold is compared with)
    office_confidence: float = 0.0
    # share of the ticket's word n-grams the model knows (the out-of-scope signal)
    known_share: float = 1.0
    # no review reason other than the auto-dispatch threshold (the tickets the threshold is calibrated on)
    auto_eligible: bool = True
    # a high-precision (override) phrase decided the category, whatever its probability: show "由高精度关键词决定";
    # for the review threshold and office_confidence such a decision counts as at least override_confidence
    decided_by_override: bool = False
    # the combined probability of every category (what `alternatives` shows the top of)
    scores: dict[str, float] = field(default_factory=dict)
    # two-level profiles: what each level decided (level, category, name, confidence, alternatives, model_version)
    levels: list[dict[str, Any]] = field(default_factory=list)
    # offices that share the work with `office` (the category's co_handlers)
    co_handlers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies every value, which costs more than the decision itself
        fields = {f.name: getattr(self, f.name) for f in dataclass_fields(self)}
        fields["alternatives"] = [{"category": a.category, "name": a.name, "score": a.score} for a in self.alternatives]
        fields["matched_keywords"] = {k: list(v) for k, v in self.matched_keywords.items()}
        fields["review_reasons"] = list(self.review_reasons)
        fields["urgent_keywords"] = list(self.urgent_keywords)
        fields["probabilities"] = dict(self.probabilities)
        fields["scores"] = dict(self.scores)
        fields["levels"] = [dict(level) for level in self.levels]
        fields["co_handlers"] = list(self.co_handlers)
        return fields


def _softmax_boost(probs: dict[str, float], scores: dict[str, float], boost: float) -> dict[str, float]:
    """Shift the model's log-probabilities by the rule scores, then renormalize."""
    logits = {c: math.log(max(p, 1e-9)) + boost * scores.get(c, 0.0) for c, p in probs.items()}
    top = max(logits.values())
    exp = {c: math.exp(v - top) for c, v in logits.items()}
    total = sum(exp.values())
    return {c: v / total for c, v in exp.items()}


class Classifier:
    """A loaded model plus the rules file: turns ticket text into a routing decision."""

    def __init__(self, model: LoadedModel, rules: Rules) -> None:
        unknown = [c for c in model.classes if c not in rules.categories]
        if unknown:
            raise ModelError(f"模型 {model.path} 的类别 {unknown} 不在规则文件的 categories 中；模型与规则文件不匹配")
        self.model = model
        self.rules = rules
        self._matcher = KeywordMatcher(rules)
        self._boilerplate = compile_boilerplate(rules.classifier.boilerplate)
        normalizer = model.pipeline.named_steps.get("normalize")
        model_patterns = tuple(getattr(normalizer, "boilerplate", ()))
        # the features must see text normalized exactly as in training, the rules as the rules file says
        self._model_boilerplate = (
            self._boilerplate if model_patterns == rules.classifier.boilerplate else compile_boilerplate(model_patterns)
        )
        # looked up once: the decision is on the hot path of every intake
        self._version = model.version
        self._names = {code: cat.name for code, cat in rules.categories.items()}
        self._office_of = {code: cat.office for code, cat in rules.categories.items()}
        self._office_names = {code: office.name for code, office in rules.offices.items()}
        try:
            self._fast: FastPredictor | None = FastPredictor(model.pipeline)
        except UnsupportedPipeline:
            self._fast = None
        self.auto_dispatch = _auto_dispatch(model, rules)
        self._min_known = 0.0
        if self.auto_dispatch is not None:
            self._min_known = float(self.auto_dispatch.get("out_of_scope", {}).get("min_known_share", 0.0))
        self._dispatch_threshold = dispatch_threshold(self.auto_dispatch, rules)
        self._always_review = {c for c, how in rules.classifier.category_review.items() if how == "always"}

    @property
    def version(self) -> str:
        return self.model.version

    def decide(self, text: str) -> Decision:
        return self.decide_batch([text])[0]

    def decide_batch(self, texts: Sequence[str]) -> list[Decision]:
        if not texts:
            return []
        normalized = [normalize_text(t, self._boilerplate) for t in texts]
        if self._fast is None:
            matrix = self.model.pipeline.predict_proba(list(texts))
            known = known_share(self.model.pipeline, list(texts))
        elif self._model_boilerplate is self._boilerplate:
            matrix, known = self._fast.predict(normalized)
        else:
            matrix, known = self._fast.predict([normalize_text(t, self._model_boilerplate) for t in texts])
        classes = self.model.classes
        return [
            self._combine(n, dict(zip(classes, row.tolist(), strict=True)), float(k))
            for n, row, k in zip(normalized, matrix, known.tolist(), strict=True)
        ]

    def _combine(self, normalized: str, probs: dict[str, float], known: float = 1.0) -> Decision:
        settings = self.rules.classifier
        match = self._matcher.match(normalized)
        model_top = max(probs, key=probs.__getitem__)
        # the model's probabilities already sum to one: only rule scores can change them
        combined = _softmax_boost(probs, match.scores, settings.rule_boost) if match.scores else probs
        category, confidence, by_override = self._choose(match, probs, combined, model_top)
        rules_top = match.overrides[0] if match.overrides else match.top
        office = self._office_of[category]
        # `confidence` carries the override floor: the review threshold and the calibrated office_confidence are
        # computed exactly as before; the Decision shows the combined probability itself
        office_confidence = max(confidence, sum(p for c, p in combined.items() if self._office_of[c] == office))
        reasons = self._review_reasons(match, confidence, combined, category, model_top, rules_top)
        reasons.extend(self._scope_reasons(category, known))
        eligible = not reasons
        reasons.extend(self._threshold_reasons(office_confidence, eligible))
        # the chosen category first (an override may choose one the combined scores do not rank first)
        others = sorted(((c, p) for c, p in combined.items() if c != category), key=lambda kv: -kv[1])[:2]
        ranked = [(category, combined[category]), *others]
        urgent_words = self._matcher.urgent_words(normalized)
        return Decision(
            category=category,
            category_name=self._names[category],
            office=office,
            office_name=self._office_names[office],
            confidence=round(combined[category], 4),
            alternatives=[Alternative(c, self._names[c], round(s, 4)) for c, s in ranked],
            matched_keywords=match.keywords,
            source=_source(category, model_top, rules_top),
            needs_review=bool(reasons),
            review_reasons=reasons,
            urgent=bool(urgent_words),
            urgent_keywords=urgent_words,
            model_version=self._version,
            model_category=model_top,
            rules_category=rules_top,
            probabilities={c: round(p, 4) for c, p in probs.items()},
            office_confidence=round(min(office_confidence, 1.0), 4),
            known_share=round(known, 4),
            auto_eligible=eligible,
            decided_by_override=by_override,
            scores={c: round(p, 4) for c, p in combined.items()},
            co_handlers=list(self.rules.categories[category].co_handlers),
        )

    def _scope_reasons(self, category: str, known: float) -> list[str]:
        """Per-category review and out of scope."""
        reasons: list[str] = []
        if category in self._always_review:
            reasons.append(f"「{self._names[category]}」类工单一律由派单员审核派单")
        if known < self._min_known:
            reasons.append(
                f"工单内容超出模型已知范围（已知词比例 {known:.2f} 低于下限 {self._min_known:.2f}），需人工判断"
            )
        return reasons

    def _threshold_reasons(self, office_confidence: float, eligible: bool) -> list[str]:
        """The calibrated auto-dispatch threshold, for tickets no other rule already sends to review."""
        return threshold_reasons(self._dispatch_threshold, self.auto_dispatch, office_confidence, eligible)

    def _choose(
        self, match: RuleMatch, probs: dict[str, float], combined: dict[str, float], model_top: str
    ) -> tuple[str, float, bool]:
        """(category, confidence for review and dispatch, decided by an override phrase).

        An override phrase decides, unless the model is at least as sure of another category (tickets that mention
        a second topic in passing); its decision counts as at least `override_confidence`."""
        floor = self.rules.classifier.override_confidence
        veto = self.rules.classifier.override_model_veto
        overrides = [c for c in match.overrides if c in combined]
        if len(overrides) == 1 and not (model_top != overrides[0] and probs[model_top] >= veto):
            chosen = overrides[0]
            return chosen, max(combined[chosen], floor), True
        candidates = overrides if len(overrides) > 1 else list(combined)
        chosen = max(candidates, key=lambda c: combined[c])
        return chosen, combined[chosen], False

    def _review_reasons(
        self,
        match: RuleMatch,
        confidence: float,
        combined: dict[str, float],
        category: str,
        model_top: str,
        rules_top: str | None,
    ) -> list[str]:
        settings = self.rules.classifier
        reasons: list[str] = []
        low = confidence < settings.review_threshold
        if low:
            reasons.append(f"置信度 {confidence:.2f} 低于审核阈值 {settings.review_threshold:.2f}")
        if (
            settings.review_on_disagreement
            and not low
            and contested(
                match,
                combined,
                category,
                model_top,
                rules_top,
                rule_margin=settings.disagreement_rule_margin,
                max_lead=settings.disagreement_max_lead,
            )
        ):
            assert rules_top is not None
            reasons.append(
                f"关键词规则（{self.rules.categories[rules_top].name}）与模型"
                f"（{self.rules.categories[model_top].name}）判断不一致"
            )
        if len(match.overrides) > 1:
            names = "、".join(self.rules.categories[c].name for c in match.overrides)
            reasons.append(f"多个高精度规则同时命中：{names}")
        return reasons


def dispatch_threshold(auto_dispatch: dict[str, Any] | None, rules: Rules) -> float | None:
    """The certified threshold to apply: None without a guarantee asked for, infinity when none was certified."""
    # a rules file without auto_dispatch_precision asks for no guarantee: only review_threshold applies
    if auto_dispatch is None or rules.classifier.auto_dispatch_precision is None:
        return None
    threshold = auto_dispatch.get("threshold")
    # no certified threshold: nothing is dispatched without review
    return float(threshold) if threshold is not None else math.inf


def threshold_reasons(
    threshold: float | None, auto_dispatch: dict[str, Any] | None, office_confidence: float, eligible: bool
) -> list[str]:
    """The review reason of the auto-dispatch threshold, for tickets no other rule already sends to review."""
    if threshold is None or office_confidence >= threshold or not eligible:
        return []
    if math.isinf(threshold):
        return ["模型未能在校准数据上证明自动派单的准确率，全部工单由派单员审核"]
    assert auto_dispatch is not None
    return [
        f"派单置信度 {office_confidence:.2f} 低于自动派单阈值 {threshold:.2f}"
        f"（该阈值保证自动派单科室准确率 ≥ {auto_dispatch['precision']:.0%}，"
        f"置信度 {auto_dispatch['confidence']:.0%}）"
    ]


def contested(
    match: RuleMatch,
    combined: dict[str, float],
    category: str,
    model_top: str,
    rules_top: str | None,
    *,
    rule_margin: float,
    max_lead: float,
) -> bool:
    """Real doubt between the keyword rules and the model (the disagreement review reason).

    The rules' evidence for their category (`rules_top`, not the model's) must be strong: an override phrase, or a
    keyword score at least `rule_margin` above the score of the model's category; a tie or a weaker rule is no
    evidence against the model. And after combining, the decided category must lead the other side (the model's
    category when the rules decided, the rules' category otherwise) by less than `max_lead`: a confident model is
    not put in doubt by a keyword, while an override phrase that overruled the model is."""
    if rules_top is None or rules_top == model_top:
        return False
    margin = match.scores.get(rules_top, 0.0) - match.scores.get(model_top, 0.0)
    if rules_top not in match.overrides and margin < rule_margin - 1e-9:
        return False
    other = model_top if category == rules_top else rules_top
    return combined[category] - combined.get(other, 0.0) < max_lead


def _source(category: str, model_top: str, rules_top: str | None) -> Source:
    if rules_top is None:
        return "model"
    if rules_top == model_top == category:
        return "both"
    return "rules" if category == rules_top else "model"


def _auto_dispatch(model: LoadedModel, rules: Rules) -> dict[str, Any] | None:
    """The model's calibrated auto-dispatch settings; refused when they are weaker than the rules file demands."""
    calibrated = model.card.get("auto_dispatch")
    wanted = rules.classifier.auto_dispatch_precision
    if not isinstance(calibrated, dict):
        return None
    if wanted is not None and (
        float(calibrated.get("precision", 0)) < wanted - 1e-9
        or float(calibrated.get("confidence", 0)) < rules.classifier.auto_dispatch_confidence - 1e-9
    ):
        raise ModelError(
            f"模型 {model.path} 的自动派单阈值按准确率 {calibrated.get('precision')}、置信度 "
            f"{calibrated.get('confidence')} 校准，规则文件要求 {wanted}、{rules.classifier.auto_dispatch_confidence}；"
            "请用 `hotline train --real` 重新训练"
        )
    return calibrated
