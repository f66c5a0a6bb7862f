"""Keyword rules: any/all/none semantics, scores, overrides, and the fast scan."""

from __future__ import annotations

from classifier.config import KeywordRule, Rules
from classifier.keywords import KeywordMatcher, _rule_hits


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
