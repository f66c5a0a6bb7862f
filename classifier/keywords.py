"""Keyword rules from the rules file: which rules match a (normalized) text, and the per-category scores."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from classifier.config import KeywordRule, Rules
from classifier.normalize import compile_boilerplate, normalize_text


@dataclass(frozen=True)
class RuleMatch:
    """What the keyword rules say about one text."""

    scores: dict[str, float] = field(default_factory=dict)
    keywords: dict[str, list[str]] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()

    @property
    def top(self) -> str | None:
        if not self.scores:
            return None
        return max(self.scores, key=lambda c: (self.scores[c], c))


def _rule_hits(rule: KeywordRule, text: str | set[str]) -> list[str] | None:
    """Words that made the rule match, or None when it does not match.

    `text` is the text itself, or the set of rule words it contains (faster when many rules share words)."""
    if any(word in text for word in rule.none):
        return None
    if not all(word in text for word in rule.all):
        return None
    hits = [word for word in rule.any if word in text]
    if rule.any and not hits:
        return None
    return [*rule.all, *hits]


class KeywordMatcher:
    def __init__(self, rules: Rules) -> None:
        self._rules = [(code, rule) for code, cat in rules.categories.items() for rule in cat.rules]
        self._urgent = [w for w in rules.urgency.keywords]
        words = sorted({w for _, r in self._rules for w in (*r.any, *r.all, *r.none)}, key=lambda w: (-len(w), w))
        # one C-level scan: the lookahead reports the longest word starting at every position, and each found
        # word brings the shorter words it contains, so overlapping and nested words are all seen
        self._scan = re.compile("(?=(" + "|".join(map(re.escape, words)) + "))") if words else None
        self._inside = {w: [v for v in words if v in w] for w in words}
        self._triggers: dict[str, list[int]] = {}
        for index, (_, rule) in enumerate(self._rules):
            for word in (*rule.any, *rule.all):
                self._triggers.setdefault(word, []).append(index)

    def match(self, normalized: str) -> RuleMatch:
        """Match rules against already-normalized text (see classifier.normalize)."""
        scores: dict[str, float] = {}
        keywords: dict[str, list[str]] = {}
        overrides: list[str] = []
        present: set[str] = set()
        if self._scan is not None:
            for found in self._scan.finditer(normalized):
                present.update(self._inside[found.group(1)])
        # only rules that one of the present words can trigger are evaluated, in file order
        for index in sorted({i for word in present for i in self._triggers.get(word, ())}):
            code, rule = self._rules[index]
            hits = _rule_hits(rule, present)
            if hits is None:
                continue
            if rule.override:
                overrides.append(code)
            else:
                scores[code] = scores.get(code, 0.0) + rule.weight
            seen = keywords.setdefault(code, [])
            seen.extend(h for h in hits if h not in seen)
        return RuleMatch(scores=scores, keywords=keywords, overrides=tuple(dict.fromkeys(overrides)))

    def urgent_words(self, normalized: str) -> list[str]:
        return [w for w in self._urgent if w in normalized]

    def choose(self, normalized: str, fallback: str) -> str:
        """What the keyword rules alone would choose: an override, else the top score, else `fallback`."""
        found = self.match(normalized)
        if found.overrides:
            return found.overrides[0]
        return found.top or fallback


def rules_only(rules: Rules, texts: list[str]) -> list[str]:
    """Rules-alone predictions, to make the value of the keyword rules visible in evaluation."""
    matcher = KeywordMatcher(rules)
    pattern = compile_boilerplate(rules.classifier.boilerplate)
    fallback = rules.classifier.fallback_category
    return [matcher.choose(normalize_text(t, pattern), fallback) for t in texts]
