"""The one redaction: numbers, names and rooms masked in realistic phrasings and in generated text."""

from __future__ import annotations

import itertools
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.redaction import coarse_address, mask_digits, mask_phone, redact

MOBILES = ["13812345678", "138 1234 5678", "138-1234-5678", "１３８１２３４５６７８", "+86 13812345678"]
MOBILES.append("8613812345678")
LANDLINES = ["021-58881234", "021 5888 1234", "（021）58881234", "58881234", "０２１－５８８８１２３４"]
IDS = ["310101199001011234", "31010119900101123X", "310101 19900101 1234"]
CARDS = ["6222021234567890123", "6222 0212 3456 7890", "4367 4212 3456 7890 123"]
NAMES = ["张三", "王小明", "李娜", "欧阳娜娜", "陳大文", "刘德", "黄晓明"]

# how 12345 transcripts, web forms and corpus texts introduce a caller (traditional ones included)
NAME_PHRASINGS = [
    "来电人{n}反映楼上群租",
    "来电人：{n}，反映楼道堆物",
    "來電人{n}反映樓上漏水",
    "市民{n}来电称小区垃圾没人清运",
    "市民{n}反映：楼下饭店油烟大",
    "投诉人{n}表示噪音扰民",
    "联系人：{n}，电话见工单",
    "举报人{n}要求尽快处理",
    "诉求人：{n}",
    "姓名：{n}",
    "业主{n}称物业不作为",
    "当事人{n}多次来电",
    "求助人{n}家住上南二村",
    "反映人{n}说晚上睡不着",
    "居民{n}向街道反映群租",
    "来电者{n}咨询垃圾分类",
    "{n}来电反映路灯不亮",
]
TITLED = ["{s}先生", "{s}女士", "{s}小姐", "姓{s}的房东", "{s}先生来电"]
ROOMS = [
    ("上南二村45号302室", "302"),
    ("上南路3855弄12号楼602室", "602"),
    ("云台大厦2幢1203室", "1203"),
    ("洪山路123弄5号楼3单元501室", "501"),
    ("上南二村45-302", "302"),
    ("昌里花园8号楼1101", "1101"),
    ("齐河路200弄7号401室", "401"),
    ("上南七村32号楼404房", "404"),
]


def _digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", unicodedata.normalize("NFKC", text))


def _cases() -> list[tuple[str, str, list[str]]]:
    """(text, caller name, strings that must not survive): well over 100 realistic phrasings."""
    cases: list[tuple[str, str, list[str]]] = []
    for template, name in itertools.product(NAME_PHRASINGS, NAMES[:4]):
        cases.append((template.format(n=name), "", [name]))
    for template, surname in itertools.product(TITLED, ["王", "张", "陳", "欧阳"]):
        cases.append((f"来电反映：{template.format(s=surname)}说楼上群租", "", [template.format(s=surname)]))
    for phone in MOBILES + LANDLINES:
        cases.append((f"来电人张三，联系电话{phone}，反映垃圾满溢", "张三", [_digits(phone)[-8:], "张三"]))
        cases.append((f"请回电 {phone} 谢谢", "", [_digits(phone)[-8:]]))
    for number in IDS + CARDS:
        cases.append((f"身份证/卡号：{number}，要求退还押金", "", [_digits(number)[3:-4]]))
    for address, room in ROOMS:
        cases.append((f"住{address}，楼上群租", "", [room]))
    cases += [
        ("市民王小明（住上南二村99号）反映楼下饭店油烟", "王小明", ["王小明", "小明"]),
        ("我叫王小明，王小明的电话是13812345678", "王小明", ["王小明", "12345678"]),
        ("来电人张三，电话13812345678，身份证310101199001011234，住上南二村45号302室", "张三", ["张三", "302"]),
        ("邮箱 zhang.san@example.com 可联系", "", ["zhang.san"]),
    ]
    return cases


CASES = _cases()


def test_there_are_over_a_hundred_phrasings() -> None:
    assert len(CASES) >= 100


@pytest.mark.parametrize(("text", "name", "secrets"), CASES, ids=[c[0][:24] for c in CASES])
def test_realistic_phrasings_lose_their_personal_data(text: str, name: str, secrets: list[str]) -> None:
    out = redact(text, names=(name,) if name else ())
    for secret in secrets:
        assert secret not in out and secret not in _digits(out), (text, out, secret)


@pytest.mark.parametrize(
    "text",
    [
        "市民多次反映上南路人行道破损",
        "老百姓反映垃圾厢房满溢",
        "业主委员会不作为",
        "2026年11月2日上午10点在成山路人行道",
        "上南路3855弄门口的窨井盖缺了一角",
        "小区里有30多辆僵尸车",
    ],
)
def test_plain_complaints_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_the_corpus_patterns() -> None:
    assert redact("來電人陳先生反映，樓上群租") == "來電人*先生反映，樓上群租"
    assert redact("诉求人：张先生") == "诉求人：*先生"
    assert redact("市民張三稱樓道堆物") == "市民張*稱樓道堆物"


def test_masked_forms() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("021-58881234") == "021****1234"
    assert mask_phone("58881234") == "******34"  # a short number shows almost nothing
    assert mask_phone("") == ""
    assert mask_digits("310101199001011234") == "310***********1234"
    assert redact("电话 138 1234 5678") == "电话 138****5678"


@pytest.mark.parametrize(
    ("address", "coarse"),
    [
        ("浦东新区上南路3855弄上南二村45号302室", "浦东新区上南路3855弄上南二村45号"),
        ("上南二村 45 号 302", "上南二村 45 号"),
        ("上南二村45-302", "上南二村45号"),
        ("云台大厦2幢1203室", "云台大厦2幢"),
        ("上南路100号3号楼2单元501室", "上南路100号3号楼"),
        ("成山路人行道", "成山路人行道"),
        ("", ""),
    ],
)
def test_addresses_stop_at_the_building(address: str, coarse: str) -> None:
    assert coarse_address(address) == coarse


CJK = st.text(alphabet=st.sampled_from(list("市民反映楼上群租垃圾路灯不亮，。：的了在有人")), max_size=30)
MOBILE = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
SEPARATED = st.sampled_from(["{a}{b}{c}", "{a} {b} {c}", "{a}-{b}-{c}"])


@given(before=CJK, after=CJK, mobile=MOBILE, layout=SEPARATED, full_width=st.booleans())
def test_any_mobile_in_any_text_is_masked(before: str, after: str, mobile: str, layout: str, full_width: bool) -> None:
    number = layout.format(a=mobile[:3], b=mobile[3:7], c=mobile[7:])
    if full_width:
        number = number.translate(str.maketrans("0123456789-", "０１２３４５６７８９－"))
    out = redact(f"{before}{number}{after}")
    assert _digits(out) == mobile[:3] + mobile[-4:] and "****" in out, out


@given(text=st.text(max_size=80), name=st.sampled_from(NAMES))
def test_redaction_is_idempotent_and_never_shows_the_callers_name(text: str, name: str) -> None:
    once = redact(text + name, names=(name,))
    assert name not in once
    assert redact(once, names=(name,)) == once


@given(digits=st.from_regex(r"[0-9]{7,19}", fullmatch=True), before=CJK, after=CJK)
def test_no_long_number_survives(digits: str, before: str, after: str) -> None:
    out = redact(f"{before}{digits}{after}")
    assert not re.search(r"[0-9]{5,}", out), out
