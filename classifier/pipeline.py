"""The classifier's scikit-learn Pipeline: normalize → word + character TF-IDF → logistic regression."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from classifier.normalize import compile_boilerplate, normalize_text
from classifier.tokenizer import Tokenizer


class TextNormalizer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Pipeline step wrapping classifier.normalize so that the saved model normalizes exactly as in training."""

    def __init__(self, boilerplate: tuple[str, ...] = ()) -> None:
        self.boilerplate = boilerplate

    def fit(self, texts: Iterable[str], y: Any = None) -> TextNormalizer:
        return self

    def transform(self, texts: Iterable[str]) -> list[str]:
        pattern = compile_boilerplate(self.boilerplate)
        return [normalize_text(str(t), pattern) for t in texts]


@dataclass(frozen=True)
class PipelineParams:
    """Hyperparameters; stored in the model card so that a model can be rebuilt from its card."""

    word_ngram_max: int = 2
    char_ngram_min: int = 1
    char_ngram_max: int = 3
    min_df: int = 2
    max_df: float = 1.0
    sublinear_tf: bool = True
    word_weight: float = 1.0
    char_weight: float = 1.0
    # "svc": linear SVM with sigmoid calibration (fast, best on our data); "logreg": multinomial logistic regression
    model: str = "svc"
    c: float = 0.5
    class_weight: str | None = "balanced"
    calibration_folds: int = 3
    max_iter: int = 5000
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_pipeline(
    *, user_words: Sequence[str], boilerplate: Sequence[str], params: PipelineParams | None = None
) -> Pipeline:
    """A fresh, unfitted pipeline; the tokenizer (with the rules' user dictionary) lives inside it."""
    p = params or PipelineParams()
    words = TfidfVectorizer(
        tokenizer=Tokenizer(tuple(user_words)),
        token_pattern=None,
        lowercase=False,
        ngram_range=(1, p.word_ngram_max),
        min_df=p.min_df,
        max_df=p.max_df,
        sublinear_tf=p.sublinear_tf,
        dtype=_float32(),
    )
    chars = TfidfVectorizer(
        analyzer="char",
        lowercase=False,
        ngram_range=(p.char_ngram_min, p.char_ngram_max),
        min_df=p.min_df,
        max_df=p.max_df,
        sublinear_tf=p.sublinear_tf,
        dtype=_float32(),
    )
    features = FeatureUnion(
        [("words", words), ("chars", chars)],
        transformer_weights={"words": p.word_weight, "chars": p.char_weight},
    )
    return Pipeline([("normalize", TextNormalizer(tuple(boilerplate))), ("features", features), ("model", _model(p))])


def _model(p: PipelineParams) -> Any:
    if p.model == "logreg":
        return LogisticRegression(C=p.c, class_weight=p.class_weight, max_iter=p.max_iter, random_state=p.seed)
    if p.model == "svc":
        svm = LinearSVC(C=p.c, class_weight=p.class_weight, max_iter=p.max_iter, random_state=p.seed)
        # probabilities the review threshold can be set against; unshuffled folds keep training deterministic
        return CalibratedClassifierCV(svm, method="sigmoid", cv=p.calibration_folds, ensemble=False)
    raise ValueError(f"未知模型类型 {p.model!r}（可选 svc / logreg）")


def _float32() -> Any:
    import numpy as np

    return np.float32
