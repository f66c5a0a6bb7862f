"""Two-level routing (a district's classes, then the street taxonomy for 城乡建设 and 环境保护) with the shipped
models and examples/district-rules.yaml; the street profile is untouched by it."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier.artifact import ModelError
from classifier.config import Rules, RulesError, load_rules, parse_rules
from classifier.decision import Classifier
from classifier.twolevel import TwoLevelClassifier, load_classifier

ROOT = Path(__file__).resolve().parents[2]
DISTRICT_RULES = ROOT / "examples" / "district-rules.yaml"
TEXT = DISTRICT_RULES.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def district() -> Classifier:
    rules = load_rules(DISTRICT_RULES)
    return load_classifier(ROOT / "models" / "district", rules)


@pytest.mark.parametrize(
    ("text", "office", "category"),
    [
        ("小区里有二房东把房子隔成十几个隔断间按床位出租，住了二十多人，要求查处群租", "fangguan", "group_renting"),
        ("邻居在楼顶私搭乱建违章建筑，加盖了一层彩钢板房，要求拆除违建", "chengguan", "illegal_construction"),
        ("小区垃圾厢房的垃圾满溢好几天没人清运，臭气熏天，要求尽快清运生活垃圾", "lvhua", "garbage"),
        ("我父亲退休多年，养老金一直没有按时发放，社保局说在核对，请问养老保险什么时候能发", "renshe", "labour_social"),
        ("孩子今年上小学，学校说户口不在学区不能入学，请问教育局学位怎么安排", "jiaoyu", "education_culture"),
    ],
)
def test_each_ticket_reaches_its_bureau_with_both_levels_explained(
    district: Classifier, text: str, office: str, category: str
) -> None:
    d = district.decide(text)
    assert (d.office, d.category) == (office, category), d.levels
    assert d.office_name == district.rules.office_name(office)
    refined = district.rules.categories[d.levels[0]["category"]].refine is not None
    assert [level["level"] for level in d.levels] == ([1, 2] if refined else [1])
    assert d.model_version == district.version and "+" in district.version
    assert d.as_dict()["levels"] == d.levels


def test_fire_safety_names_its_co_handler(district: Classifier) -> None:
    d = district.decide("楼道里好几户居民飞线充电，电瓶车停在楼道里充电，消防通道也被堆物堵死，存在火灾隐患")
    assert (d.category, d.office, d.co_handlers) == ("fire_safety", "yingji", ["xiaofang"])


def test_second_level_other_keeps_the_first_level_category(district: Classifier) -> None:
    assert isinstance(district, TwoLevelClassifier)
    d = district.decide("开发商迟迟不给办理房产证，交房三年了产权证还没有下来，要求住建部门督促开发商办证")
    assert [level["category"] for level in d.levels] == ["urban_rural", "other"]
    assert (d.category, d.office) == ("urban_rural", "fangguan")
    # the district's own `other` (其他, reviewed always) is not the street model's `other`
    assert not any("保持第一级分类" in r or "一律" in r for r in d.review_reasons), d.review_reasons


def test_the_combined_decision_has_the_threshold_of_the_combined_calibration(district: Classifier) -> None:
    card = district.model.card["auto_dispatch"]
    assert card["score"] == "office_confidence" and card["guarantee"]["n_calib"] >= 300
    d = district.decide("小区垃圾厢房的垃圾满溢好几天没人清运")
    if card["threshold"] is None:
        assert d.needs_review and "全部工单由派单员审核" in " ".join(d.review_reasons)


def test_the_street_profile_stays_one_level() -> None:
    street = load_classifier(ROOT / "models" / "street", load_rules(ROOT / "rules.yaml"))
    assert type(street) is Classifier
    d = street.decide("小区里有二房东把房子隔成十几个隔断间按床位出租，住了二十多人")
    assert (d.category, d.office, d.levels) == ("group_renting", "pingan", [])


@pytest.mark.parametrize(
    ("old", "new", "where", "why"),
    [
        ("    refine: street\n", "    refine: nowhere\n", "categories.urban_rural.refine", "子模型「nowhere」未在"),
        (
            "    co_handlers: [xiaofang]",
            "    co_handlers: [nobody]",
            "categories.fire_safety.co_handlers.0",
            "协办单位",
        ),
        ("categories: [group_renting,", "categories: [no_such,", "submodels.street.categories.0", "不是已定义的分类"),
    ],
)
def test_submodel_mistakes_point_at_their_line(old: str, new: str, where: str, why: str) -> None:
    bad = TEXT.replace(old, new, 1)
    line = bad[: bad.index(new)].count("\n") + 1
    with pytest.raises(RulesError) as err:
        parse_rules(bad)
    assert f"第 {line} 行 {where}" in str(err.value) and why in str(err.value)


def test_first_level_view_drops_the_second_level() -> None:
    rules: Rules = load_rules(DISTRICT_RULES)
    first = rules.first_level()
    assert set(first.categories) == set(rules.categories) - rules.second_level()
    assert "group_renting" in rules.categories and "group_renting" not in first.categories


def test_a_missing_submodel_is_refused_naming_the_rules_entry(tmp_path: Path) -> None:
    bad = tmp_path / "district.yaml"
    bad.write_text(TEXT.replace("model: models/street", "model: models/nowhere"), encoding="utf-8")
    with pytest.raises(ModelError, match=r"submodels\.street\.model"):
        load_classifier(ROOT / "models" / "district", load_rules(bad))
