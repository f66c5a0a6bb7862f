"""One redaction for every reader without need-to-know: Open311, robot alerts, viewers' API and pages, logs.

It masks phone numbers (mobile, landline, spaced, hyphenated or full-width), ID numbers, bank cards and e-mail
addresses; names introduced by 来电人 / 市民 / 姓 / 先生 / 女士 (and the caller's own name wherever it occurs); and
room numbers, so that an address says no more than road / 小区 / 楼号. It imports nothing of the domain.
"""

from __future__ import annotations

import re
import unicodedata

_DIGIT = "[0-9０-９]"
_GAP = "[ \u00a0\u3000]"
_DASH = "[-－‐]"
# a run of digit groups (spaces inside: "138 1234 5678", "6222 0212 3456 7890"), or a landline / mobile written with
# dashes ("021-5888 1234", "138-1234-5678"), optionally after +86; at least 7 digits in all
_NUMBER = re.compile(
    rf"(?<![0-9０-９])(?:[+＋]?(?:86|８６){_GAP}?{_DASH}?)?"
    rf"(?:[0０]{_DIGIT}{{2,3}}{_DASH}{_DIGIT}{{3,4}}{_GAP}?{_DIGIT}{{4}}"
    rf"|[1１]{_DIGIT}{{2}}{_DASH}{_DIGIT}{{4}}{_DASH}{_DIGIT}{{4}}"
    rf"|{_DIGIT}(?:{_GAP}?{_DIGIT}){{6,}}[xX]?)"
    rf"(?![0-9０-９])"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# a room: 302室, 1203房, 5楼502, 45号302, 45-302; the building before it stays
_ROOM = re.compile(
    rf"(?:(?<=号)|(?<=楼)|(?<=幢)|(?<=栋)|(?<=单元)|(?<=[0-9]{_DASH}))"
    rf"{_GAP}?{_DIGIT}{{2,5}}(?:{_GAP}?(?:室|房间|房|户))?(?![0-9０-９号楼幢栋弄*])"
    rf"|{_DIGIT}{{2,5}}{_GAP}?(?:室|房间|户)"
)
_ROOM_DASH = re.compile(rf"(?<![0-9０-９])({_DIGIT}{{1,4}}){_DASH}{_DIGIT}{{2,5}}(?:室|房)?(?![0-9０-９])")

# the hundred most common surnames (about 85 % of people) and the usual compound ones
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔"
    "钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛"
    # traditional forms: hotline text sometimes arrives in them (來電人陳先生)
    "陳張劉楊黃趙吳孫馬鄭謝韓馮鄧蕭葉蘇呂盧鍾譚陸賈韋鄒龔錢嚴龍賀顧聶魯關蘭歐莊閆許羅薛範湯萬覃鄺"
    "邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝"
    "路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂"
    "全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
_COMPOUND = ("欧阳", "歐陽", "司马", "司馬", "上官", "诸葛", "諸葛", "东方", "東方", "皇甫", "尉迟", "公孙", "慕容")
_INTRODUCERS = (
    "来电人",
    "來電人",
    "来电者",
    "來電者",
    "来电市民",
    "市民",
    "诉求人",
    "訴求人",
    "投诉人",
    "投訴人",
    "反映人",
    "联系人",
    "聯繫人",
    "举报人",
    "舉報人",
    "求助人",
    "当事人",
    "業主",
    "业主",
    "居民",
    "姓名",
)
_AFTER_INTRODUCER = re.compile(rf"({'|'.join(_INTRODUCERS)})[：:\s]*([\u4e00-\u9fff]{{2,10}})")
# after these a name almost surely follows, so an uncut run still loses its first three characters
_STRONG_INTRODUCERS = frozenset(_INTRODUCERS) - {"市民", "居民", "业主", "業主"}
# a name ends where one of these begins (市民张三反映… → 张三)
_NAME_STOPS = (
    "反映",
    "来电",
    "來電",
    "投诉",
    "投訴",
    "举报",
    "舉報",
    "表示",
    "称",
    "稱",
    "说",
    "說",
    "诉",
    "訴",
    "电话",
    "電話",
    "手机",
    "手機",
    "联系",
    "聯繫",
    "住",
    "家住",
    "居住",
    "在",
    "于",
    "的",
    "向",
    "要求",
    "希望",
    "询问",
    "咨询",
    "求助",
    "先生",
    "女士",
    "小姐",
    "同志",
    "老师",
    "师傅",
    "和",
    "与",
    "及",
    "等",
    "多次",
    "一家",
    "夫妇",
    "本人",
)
# a name that opens a sentence and is followed by what it did: 王小明来电反映…
_NAME_BEFORE_VERB = re.compile(
    r"(?:^|(?<=[，。：:；;！!？?\s（(、]))([\u4e00-\u9fff]{2,4}?)(?=来电|來電|致电|反映|投诉|投訴|举报|舉報)"
)
_SURNAME_TITLE = re.compile(r"([\u4e00-\u9fff]{1,2})(?=先生|女士|小姐|阿姨|老伯|师傅)")
_SURNAME_AFTER_XING = re.compile(r"(?<![百])姓([\u4e00-\u9fff]{1,2})")


def _digits(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isascii() and ch.isdigit())


def mask_digits(digits: str) -> str:
    """138****5678 for 11 digits or more (IDs and cards alike: head and tail only); ******34 for shorter numbers."""
    n = len(digits)
    if n >= 11:
        return f"{digits[:3]}{'*' * (n - 7)}{digits[-4:]}"
    keep = 2 if n >= 7 else 0
    return "*" * (n - keep) + digits[n - keep :]


def mask_phone(phone: str | None) -> str | None:
    """A phone field as a reader without need-to-know may see it: 138****5678."""
    if not phone:
        return phone
    return mask_digits(_digits(phone)) or "*" * len(phone)


def _mask_number(match: re.Match[str]) -> str:
    text = match.group(0)
    suffix = text[-1] if text[-1] in "xX" else ""
    return mask_digits(_digits(text)) + ("*" if suffix else "")


def mask_numbers(text: str) -> str:
    """Phone, ID and bank-card numbers and e-mail addresses masked; every other character kept."""
    text = _EMAIL.sub(lambda m: m.group(0)[0] + "***@" + m.group(0).split("@", 1)[1], text)
    return _NUMBER.sub(_mask_number, text)


def _is_name(candidate: str) -> bool:
    if candidate[:2] in _COMPOUND:
        return len(candidate) >= 3
    return candidate[0] in _SURNAMES and 2 <= len(candidate) <= 3


def _cut_name(raw: str) -> str:
    """The name at the start of `raw`: up to the first word that cannot be part of a name."""
    end = len(raw)
    for stop in _NAME_STOPS:
        at = raw.find(stop, 1)
        if 0 < at < end:
            end = at
    return raw[:end]


def _masked_name(name: str) -> str:
    return name[0] + "*" * (len(name) - 1) if name[:2] not in _COMPOUND else name[:2] + "*" * (len(name) - 2)


def mask_names(text: str, known: tuple[str, ...] = ()) -> str:
    """Names after 来电人 / 市民 / 姓名 …, surnames before 先生 / 女士 and after 姓, and each known name."""
    for name in known:
        name = name.strip()
        if len(name) >= 2:
            text = text.replace(name, _masked_name(name))

    def introduced(match: re.Match[str]) -> str:
        name = _cut_name(match.group(2))
        if len(name) > 3 and match.group(1) in _STRONG_INTRODUCERS and _is_name(name[:3]):
            name = name[:3]
        if not _is_name(name):
            return match.group(0)
        start = match.start(2) - match.start(0)
        whole = match.group(0)
        return whole[:start] + _masked_name(name) + whole[start + len(name) :]

    text = _AFTER_INTRODUCER.sub(introduced, text)
    text = _NAME_BEFORE_VERB.sub(lambda m: _masked_name(m.group(1)) if _is_name(m.group(1)) else m.group(0), text)

    def titled(match: re.Match[str]) -> str:
        word = match.group(1)
        surname = word if word in _COMPOUND else word[-1]
        if surname not in _SURNAMES and surname not in _COMPOUND:
            return word
        return word[: len(word) - len(surname)] + "*" * len(surname)

    text = _SURNAME_TITLE.sub(titled, text)
    return _SURNAME_AFTER_XING.sub(lambda m: "姓*" + m.group(1)[1:] if m.group(1)[0] in _SURNAMES else m.group(0), text)


def mask_rooms(text: str) -> str:
    """Room numbers masked (上南二村45号302室 → 上南二村45号**室); road, 小区 and 楼号 stay."""
    text = _ROOM_DASH.sub(lambda m: m.group(1) + "号" + "**", text)
    return _ROOM.sub(lambda m: re.sub("[0-9０-９]", "*", m.group(0)).replace("***", "**").replace("****", "**"), text)


def redact(text: str | None, *, names: tuple[str, ...] = ()) -> str:
    """Free text as a reader without need-to-know may see it: numbers, names and room numbers masked."""
    if not text:
        return ""
    return mask_rooms(mask_names(mask_numbers(text), names))


def coarse_address(address: str | None) -> str:
    """An address cut down to road / 小区 / 楼号: what comes after the building (unit, floor, room) is dropped."""
    if not address:
        return ""
    text = mask_numbers(address.strip())
    # the last building marker: 上南路100号3号楼2单元501室 → 上南路100号3号楼
    building = re.search(rf"^.*{_DIGIT}+{_GAP}?(?:号楼|號樓|幢|栋|棟|座|号|號)", text)
    if building:
        return building.group(0)
    dash = _ROOM_DASH.search(text)
    if dash:
        return text[: dash.start()] + dash.group(1) + "号"
    return mask_rooms(text)
