"""Word segmentation with a user dictionary built from the rules file (keywords, road and estate names)."""

from __future__ import annotations

import re
from typing import Any

import rjieba

# Function words and punctuation carry no topic; dropping them keeps the vocabulary small.
_STOPWORDS = frozenset(
    [
        "的",
        "了",
        "是",
        "在",
        "我",
        "我们",
        "你",
        "他",
        "她",
        "它",
        "有",
        "和",
        "就",
        "都",
        "也",
        "还",
        "又",
        "很",
        "这",
        "那",
        "这个",
        "那个",
        "一个",
        "个",
        "被",
        "把",
        "让",
        "给",
        "对",
        "向",
        "从",
        "到",
        "与",
        "及",
        "或",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "哦",
        "嘛",
        "么",
        "着",
        "过",
        "等",
        "之",
        "其",
        "且",
        "而",
        "但",
        "但是",
        "因为",
        "所以",
        "如果",
        "已经",
        "一直",
        "现在",
        "目前",
        "请",
        "能",
        "会",
        "要",
        "想",
        "说",
    ]
)


class Tokenizer:
    """Callable word tokenizer (rjieba, the Rust port of jieba: same dictionary, ~40x faster).

    Holds only plain data so that the model artifact can be saved and loaded without pickling code objects;
    the segmenter itself is rebuilt on first use after loading.
    """

    def __init__(self, user_words: tuple[str, ...] = ()) -> None:
        self.user_words = tuple(user_words)
        self._jieba: Any = None

    def _segmenter(self) -> Any:
        if self._jieba is None:
            jieba = rjieba.Jieba()
            for word in self.user_words:
                # a high frequency makes the dictionary prefer the whole name over its pieces
                jieba.add_word(word, 100_000, None)
            self._jieba = jieba
        return self._jieba

    def __call__(self, text: str) -> list[str]:
        return [t for t in self._segmenter().cut(text, True) if t not in _STOPWORDS and _keep(t)]

    def __getstate__(self) -> dict[str, Any]:
        return {"user_words": list(self.user_words)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.user_words = tuple(state["user_words"])
        self._jieba = None

    def __repr__(self) -> str:
        return f"Tokenizer(user_words=<{len(self.user_words)} words>)"


_WORDY = re.compile(r"[^\W_]")


def _keep(token: str) -> bool:
    """Tokens with at least one letter or digit that are not bare numbers (jieba never pads tokens with spaces)."""
    return _WORDY.search(token) is not None and not token.isdigit()
