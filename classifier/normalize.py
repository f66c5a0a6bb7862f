"""Text normalization applied to every ticket before rules and features see it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import opencc

# Personal numbers must never become features nor reach logs: mobile (also already-masked 138****1234),
# 18-digit ID cards, landlines with area code, and bare 7–8 digit landlines.
_PERSONAL_NUMBER = re.compile(
    r"(?<![0-9])("
    r"[1-9][0-9]{5}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9xX]"
    r"|\+?(?:86[- ]?)?1[3-9][0-9](?:[- ]?[0-9*]{4}){2}"
    r"|0[1-9][0-9]{1,2}[- ]?[0-9]{7,8}"
    r"|[2-9][0-9]{6,7}"
    r")(?![0-9])"
)
_WHITESPACE = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def mask_personal_numbers(text: str, replacement: str = " ") -> str:
    """Replace phone and ID numbers (also partly masked ones) with `replacement`."""
    return _PERSONAL_NUMBER.sub(replacement, text)


def compile_boilerplate(patterns: Iterable[str]) -> re.Pattern[str] | None:
    parts = [f"(?:{p})" for p in patterns]
    return re.compile("|".join(parts)) if parts else None


def normalize_text(text: str, boilerplate: re.Pattern[str] | None = None) -> str:
    """Full-width → half-width, traditional → simplified, masked numbers, no boilerplate, single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = _t2s().convert(text)
    text = mask_personal_numbers(text)
    if boilerplate is not None:
        text = boilerplate.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip().lower()
