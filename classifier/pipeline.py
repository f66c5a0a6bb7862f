"""The classifier's scikit-learn Pipeline: normalize → word + character TF-IDF → logistic regression."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, Normalizer
from sklearn.svm import LinearSVC

from classifier.normalize import compile_boilerplate, normalize_text
from classifier.tokenizer import Tokenizer

TITLE_SEPARATOR = "\x1e"
_ALNUM_RUNS = re.compile(r"[a-z0-9]+|\s+")


class TextNormalizer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Pipeline step wrapping classifier.normalize so that the saved model normalizes exactly as in training.

    A text may carry a title before TITLE_SEPARATOR (\\x1e, which plain normalization treats as a space);
    `title_repeat` appends the title that many more times, since titles are dense with the topic.
    `strip_alnum` drops runs of letters and digits (anonymised place codes, dates, numbers) and all spaces.
    """

    def __init__(self, boilerplate: tuple[str, ...] = (), title_repeat: int = 0, strip_alnum: bool = False) -> None:
        self.boilerplate = boilerplate
        self.title_repeat = title_repeat
        self.strip_alnum = strip_alnum

    def fit(self, texts: Iterable[str], y: Any = None) -> TextNormalizer:
        return self

    def _one(self, text: str, pattern: re.Pattern[str] | None) -> str:
        def norm(part: str) -> str:
            out = normalize_text(part, pattern)
            return _ALNUM_RUNS.sub("", out) if self.strip_alnum else out

        if not self.title_repeat or TITLE_SEPARATOR not in text:
            return norm(text)
        title = text.split(TITLE_SEPARATOR, 1)[0]
        return norm(text) + (" " + norm(title)) * self.title_repeat

    def transform(self, texts: Iterable[str]) -> list[str]:
        pattern = compile_boilerplate(self.boilerplate)
        return [self._one(str(t), pattern) for t in texts]


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
    # None: same as sublinear_tf
    char_sublinear: bool | None = None
    title_repeat: int = 0
    strip_alnum: bool = False
    # LSA (TruncatedSVD) of the word TF-IDF, concatenated at lsa_weight; 0 = off
    lsa_components: int = 0
    lsa_weight: float = 0.3
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
    *,
    user_words: Sequence[str],
    boilerplate: Sequence[str],
    params: PipelineParams | None = None,
    unlabelled: Sequence[str] | None = None,
) -> Pipeline:
    """A fresh, unfitted pipeline; the tokenizer (with the rules' user dictionary) lives inside it.

    With `unlabelled` texts, the vocabularies, IDF weights and LSA are learned from them once and frozen: fitting
    the pipeline then trains only the classifier (the unlabelled texts are not stored in the model).
    """
    p = params or PipelineParams()
    normalizer = TextNormalizer(tuple(boilerplate), p.title_repeat, p.strip_alnum)
    features = _features(user_words, p)
    if unlabelled:
        features = FrozenEstimator(features.fit(normalizer.transform(unlabelled)))
    return Pipeline([("normalize", normalizer), ("features", features), ("model", _model(p))])


def _features(user_words: Sequence[str], p: PipelineParams) -> FeatureUnion:
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
        sublinear_tf=p.sublinear_tf if p.char_sublinear is None else p.char_sublinear,
        dtype=_float32(),
    )
    if p.lsa_components <= 0:
        return FeatureUnion(
            [("words", words), ("chars", chars)],
            transformer_weights={"words": p.word_weight, "chars": p.char_weight},
        )
    lsa = Pipeline([("svd", TruncatedSVD(p.lsa_components, random_state=p.seed)), ("l2", Normalizer())])
    word_block = Pipeline(
        [
            ("tfidf", words),
            (
                "mix",
                FeatureUnion(
                    [("raw", FunctionTransformer(accept_sparse=True)), ("lsa", lsa)],
                    transformer_weights={"raw": p.word_weight, "lsa": p.lsa_weight},
                ),
            ),
        ]
    )
    return FeatureUnion([("words", word_block), ("chars", chars)], transformer_weights={"chars": p.char_weight})


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
