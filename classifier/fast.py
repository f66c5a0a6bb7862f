"""A fast prediction path compiled from a fitted Pipeline.

scikit-learn's per-call validation costs milliseconds per ticket, far more than the arithmetic. At load time we read
the fitted vocabularies, IDF weights, coefficients and calibrators out of the Pipeline and compute the same
probabilities with plain dict lookups and one small matrix product. The Pipeline stays the artifact and the
reference: tests check that both paths agree to 1e-9 on real tickets, and loading refuses shapes this module does
not know, so an unexpected model falls back to `Pipeline.predict_proba`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

_WHITE_SPACES = re.compile(r"\s\s+")
# below this many texts the per-text path is cheaper than building sparse matrices
_BATCH_MIN = 16


class UnsupportedPipeline(ValueError):
    pass


def _word_ngrams(tokens: list[str], lo: int, hi: int) -> list[str]:
    grams = list(tokens) if lo == 1 else []
    for n in range(max(lo, 2), hi + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


def _char_ngrams(text: str, lo: int, hi: int) -> list[str]:
    text = _WHITE_SPACES.sub(" ", text)
    grams: list[str] = []
    current = list(text)
    if lo == 1:
        grams.extend(current)
    for n in range(2, hi + 1):
        # n-grams are (n-1)-grams extended by the next character; map() keeps the loop in C
        current = list(map(operator.add, current, text[n - 1 :]))
        if n >= lo:
            grams.extend(current)
    return grams


class _CharCodes:
    """Character n-grams (n ≤ 3) as integers — code points + 1 packed 21 bits apart — looked up in a sorted array,
    so that a whole batch is cut and matched by numpy instead of one Python string per n-gram."""

    MAX_N = 3

    def __init__(self, vocabulary: dict[str, int], lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        keys = np.fromiter((self.pack(g) for g in vocabulary), dtype=np.int64, count=len(vocabulary))
        columns = np.fromiter(vocabulary.values(), dtype=np.intp, count=len(vocabulary))
        order = np.argsort(keys)
        self.keys, self.columns = keys[order], columns[order]

    @staticmethod
    def pack(gram: str) -> int:
        return sum((ord(ch) + 1) << (21 * i) for i, ch in enumerate(gram))

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        # texts joined by NUL; code 0 (NUL, as code point + 1 is never 0) marks n-grams that cross texts
        joined = "\x00".join(_WHITE_SPACES.sub(" ", t) for t in texts)
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64) + 1
        codes[codes == 1] = 0
        doc = np.cumsum(codes == 0)
        grams, rows = [], []
        for n in range(self.lo, self.hi + 1):
            if len(codes) < n:
                continue
            packed = codes[: len(codes) - n + 1].copy()
            valid = packed != 0
            for i in range(1, n):
                part = codes[i : len(codes) - n + 1 + i]
                packed |= part << (21 * i)
                valid &= part != 0
            grams.append(packed[valid])
            rows.append(doc[: len(codes) - n + 1][valid])
        if not grams:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        flat, where = np.concatenate(grams), np.concatenate(rows)
        pos = np.minimum(np.searchsorted(self.keys, flat), len(self.keys) - 1)
        found = self.keys[pos] == flat
        return where, np.where(found, self.columns[pos], -1)


class _Block:
    """One fitted TfidfVectorizer: text → (column indices, values), exactly as its transform would."""

    def __init__(self, vectorizer: TfidfVectorizer, offset: int, weight: float) -> None:
        if vectorizer.norm != "l2" or not vectorizer.use_idf or vectorizer.binary or vectorizer.lowercase:
            raise UnsupportedPipeline("只支持 l2 归一化、使用 IDF、非二值、不转小写的 TfidfVectorizer")
        self.vocabulary: dict[str, int] = vectorizer.vocabulary_
        self.idf = vectorizer.idf_
        self.sublinear = bool(vectorizer.sublinear_tf)
        self.offset = offset
        self.weight = weight
        lo, hi = vectorizer.ngram_range
        self._codes: _CharCodes | None = None
        if vectorizer.analyzer == "char":
            self.analyze: Callable[[str], list[str]] = lambda t: _char_ngrams(t, lo, hi)
            if hi <= _CharCodes.MAX_N:
                self._codes = _CharCodes(self.vocabulary, lo, hi)
        elif vectorizer.analyzer == "word" and callable(vectorizer.tokenizer):
            tokenizer = vectorizer.tokenizer
            self.analyze = lambda t: _word_ngrams(tokenizer(t), lo, hi)
        else:
            raise UnsupportedPipeline(f"不支持的 analyzer: {vectorizer.analyzer!r}")

    def features(self, text: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], float]:
        """Columns, values and the share of the text's n-grams that are in the vocabulary (1.0 for no n-grams)."""
        grams = self.analyze(text)
        # map() over dict.get runs in C; unknown n-grams become -1 and are dropped by numpy
        ids = np.fromiter(map(self.vocabulary.get, grams, repeat(-1)), dtype=np.intp, count=len(grams))
        known = ids[ids >= 0]
        share = len(known) / len(ids) if len(ids) else 0.0
        columns, counts = np.unique(known, return_counts=True)
        if not len(columns):
            return columns, np.zeros(0), share
        tf = counts.astype(np.float64)
        if self.sublinear:
            tf = 1.0 + np.log(tf)
        values = tf * self.idf[columns]
        values *= self.weight / math.sqrt(float(values @ values))
        return columns + self.offset, values, share

    def _ids(self, texts: Sequence[str]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(row, vocabulary column or -1) for every n-gram of every text."""
        if self._codes is not None:
            return self._codes.lookup(texts)
        grams_per_text = [self.analyze(t) for t in texts]
        lengths = np.fromiter(map(len, grams_per_text), dtype=np.intp, count=len(texts))
        flat = [g for grams in grams_per_text for g in grams]
        ids = np.fromiter(map(self.vocabulary.get, flat, repeat(-1)), dtype=np.intp, count=len(flat))
        return np.repeat(np.arange(len(texts)), lengths), ids

    def matrix(self, texts: Sequence[str], width: int) -> tuple[sparse.csr_matrix, np.ndarray[Any, Any]]:
        """The block's rows for many texts at once, laid into a matrix `width` columns wide, and per text the share
        of its n-grams that are in the vocabulary."""
        rows, ids = self._ids(texts)
        known = ids >= 0
        total = np.bincount(rows, minlength=len(texts))
        hits = np.bincount(rows[known], minlength=len(texts))
        share = np.divide(hits, total, out=np.zeros(len(texts)), where=total > 0)
        counts = sparse.csr_matrix(
            (np.ones(int(known.sum())), (rows[known], ids[known] + self.offset)), shape=(len(texts), width)
        )
        counts.sum_duplicates()
        if self.sublinear:
            counts.data = 1.0 + np.log(counts.data)
        counts.data *= self.idf[counts.indices - self.offset]
        norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
        scale = np.divide(self.weight, norms, out=np.zeros_like(norms), where=norms > 0)
        return sparse.csr_matrix(sparse.diags(scale) @ counts), share


class FastPredictor:
    """`predict_proba` for already-normalized texts, equal to the Pipeline's own."""

    def __init__(self, pipeline: Pipeline) -> None:
        steps = dict(pipeline.steps)
        features, model = steps.get("features"), steps.get("model")
        if not isinstance(features, FeatureUnion) or model is None:
            raise UnsupportedPipeline("快速路径只支持 FeatureUnion 特征与 model 两步")
        normalizer = steps.get("normalize")
        if getattr(normalizer, "title_repeat", 0) or getattr(normalizer, "strip_alnum", False):
            raise UnsupportedPipeline("快速路径不支持标题加权或去除字母数字的规范化")
        weights = features.transformer_weights or {}
        self.blocks: list[_Block] = []
        offset = 0
        for name, vectorizer in features.transformer_list:
            if not isinstance(vectorizer, TfidfVectorizer):
                raise UnsupportedPipeline(f"特征 {name} 不是 TfidfVectorizer")
            self.blocks.append(_Block(vectorizer, offset, float(weights.get(name, 1.0))))
            offset += len(vectorizer.vocabulary_)
        self._init_model(model)
        self._weights = np.ascontiguousarray(np.asarray(self.coef, dtype=np.float64).T)

    def _init_model(self, model: Any) -> None:
        if isinstance(model, LogisticRegression):
            self.kind = "softmax"
            self.coef, self.intercept = model.coef_, model.intercept_
            return
        if isinstance(model, CalibratedClassifierCV) and len(model.calibrated_classifiers_) == 1:
            calibrated = model.calibrated_classifiers_[0]
            if calibrated.method != "sigmoid" or len(model.classes_) < 3:
                raise UnsupportedPipeline("只支持多类别 sigmoid 校准")
            self.kind = "sigmoid"
            self.coef, self.intercept = calibrated.estimator.coef_, calibrated.estimator.intercept_
            self.a = np.array([c.a_ for c in calibrated.calibrators])
            self.b = np.array([c.b_ for c in calibrated.calibrators])
            return
        raise UnsupportedPipeline(f"不支持的模型类型 {type(model).__name__}")

    def _decision(self, text: str) -> tuple[np.ndarray[Any, Any], float]:
        parts = [block.features(text) for block in self.blocks]
        columns = np.concatenate([c for c, _, _ in parts])
        values = np.concatenate([v for _, v, _ in parts])
        # gathering whole rows of the transposed matrix is contiguous, and a dot of ~200 values needs no BLAS threads
        return np.asarray(values @ self._weights[columns] + self.intercept), parts[0][2]

    def _decisions(self, normalized: Sequence[str]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        if len(normalized) < _BATCH_MIN:
            singles = [self._decision(t) for t in normalized]
            return np.vstack([d for d, _ in singles]), np.array([s for _, s in singles])
        width = self._weights.shape[0]
        blocks = [block.matrix(normalized, width) for block in self.blocks]
        features = sum((m for m, _ in blocks), start=sparse.csr_matrix((len(normalized), width)))
        return np.asarray(features @ self._weights + self.intercept), blocks[0][1]

    def predict_proba(self, normalized: Sequence[str]) -> np.ndarray[Any, Any]:
        return self.predict(normalized)[0]

    def predict(self, normalized: Sequence[str]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Probabilities, and per text the share of its word n-grams in the vocabulary (the first block's)."""
        scores, known = self._decisions(normalized)
        if self.kind == "softmax":
            scores = scores - scores.max(axis=1, keepdims=True)
            exp = np.exp(scores)
            return np.asarray(exp / exp.sum(axis=1, keepdims=True)), known
        proba = expit(-(self.a * scores + self.b))
        total = proba.sum(axis=1, keepdims=True)
        uniform = np.full_like(proba, 1.0 / proba.shape[1])
        return np.asarray(np.divide(proba, total, out=uniform, where=total != 0)), known


def known_share(pipeline: Pipeline, texts: Sequence[str]) -> np.ndarray[Any, Any]:
    """The share of each raw text's word n-grams in the vocabulary of the pipeline's first feature block
    (the slow path's equivalent of FastPredictor.predict's second value)."""
    steps = dict(pipeline.steps)
    normalized = steps["normalize"].transform(texts) if "normalize" in steps else list(texts)
    features = steps.get("features")
    vectorizer = getattr(features, "estimator", features)
    first = vectorizer.transformer_list[0][1] if isinstance(vectorizer, FeatureUnion) else None
    while isinstance(first, Pipeline):
        first = first.steps[0][1]
    if not isinstance(first, TfidfVectorizer):
        return np.ones(len(texts))
    analyze = first.build_analyzer()
    vocabulary = first.vocabulary_
    out = np.zeros(len(texts))
    for i, text in enumerate(normalized):
        grams = analyze(text)
        out[i] = sum(g in vocabulary for g in grams) / len(grams) if grams else 0.0
    return out
