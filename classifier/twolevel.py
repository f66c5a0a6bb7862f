"""Two-level routing: a first model sorts a ticket into the profile's classes (e.g. a district's 城乡建设, 教育文体 …);
for the classes that name a sub-model in `refine`, a second model (e.g. the street taxonomy) picks the finer category,
whose office the rules file names (e.g. 群租 → 区房管局).

The decision explains both levels. The review rules of each level apply to its own decision; the auto-dispatch
threshold applies to the combined office score, and is calibrated on the combined decision (`hotline train` with a
rules file that has `submodels`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from classifier.artifact import LoadedModel, ModelError, load_model
from classifier.config import Category, Rules, Submodel
from classifier.decision import Alternative, Classifier, Decision, _auto_dispatch, dispatch_threshold, threshold_reasons

# what the second level says of a ticket it leaves in its first-level category
KEEP_NAME = "（保持第一级分类）"


def _sub_rules(rules: Rules, sub: Submodel, model: LoadedModel) -> Rules:
    """The rules the second-level model decides with: its mapped categories (names, offices and keywords from this
    file) and a placeholder for each class that keeps the first-level category. No threshold of its own."""
    categories = {code: rules.categories[code] for code in sub.categories}
    placeholder_office = next(iter(rules.offices))
    for code in model.classes:
        if code not in categories:
            categories[code] = Category(name=KEEP_NAME, office=placeholder_office)
    keep = [c for c in model.classes if c not in sub.categories]
    settings = rules.classifier.model_copy(
        update={
            "auto_dispatch_precision": None,
            "fallback_category": keep[0] if keep else sub.categories[0],
            "category_review": {c: v for c, v in rules.classifier.category_review.items() if c in sub.categories},
        }
    )
    return rules.model_copy(update={"categories": categories, "classifier": settings, "submodels": {}})


def _first_rules(rules: Rules) -> Rules:
    settings = rules.classifier.model_copy(update={"auto_dispatch_precision": None})
    return rules.first_level().model_copy(update={"classifier": settings, "submodels": {}})


class TwoLevelClassifier(Classifier):
    """A Classifier whose decisions refine the first level's category with a sub-model where the rules say so."""

    def __init__(self, model: LoadedModel, rules: Rules, submodels: dict[str, LoadedModel]) -> None:
        missing = [name for name in rules.submodels if name not in submodels]
        if missing:
            raise ModelError(f"缺少子模型 {missing}")
        super().__init__(model, _first_rules(rules))
        # the first level's lookups were built from its own rules; readers (reports, evaluation) see the whole file
        self.rules = rules
        self.subs = {
            name: Classifier(loaded, _sub_rules(rules, rules.submodels[name], loaded))
            for name, loaded in submodels.items()
        }
        # the guarantee is the combined decision's: its threshold is in the first-level model's card
        self.auto_dispatch = _auto_dispatch(model, rules)
        self._combined_threshold = dispatch_threshold(self.auto_dispatch, rules)
        self._version = "+".join([model.version, *(c.version for c in self.subs.values())])

    @property
    def version(self) -> str:
        return self._version

    def decide_batch(self, texts: Sequence[str]) -> list[Decision]:
        if not texts:
            return []
        return self.refine_batch(super().decide_batch(texts), texts)

    def refine_batch(self, first: Sequence[Decision], texts: Sequence[str]) -> list[Decision]:
        """The combined decisions, given the first level's decisions of the same texts."""
        refined = {name for d in first if (name := self.rules.categories[d.category].refine) is not None}
        second = {name: self.subs[name].decide_batch(texts) for name in refined}
        out = []
        for i, d1 in enumerate(first):
            name = self.rules.categories[d1.category].refine
            out.append(self._refine(d1, second[name][i], name) if name else self._single(d1))
        return out

    def _level(self, level: int, d: Decision, version: str) -> dict[str, object]:
        return {
            "level": level,
            "category": d.category,
            "name": d.category_name,
            "confidence": d.confidence,
            "alternatives": [{"category": a.category, "name": a.name, "score": a.score} for a in d.alternatives],
            "review_reasons": list(d.review_reasons),
            "model_version": version,
        }

    def _finish(self, d: Decision, reasons: list[str], eligible: bool) -> Decision:
        reasons = reasons + threshold_reasons(
            self._combined_threshold, self.auto_dispatch, d.office_confidence, eligible
        )
        return dataclasses.replace(
            d,
            needs_review=bool(reasons),
            review_reasons=reasons,
            auto_eligible=eligible,
            model_version=self._version,
            co_handlers=list(self.rules.categories[d.category].co_handlers),
        )

    def _single(self, d1: Decision) -> Decision:
        levelled = dataclasses.replace(d1, levels=[self._level(1, d1, self.model.version)])
        return self._finish(levelled, list(d1.review_reasons), not d1.review_reasons)

    def _refine(self, d1: Decision, d2: Decision, name: str) -> Decision:
        rules = self.rules
        mapped, parent = set(rules.submodels[name].categories), d1.category

        def final(code: str) -> str:
            return code if code in mapped else parent

        # the second level's distribution over final categories (the kept classes fold into the parent)
        folded: dict[str, float] = {}
        for code, p in d2.scores.items():
            folded[final(code)] = folded.get(final(code), 0.0) + p
        category = final(d2.category)
        office = rules.categories[category].office
        office_share = sum(p for c, p in folded.items() if rules.categories[c].office == office)
        ranked = [category, *sorted((c for c in folded if c != category), key=lambda c: -folded[c])][:3]
        reasons = list(d1.review_reasons) + [f"第二级（{d1.category_name}细分）：{r}" for r in d2.review_reasons]
        keywords = dict(d1.matched_keywords)
        for code, words in d2.matched_keywords.items():
            if code in mapped:
                keywords[code] = [*keywords.get(code, []), *words]
        refined = dataclasses.replace(
            d1,
            category=category,
            category_name=rules.categories[category].name,
            office=office,
            office_name=rules.office_name(office),
            confidence=round(d1.confidence * folded.get(category, d2.confidence), 4),
            alternatives=[
                Alternative(c, rules.categories[c].name, round(d1.confidence * folded[c], 4)) for c in ranked
            ],
            matched_keywords=keywords,
            source=d2.source,
            urgent=d1.urgent or d2.urgent,
            urgent_keywords=sorted({*d1.urgent_keywords, *d2.urgent_keywords}),
            model_category=final(d2.model_category),
            rules_category=final(d2.rules_category) if d2.rules_category else None,
            office_confidence=round(min(1.0, d1.confidence * office_share), 4),
            known_share=min(d1.known_share, d2.known_share),
            decided_by_override=d1.decided_by_override or d2.decided_by_override,
            scores={c: round(d1.confidence * p, 4) for c, p in folded.items()},
            levels=[
                self._level(1, d1, self.model.version),
                self._level(2, d2, self.subs[name].version),
            ],
        )
        return self._finish(refined, reasons, not reasons)


def load_classifier(model_dir: str | Path, rules: Rules) -> Classifier:
    """The classifier a rules file asks for: one model, or a first-level model with its sub-models."""
    model = load_model(model_dir)
    if not rules.submodels:
        return Classifier(model, rules)
    subs = {}
    for name, sub in rules.submodels.items():
        try:
            subs[name] = load_model(sub.model)
        except ModelError as exc:
            raise ModelError(f"规则文件 submodels.{name}.model 指向的子模型无法加载：{exc}") from exc
    return TwoLevelClassifier(model, rules, subs)
