"""Reading labelled or unlabelled ticket texts from CSV, XLSX or JSON Lines files."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class DataError(ValueError):
    """The data file cannot be read or lacks a requested column; the message names file, line and column."""


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    labels: list[str]
    sha256: str
    source: str


def _rows_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [dict(row) for row in csv.DictReader(fh)]


def _rows_xlsx(path: Path) -> list[dict[str, str]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = [str(h) if h is not None else "" for h in next(rows, ())]
    out = [{h: "" if v is None else str(v) for h, v in zip(header, row, strict=False)} for row in rows]
    book.close()
    return [r for r in out if any(v.strip() for v in r.values())]


def _rows_jsonl(path: Path) -> list[dict[str, str]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path} 第 {number} 行不是有效的 JSON: {exc.msg}") from exc
            if not isinstance(obj, dict):
                raise DataError(f"{path} 第 {number} 行应为 JSON 对象")
            rows.append({str(k): "" if v is None else str(v) for k, v in obj.items()})
    return rows


def read_rows(path: str | Path) -> list[dict[str, str]]:
    file = Path(path)
    if not file.is_file():
        raise DataError(f"找不到数据文件 {file}")
    readers = {".csv": _rows_csv, ".xlsx": _rows_xlsx, ".jsonl": _rows_jsonl, ".json": _rows_jsonl}
    reader = readers.get(file.suffix.lower())
    if reader is None:
        raise DataError(f"不支持的数据文件类型 {file.suffix}（支持 .csv / .xlsx / .jsonl）")
    return reader(file)


def _require(rows: list[dict[str, str]], columns: Sequence[str], path: Path) -> None:
    present = set(rows[0]) if rows else set()
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataError(f"{path} 缺少列 {missing}；现有列: {sorted(present)}")


def load_dataset(path: str | Path, *, text_cols: Sequence[str], label_col: str | None) -> Dataset:
    """Texts and labels; rows with an empty text or label are skipped.

    Several text columns are joined with the title separator (\\x1e) after the first, so that the first column
    can serve as a title; plain normalization reads the separator as a space."""
    file = Path(path)
    rows = read_rows(file)
    if not rows:
        raise DataError(f"{file} 没有数据行")
    _require(rows, [*text_cols, *([label_col] if label_col else [])], file)
    texts: list[str] = []
    labels: list[str] = []
    for row in rows:
        text = "\x1e".join(row[c].strip() for c in text_cols).strip()
        label = row[label_col].strip() if label_col else ""
        if not text or (label_col and not label):
            continue
        texts.append(text)
        labels.append(label)
    digest = hashlib.sha256(file.read_bytes())
    digest.update(json.dumps([list(text_cols), label_col]).encode())
    return Dataset(texts=texts, labels=labels, sha256=digest.hexdigest(), source=str(file))


def load_unlabelled(paths: Sequence[str | Path], *, text_cols: Sequence[str]) -> Dataset:
    """Texts of several unlabelled files (same text columns), for vocabulary, IDF and LSA."""
    texts: list[str] = []
    digest = hashlib.sha256()
    for path in paths:
        part = load_dataset(path, text_cols=text_cols, label_col=None)
        texts.extend(part.texts)
        digest.update(part.sha256.encode())
    return Dataset(
        texts=texts, labels=[""] * len(texts), sha256=digest.hexdigest(), source=", ".join(Path(p).name for p in paths)
    )


@dataclass(frozen=True)
class RealDataset:
    """Real labelled messages with their frozen split (train / calib / test) and label clarity."""

    texts: list[str]
    labels: list[str]
    splits: list[str]
    clarity: list[str]
    # the labeller's second choice ("" when none was recorded)
    alts: list[str]
    ids: list[str]
    sha256: str
    source: str
    # the final category where it differs from the label: a two-level profile trains its first level on `label`
    # and calibrates the combined decision against `target` (e.g. 城乡建设 → 群租)
    targets: list[str] | None = None

    def part(self, split: str, *, clear_only: bool = False, targets: bool = False) -> Dataset:
        keep = [i for i, s in enumerate(self.splits) if s == split and (not clear_only or self.clarity[i] == "clear")]
        labels = self.targets if targets and self.targets is not None else self.labels
        return Dataset(
            texts=[self.texts[i] for i in keep],
            labels=[labels[i] for i in keep],
            sha256=self.sha256,
            source=f"{self.source}#{split}{'-clear' if clear_only else ''}",
        )


REAL_SPLITS = ("train", "calib", "test")


def load_real(path: str | Path) -> RealDataset:
    """A real-labels file (JSONL: id, title, content, label, clarity, alt, split); text = title \\x1e content."""
    file = Path(path)
    if file.suffix.lower() not in (".jsonl", ".json"):
        raise DataError(f"真实标注文件 {file} 应为 JSONL")
    rows = read_rows(file)
    if not rows:
        raise DataError(f"{file} 没有数据行")
    _require(rows, ["id", "title", "content", "label", "split"], file)
    out: dict[str, list[str]] = {k: [] for k in ("texts", "labels", "splits", "clarity", "alts", "ids", "targets")}
    for number, row in enumerate(rows, start=1):
        split = row["split"].strip()
        if split not in REAL_SPLITS:
            raise DataError(f"{file} 第 {number} 条的 split「{split}」不是 {'/'.join(REAL_SPLITS)} 之一")
        title, content = row["title"].strip(), row["content"].strip()
        text = f"{title}\x1e{content}" if title else content
        if not text or not row["label"].strip():
            continue
        out["texts"].append(text)
        out["labels"].append(row["label"].strip())
        out["splits"].append(split)
        out["clarity"].append(row.get("clarity", "").strip() or "clear")
        out["alts"].append((row.get("alt") or "").strip())
        out["ids"].append(row["id"])
        out["targets"].append(row.get("target", "").strip() or row["label"].strip())
    targets = out.pop("targets")
    has_targets = any(r.get("target", "").strip() for r in rows)
    return RealDataset(
        **out,
        targets=targets if has_targets else None,
        sha256=hashlib.sha256(file.read_bytes()).hexdigest(),
        source=str(file),
    )
