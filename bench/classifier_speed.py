"""Classifier speed: per-ticket decision latency (p50, p99) and batch throughput on one core.

Printed side by side in one run: tokenization alone (the floor), the plain baseline pipeline
(jieba + TfidfVectorizer + LinearSVC) and ours (normalize → word+char TF-IDF → calibrated SVM, plus keyword rules).
Targets (issue 2): p50 ≤ 1 ms per ticket, ≥ 5,000 tickets/s in batch.

    .venv/bin/python bench/classifier_speed.py [--n 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jieba
import rjieba
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from classifier.artifact import load_model
from classifier.config import load_rules
from classifier.decision import Classifier

ROOT = Path(__file__).resolve().parents[1]


def _texts(n: int) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in (ROOT / "models/street/corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows]
    labels = [r["label"] for r in rows]
    reps = n // len(texts) + 1
    return (texts * reps)[:n], labels


def _latency(fn: Callable[[str], object], texts: Sequence[str]) -> tuple[float, float]:
    samples = []
    for text in texts:
        start = time.perf_counter()
        fn(text)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def _throughput(fn: Callable[[list[str]], object], texts: list[str]) -> float:
    start = time.perf_counter()
    fn(texts)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--model", default=str(ROOT / "models/street"), help="模型目录（比较新旧模型时用）")
    args = parser.parse_args()
    texts, _ = _texts(args.n)
    corpus = [json.loads(x) for x in (ROOT / "models/street/corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    rules = load_rules(ROOT / "rules.yaml")
    ours = Classifier(load_model(args.model), rules)
    jieba.setLogLevel(60)
    jieba.lcut("预热")
    baseline = make_pipeline(TfidfVectorizer(tokenizer=jieba.lcut, token_pattern=None, lowercase=False), LinearSVC())
    baseline.fit([r["text"] for r in corpus], [r["label"] for r in corpus])
    seg = rjieba.Jieba()
    for fn in (ours.decide, lambda t: baseline.predict([t]), seg.cut):
        for t in texts[:50]:
            fn(t)
    mean_len = sum(map(len, texts)) / len(texts)
    print(f"{len(texts)} 条工单，平均 {mean_len:.0f} 字；单核（OMP/OPENBLAS 线程=1）")
    rows = [
        ("分词下限 rjieba.cut", lambda t: seg.cut(t, True), lambda ts: [seg.cut(t, True) for t in ts]),
        ("基线 jieba+TF-IDF+LinearSVC", lambda t: baseline.predict([t]), baseline.predict),
        ("本系统 decide（模型+规则）", ours.decide, ours.decide_batch),
    ]
    results = {}
    for name, one, batch in rows:
        p50, p99 = _latency(one, texts[: min(len(texts), 1000)])
        rate = _throughput(batch, texts)
        results[name] = (p50, p99, rate)
        print(f"{name:<32} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  批量 {rate:10.0f} 条/秒")
    floor = results["分词下限 rjieba.cut"][2]
    base = results["基线 jieba+TF-IDF+LinearSVC"][2]
    p50, _, rate = results["本系统 decide（模型+规则）"]
    print(f"本系统批量吞吐 / 分词下限 = {rate / floor:.3f}；/ 基线 = {rate / base:.2f}")
    latency_ok = "达标" if p50 <= 1 else "未达标"
    batch_ok = "达标" if rate >= 5000 else "未达标"
    print(f"目标：p50 ≤ 1 ms → {latency_ok}；批量 ≥ 5000 条/秒 → {batch_ok}")


if __name__ == "__main__":
    main()
