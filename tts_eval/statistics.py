"""Confidence intervals and paired comparisons for accuracies measured on a set of problems.

Every interval is a 95% percentile bootstrap over problems, seeded, so the same outcomes give
the same interval on every machine:

- :func:`accuracy_interval`: a run's accuracy (each problem's 0/1 outcome, or a share);
- :func:`subset_accuracy_interval`: an accuracy at a smaller budget k estimated from a run's
  candidates (the mean over size-k subsets per problem): problems are resampled, then within
  each resampled problem its subsets' 0/1 outcomes;
- :func:`average_interval`: the unweighted mean of several benchmarks' accuracies, each
  benchmark's problems resampled on their own;
- :func:`paired_difference`: the difference between two setups on the same problems, with
  the problems resampled together (a problem's two outcomes stay paired);
- :func:`verdict`: "beats" only when the difference's interval lies above zero, "trails"
  when it lies below, "ties" otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import bootstrap

CONFIDENCE = 0.95
RESAMPLES = 10_000
SEED = 0
# Subset counts are binomial trial counts below; beyond this many, resampling them changes
# nothing that shows, and larger values would overflow numpy's binomial.
MAX_SUBSET_TRIALS = 10**9

Verdict = Literal["beats", "ties", "trails"]


@dataclass(frozen=True)
class Interval:
    """A point estimate and its 95% interval."""

    estimate: float
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def accuracy_interval(outcomes: Sequence[float], *, seed: int = SEED) -> Interval:
    """The mean of per-problem ``outcomes`` (0/1, or a share in [0, 1]) with its 95%
    percentile bootstrap interval over problems."""
    values = _values(outcomes, "outcomes")
    return _bootstrap_mean(values, seed)


def paired_difference(a: Sequence[float], b: Sequence[float], *, seed: int = SEED) -> Interval:
    """Mean of ``a - b`` over the same problems (in the same order), with a paired 95%
    percentile bootstrap interval: each resample draws problems, and both setups' outcomes
    on them. A setup against itself gives exactly [0, 0]."""
    first, second = _values(a, "a"), _values(b, "b")
    if first.shape != second.shape:
        raise ValueError(f"paired outcomes must be on the same problems: {first.size} against {second.size}")
    return _bootstrap_mean(first - second, seed)


def subset_accuracy_interval(shares: Sequence[float], subsets: int, *, seed: int = SEED) -> Interval:
    """The mean of per-problem ``shares`` (the share of a problem's ``subsets`` size-k
    subsets whose vote is right) with a two-level 95% percentile bootstrap: problems are
    resampled with replacement, then each resampled problem's subset outcomes (a binomial
    draw of ``subsets`` trials at its share). With ``subsets`` counting every subset the inner
    level adds almost nothing; with a Monte-Carlo sample of subsets it adds that sample's noise."""
    values = _values(shares, "shares")
    if subsets < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    if np.any((values < 0) | (values > 1)):
        raise ValueError("shares must lie in [0, 1]")
    trials = min(subsets, MAX_SUBSET_TRIALS)
    rng = np.random.default_rng(seed)
    estimates = np.empty(RESAMPLES)
    for start in range(0, RESAMPLES, 1000):  # bounded memory for large problem sets
        count = min(1000, RESAMPLES - start)
        chosen = values[rng.integers(0, values.size, size=(count, values.size))]
        estimates[start : start + count] = (rng.binomial(trials, chosen) / trials).mean(axis=1)
    low, high = np.quantile(estimates, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return Interval(float(values.mean()), float(low), float(high))


def average_interval(parts: Sequence[Sequence[float]], *, seed: int = SEED) -> Interval:
    """The unweighted mean of several benchmarks' accuracies (each a list of per-problem
    outcomes) with a 95% percentile bootstrap interval: each benchmark's problems are
    resampled on their own, and the resampled accuracies averaged."""
    if not parts:
        raise ValueError("an average needs at least one benchmark")
    values = [_values(part, f"benchmark {i + 1}") for i, part in enumerate(parts)]
    rng = np.random.default_rng(seed)
    estimates = np.zeros(RESAMPLES)
    for part in values:
        for start in range(0, RESAMPLES, 1000):  # bounded memory for large problem sets
            count = min(1000, RESAMPLES - start)
            estimates[start : start + count] += part[rng.integers(0, part.size, size=(count, part.size))].mean(axis=1)
    estimates /= len(values)
    low, high = np.quantile(estimates, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return Interval(float(np.mean([part.mean() for part in values])), float(low), float(high))


def verdict(difference: Interval) -> Verdict:
    """How setup A compares with setup B given the interval of A - B."""
    if difference.low > 0:
        return "beats"
    if difference.high < 0:
        return "trails"
    return "ties"


def _values(outcomes: Sequence[float], name: str) -> np.ndarray:
    values = np.asarray(outcomes, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"{name}: expected one value per problem")
    if values.size < 2:
        raise ValueError(f"{name}: an interval over problems needs at least 2 problems, got {values.size}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name}: every per-problem value must be a finite number")
    return values


def _bootstrap_mean(values: np.ndarray, seed: int) -> Interval:
    estimate = float(values.mean())
    if np.all(values == values[0]):
        # Every resample has the same mean; scipy would warn about degenerate data.
        return Interval(estimate, estimate, estimate)
    result = bootstrap(
        (values,),
        np.mean,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
        vectorized=True,
    )
    low, high = result.confidence_interval
    return Interval(estimate, float(low), float(high))


__all__ = [
    "CONFIDENCE",
    "Interval",
    "Verdict",
    "accuracy_interval",
    "average_interval",
    "paired_difference",
    "subset_accuracy_interval",
    "verdict",
]
