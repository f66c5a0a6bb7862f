"""Address normalization to 小区 + 楼号, so that "上南二村45号302室" and "上南二村 45 号" are the same building."""

from __future__ import annotations

import re
import unicodedata

# a district name (黄浦区, 浦东新区) but not an estate that ends in 小区 (齐河小区12号 is a building, not a district)
_PREFIX = re.compile(r"^(上海市|上海)?(浦东新区|[^\d]{2,4}(?<!小)区)?([^\d]{2,6}(街道|镇))?")
_SPACES = re.compile(r"\s+")
# an estate or lane, then the building number: 上南二村45号, 洪山路123弄5号楼, 云台大厦2幢
_BUILDING = re.compile(
    r"(?P<estate>.+?(?:新村|村|苑|园|小区|大厦|公寓|花园|广场|坊|城|里|弄|路\d+号))"
    r"(?P<number>\d+)(?:号楼|号|幢|栋|座)"
)
_ESTATE_ONLY = re.compile(r"(?P<estate>.+?(?:新村|村|苑|园|小区|大厦|公寓|花园|广场|坊|弄))$")
_ROAD_NUMBER = re.compile(r"(?P<road>.+?(?:路|街|道))(?P<number>\d+)号")


BUILDING_KEY_MAX = 120  # Ticket.building_key is VARCHAR(120)


def building_key(address: str) -> str | None:
    """Canonical building of an address, or None when the address names no place we can pin down."""
    key = _building_key(address)
    # a 300-character address can yield a longer "building" than the column holds (a 500 on PostgreSQL); such a
    # name pins down no real building, so it gets no key rather than a truncated one that could merge two
    return key if key is None or len(key) <= BUILDING_KEY_MAX else None


def _building_key(address: str) -> str | None:
    text = _SPACES.sub("", unicodedata.normalize("NFKC", address or ""))
    text = _PREFIX.sub("", text)
    if not text:
        return None
    found = _BUILDING.match(text)
    if found:
        return f"{found['estate']}{int(found['number'])}号"
    road = _ROAD_NUMBER.match(text)
    if road:
        return f"{road['road']}{int(road['number'])}号"
    estate = _ESTATE_ONLY.match(text)
    return estate["estate"] if estate else None
