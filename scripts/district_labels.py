"""Build the district model's labelled file (models/district/level1_labels.jsonl) from the hand labels.

    .venv/bin/python scripts/district_labels.py --teddy DIR

Inputs, all even 留言编号 only (odd ids are reserved for an independent evaluation and never read):
- DIR/附件2_示例数据_e2.csv: the competition's 一级分类 labels → split "train";
- models/district/class_labels.jsonl: our first-level labels of messages from models/street/real_labels.jsonl's train
  and calib splits → the same split; calib rows get a `target`, the final category the combined decision must reach
  (the street label under 城乡建设 and 环境保护, else the first-level class);
- models/district/eval_labels.jsonl: our bureau labels of messages from the street test split → split "test", with
  `bureau` and `co_handlers` (never read by training or calibration).
Texts come from models/street/real_labels.jsonl (ours) and the 附件2 file.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DISTRICT = ROOT / "models" / "district"
REFINED = {"城乡建设", "环境保护"}
SAMPLE = "附件2_示例数据_e2.csv"
MESSAGE_FILES = ("附件2_示例数据_e2.csv", "附件3.csv", "附件4.csv", "测试数据.csv")
MIN_TITLE = 8


def _odd_only_titles(teddy: Path) -> set[str]:
    """Titles (≥ 8 characters) that occur only under odd ids: an even message holding one repeats a reserved
    message, and is left out (the check of models/street/LABELLING.md: titles only, never an odd message's text)."""
    odd: set[str] = set()
    even: set[str] = set()
    for name in MESSAGE_FILES:
        with (teddy / name).open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                title = row["留言主题"].strip()
                if len(title) >= MIN_TITLE:
                    (odd if int(row["留言编号"]) % 2 else even).add(title)
    return odd - even


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _sample_rows(teddy: Path) -> list[dict[str, object]]:
    reserved = _odd_only_titles(teddy)
    rows = []
    with (teddy / SAMPLE).open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            ident = int(row["留言编号"])
            if ident % 2:
                continue  # odd ids: reserved, not read
            title, content = row["留言主题"].strip(), row["留言详情"].strip()
            if any(t in title or t in content for t in reserved):
                continue
            rows.append(
                {"id": ident, "title": title, "content": content, "label": row["一级分类"].strip(), "split": "train"}
            )
    return rows


def build(teddy: Path) -> list[dict[str, object]]:
    street = {int(r["id"]): r for r in _jsonl(ROOT / "models" / "street" / "real_labels.jsonl")}  # type: ignore[call-overload]
    rows = _sample_rows(teddy)
    seen = {int(r["id"]) for r in rows}  # type: ignore[call-overload]
    for label in _jsonl(DISTRICT / "class_labels.jsonl"):
        ident = int(label["id"])  # type: ignore[call-overload]
        if ident in seen:
            continue
        source = street[ident]
        row: dict[str, object] = {
            "id": ident,
            "title": source["title"],
            "content": source["content"],
            "label": label["district_class"],
            "clarity": label["clarity"],
            "split": source["split"],
        }
        if source["split"] == "calib":
            refined = label["district_class"] in REFINED and source["label"] != "other"
            row["target"] = source["label"] if refined else label["district_class"]
        rows.append(row)
    for label in _jsonl(DISTRICT / "eval_labels.jsonl"):
        ident = int(label["id"])  # type: ignore[call-overload]
        source = street[ident]
        assert source["split"] == "test" and ident not in seen
        rows.append(
            {
                "id": ident,
                "title": source["title"],
                "content": source["content"],
                "label": label["district_class"],
                "clarity": label["clarity"],
                "split": "test",
                "bureau": label["bureau"],
                "alt_bureau": label["alt_bureau"],
                "co_handlers": label["co_handlers"],
            }
        )
    assert all(int(r["id"]) % 2 == 0 for r in rows)  # type: ignore[call-overload]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teddy", type=Path, required=True, help="泰迪杯 C 题数据目录（含 附件2_示例数据_e2.csv）")
    parser.add_argument("--out", type=Path, default=DISTRICT / "level1_labels.jsonl")
    args = parser.parse_args()
    rows = build(args.teddy)
    with args.out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    splits = {s: sum(1 for r in rows if r["split"] == s) for s in ("train", "calib", "test")}
    print(f"写入 {len(rows)} 条到 {args.out}：{splits}")


if __name__ == "__main__":
    main()
