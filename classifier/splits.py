"""The frozen train / calib / test split of the real labelled messages.

Each row's split is a function of its id and label only: within every label the ids are ordered by a salted SHA-256
hash and cut at fixed fractions, so each category is spread over the three splits in the same proportions (a category
with n ≥ 4 rows always has at least one in test) and nothing depends on the text, the model or the random state.
The split is computed once when the labels are shipped and then stored in the data file (field `split`): later label
fixes never move a message from one split to another.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

SPLITS = ("train", "calib", "test")
SALT = "hotline-street-split-v1"
# cumulative cut points over the rank position (rank + 0.5) / n inside a label
TEST_FRACTION = 0.30
CALIB_FRACTION = 0.25


def _key(item_id: str | int) -> bytes:
    return hashlib.sha256(f"{SALT}:{item_id}".encode()).digest()


def assign_splits(ids: Sequence[str | int], labels: Sequence[str], groups: Sequence[str] | None = None) -> list[str]:
    """`test` for ~30 %, `calib` for ~25 %, `train` for the rest, stratified by label.

    Rows with the same `groups` key (copies of one message) all take the split of the group's first row, so that
    no copy of a test message is trained or calibrated on."""
    if len(ids) != len(labels):
        raise ValueError("ids 与 labels 长度不同")
    if len({str(i) for i in ids}) != len(ids):
        raise ValueError("ids 有重复")
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_label[label].append(index)
    out = [""] * len(ids)
    for members in by_label.values():
        members.sort(key=lambda i: _key(ids[i]))
        n = len(members)
        for rank, index in enumerate(members):
            position = (rank + 0.5) / n
            if position < TEST_FRACTION:
                out[index] = "test"
            elif position < TEST_FRACTION + CALIB_FRACTION:
                out[index] = "calib"
            else:
                out[index] = "train"
    if groups is not None:
        first: dict[str, str] = {}
        for index, key in enumerate(groups):
            out[index] = first.setdefault(key, out[index])
    return out
