"""Evaluation metrics on a hand-computed fixture."""

from __future__ import annotations

import pytest

from classifier.evaluate import auto_dispatch_curve, metrics


def test_metrics_on_a_hand_computed_fixture() -> None:
    truth = ["a", "a", "b", "b"]
    pred = ["a", "b", "b", "b"]
    m = metrics(truth, pred, [0.9, 0.4, 0.8, 0.6])
    assert m["accuracy"] == 0.75
    # a: P=1 R=.5 F1=.6667; b: P=.6667 R=1 F1=.8 → macro .7333
    assert m["macro_f1"] == pytest.approx(0.7333, abs=1e-4)
    assert m["confusion"]["matrix"] == [[1, 1], [0, 2]]
    curve = {p["threshold"]: p for p in auto_dispatch_curve(truth, pred, [0.9, 0.4, 0.8, 0.6])}
    assert curve[0.5] == {"threshold": 0.5, "auto_share": 0.75, "accuracy": 1.0}
    assert curve[0.95]["auto_share"] == 0.0
