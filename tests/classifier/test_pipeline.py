"""The pipeline: the fast path equals the scikit-learn pipeline; title weighting and alnum stripping."""

from __future__ import annotations

import numpy as np

from classifier.artifact import load_model
from classifier.config import Rules
from classifier.data import load_dataset
from tests.classifier.conftest import CORPUS, ROOT


def test_fast_path_equals_the_pipeline(rules: Rules) -> None:
    from classifier.fast import FastPredictor
    from classifier.normalize import compile_boilerplate, normalize_text

    model = load_model(ROOT / "models" / "street")
    texts = [*load_dataset(CORPUS, text_cols=["text"], label_col="label").texts[:200], "", "  ", "zzz", "a  b\t\tc"]
    pattern = compile_boilerplate(model.pipeline.named_steps["normalize"].boilerplate)
    normalized = [normalize_text(t, pattern) for t in texts]
    fast = FastPredictor(model.pipeline)
    reference = model.pipeline.predict_proba(texts)
    assert np.abs(fast.predict_proba(normalized) - reference).max() < 1e-6
    assert np.abs(fast.predict_proba(normalized[:3]) - reference[:3]).max() < 1e-6


def test_title_weighting_and_alnum_stripping() -> None:
    from classifier.pipeline import TITLE_SEPARATOR, TextNormalizer

    plain = TextNormalizer()
    weighted = TextNormalizer(title_repeat=2, strip_alnum=True)
    text = f"群租扰民{TITLE_SEPARATOR}A3区 2019年住了 12 个人"
    assert plain.transform([text]) == ["群租扰民 a3区 2019年住了 12 个人"]
    assert weighted.transform([text]) == ["群租扰民区年住了个人 群租扰民 群租扰民"]
    assert weighted.transform(["没有标题 A1"]) == ["没有标题"]
