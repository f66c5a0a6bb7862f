"""Text normalization: full-width, traditional characters, boilerplate and personal numbers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from classifier.normalize import compile_boilerplate, mask_personal_numbers, normalize_text


def test_traditional_and_full_width_become_simplified_half_width() -> None:
    assert normalize_text("樓道裡堆滿雜物，ＡＢＣ１２３") == "楼道里堆满杂物,abc123"


def test_phone_and_id_numbers_never_survive() -> None:
    text = "联系电话13812345678，另一个138****1234，身份证310101199001011234，座机021-58881234"
    out = normalize_text(text)
    for digits in ("13812345678", "1234", "310101199001011234", "58881234"):
        assert digits not in out
    assert "联系电话" in out


def test_boilerplate_removed_with_rules_patterns() -> None:
    pattern = compile_boilerplate([r"市民来电反映[:：]", r"要求相关部门尽快处理[。]?"])
    assert normalize_text("市民來電反映：垃圾厢房满溢，要求相关部门尽快处理。", pattern) == "垃圾厢房满溢,"


@given(st.text(max_size=200))
def test_normalize_is_idempotent_and_total(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert once == once.strip()


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.text(alphabet="群租违建垃圾", max_size=10))
def test_any_mobile_number_is_masked(phone: str, around: str) -> None:
    assert phone not in mask_personal_numbers(f"{around}{phone}{around}")
