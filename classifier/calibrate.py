"""Choosing the auto-dispatch threshold with a precision guarantee, and the out-of-scope cut-off.

Auto-dispatch threshold (Learn-then-Test with fixed-sequence testing). For a threshold λ, the tickets dispatched
without review are the eligible ones (no other review reason) whose office confidence is ≥ λ. We want
precision(λ) = P(right office | dispatched at λ) ≥ 1 − ε with confidence 1 − δ over the draw of the calibration set.

For every λ of a descending grid we test H_λ: precision(λ) < 1 − ε with the exact binomial p-value
p_λ = P(Bin(n_λ, ε) ≤ k_λ), where n_λ calibration tickets are dispatched at λ and k_λ of them go to the wrong office
(given n_λ, those tickets are an i.i.d. sample of the dispatched population, so p_λ is valid). Fixed-sequence
testing rejects from the top of the grid while p_λ ≤ δ and stops at the first failure; the family-wise error is at
most δ without any correction, so the lowest rejected λ has precision ≥ 1 − ε with probability ≥ 1 − δ. Rejecting
H_λ is the same as the one-sided Clopper–Pearson upper bound on the error rate being ≤ ε.

The grid must be fixed before looking at the calibration set. Its start (the first, most conservative λ) is chosen
from pilot scores that are independent of it (out-of-fold scores of the training split): the highest λ at which
enough calibration tickets are expected to be dispatched for a rejection to be possible at all. Starting where there
are almost no tickets would stop the sequence at once.

Out of scope: the share of a ticket's word n-grams that are in the model's vocabulary. The cut-off is the conformal
α-quantile of that share over in-distribution tickets: a new ordinary ticket falls below it with probability ≤ α.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import beta, binom

GRID_STEP = 0.01
GRID_LOW = 0.30


def default_grid(start: float = 1.0, low: float = GRID_LOW, step: float = GRID_STEP) -> list[float]:
    """Descending thresholds start, start − step, …, low (rounded to avoid float drift)."""
    count = round((start - low) / step)
    return [round(start - i * step, 6) for i in range(count + 1)]


def binomial_pvalue(errors: int, n: int, epsilon: float) -> float:
    """p-value of H0: error rate > ε, given `errors` out of `n` (1.0 when n == 0: no evidence)."""
    if n <= 0:
        return 1.0
    return float(binom.cdf(errors, n, epsilon))


def clopper_pearson_upper(errors: int, n: int, confidence: float) -> float:
    """One-sided Clopper–Pearson upper bound on an error rate."""
    if n <= 0 or errors >= n:
        return 1.0
    return float(beta.ppf(confidence, errors + 1, n - errors))


def min_sample(epsilon: float, delta: float) -> int:
    """Fewest dispatched tickets with which zero errors can certify error ≤ ε at level δ."""
    return math.ceil(math.log(delta) / math.log(1 - epsilon))


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold (None: no λ could be certified, nothing is dispatched without review) and evidence."""

    threshold: float | None
    precision: float
    confidence: float
    n_calib: int
    dispatched: int
    errors: int
    upper_error_bound: float
    grid_start: float
    tested: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _counts(
    scores: np.ndarray[Any, Any], correct: np.ndarray[Any, Any], eligible: np.ndarray[Any, Any], lam: float
) -> tuple[int, int]:
    auto = eligible & (scores >= lam)
    n = int(auto.sum())
    return n, int(n - correct[auto].sum())


def grid_start(
    pilot_scores: Sequence[float],
    pilot_eligible: Sequence[bool],
    *,
    n_calib: int,
    precision: float,
    confidence: float,
    grid: Sequence[float] | None = None,
    margin: float = 3.0,
) -> float:
    """The highest grid λ at which the pilot predicts ≥ margin × min_sample dispatched calibration tickets."""
    scores = np.asarray(pilot_scores, dtype=float)
    eligible = np.asarray(pilot_eligible, dtype=bool)
    grid = list(grid or default_grid())
    if not len(scores):
        return grid[0]
    need = margin * min_sample(1 - precision, 1 - confidence)
    for lam in grid:
        expected = float((eligible & (scores >= lam)).mean()) * n_calib
        if expected >= need:
            return lam
    return grid[-1]


def select_threshold(
    scores: Sequence[float],
    correct: Sequence[bool],
    eligible: Sequence[bool],
    *,
    precision: float,
    confidence: float,
    start: float = 1.0,
    grid: Sequence[float] | None = None,
) -> ThresholdChoice:
    """Fixed-sequence test down the grid (from `start`); the lowest λ rejected before the first failure."""
    s = np.asarray(scores, dtype=float)
    ok = np.asarray(correct, dtype=bool)
    el = np.asarray(eligible, dtype=bool)
    if not (len(s) == len(ok) == len(el)):
        raise ValueError("scores、correct、eligible 长度不同")
    epsilon, delta = 1 - precision, 1 - confidence
    chosen: float | None = None
    best = (0, 0)
    tested: list[dict[str, float]] = []
    for lam in [g for g in (grid or default_grid()) if g <= start + 1e-9]:
        n, k = _counts(s, ok, el, lam)
        p = binomial_pvalue(k, n, epsilon)
        tested.append({"threshold": lam, "dispatched": n, "errors": k, "p_value": round(p, 6)})
        if p > delta:
            break
        chosen, best = lam, (n, k)
    n, k = best
    return ThresholdChoice(
        threshold=chosen,
        precision=precision,
        confidence=confidence,
        n_calib=len(s),
        dispatched=n,
        errors=k,
        upper_error_bound=round(clopper_pearson_upper(k, n, confidence), 6) if chosen is not None else 1.0,
        grid_start=start,
        tested=tested,
    )


def conformal_lower_cutoff(values: Sequence[float], alpha: float) -> float:
    """A cut-off c such that a new exchangeable value is < c with probability ≤ α (0.0 when too few values)."""
    ordered = sorted(float(v) for v in values)
    k = math.floor(alpha * (len(ordered) + 1))
    if k < 1:
        return 0.0
    # a new value below the k-th smallest is among the k smallest of n + 1 exchangeable values: probability k/(n+1)
    return ordered[k - 1]
