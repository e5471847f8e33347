"""Intervals and paired comparisons (tts_eval.statistics) against sets whose answer is known."""

from __future__ import annotations

import math
from dataclasses import astuple

import numpy as np
import pytest

from tts_eval.statistics import (
    Interval,
    accuracy_interval,
    average_interval,
    paired_difference,
    subset_accuracy_interval,
    verdict,
)


def constructed(right: int, total: int, seed: int = 1) -> np.ndarray:
    """Exactly ``right`` of ``total`` problems right, in a shuffled order."""
    outcomes = np.array([1.0] * right + [0.0] * (total - right))
    np.random.default_rng(seed).shuffle(outcomes)
    return outcomes


def test_accuracy_interval_covers_a_known_accuracy_with_the_binomial_width():
    interval = accuracy_interval(constructed(600, 1000))
    assert interval.estimate == 0.6 and interval.contains(0.6)
    # The percentile bootstrap of a mean of 0/1 outcomes matches the normal approximation
    # of the binomial, 1.96 sqrt(p (1 - p) / n), on a set this large.
    half_width = 1.96 * math.sqrt(0.6 * 0.4 / 1000)
    assert interval.low == pytest.approx(0.6 - half_width, abs=0.004)
    assert interval.high == pytest.approx(0.6 + half_width, abs=0.004)
    assert accuracy_interval(constructed(600, 1000)) == interval  # seeded: the same every time


def test_intervals_cover_the_true_accuracy_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    covered = [accuracy_interval(rng.random(200) < 0.3).contains(0.3) for _ in range(60)]
    assert 0.85 <= np.mean(covered) <= 1.0


def test_a_setup_against_itself_differs_by_exactly_zero():
    pass_at_1 = np.random.default_rng(3).integers(0, 17, size=350) / 16  # shares, not just 0/1
    assert paired_difference(pass_at_1, pass_at_1) == Interval(0.0, 0.0, 0.0)
    assert verdict(paired_difference(pass_at_1, pass_at_1)) == "ties"


def test_paired_difference_of_a_known_improvement():
    baseline = constructed(150, 350)
    improved = baseline.copy()
    improved[np.flatnonzero(baseline == 0)[:35]] = 1.0  # 35 more problems right, none lost
    difference = paired_difference(improved, baseline)
    assert difference.estimate == pytest.approx(0.1)
    assert 0 < difference.low < 0.1 < difference.high
    assert verdict(difference) == "beats" and verdict(paired_difference(baseline, improved)) == "trails"
    # Pairing removes the between-problem spread: the unpaired intervals of the two overlap.
    assert accuracy_interval(improved).low < accuracy_interval(baseline).high


def test_verdict_wording_follows_the_interval():
    assert verdict(Interval(0.04, 0.001, 0.08)) == "beats"
    assert verdict(Interval(0.04, 0.0, 0.08)) == "ties"  # an interval touching zero does not exclude it
    assert verdict(Interval(0.04, -0.01, 0.08)) == "ties"
    assert verdict(Interval(-0.04, -0.08, -0.001)) == "trails"


def test_subset_interval_adds_the_noise_of_few_subsets_only():
    shares = np.full(400, 0.5)  # every problem right in half its subsets
    assert astuple(subset_accuracy_interval(shares, 10**12)) == pytest.approx((0.5, 0.5, 0.5), abs=1e-3)
    one = subset_accuracy_interval(shares, 1)  # one subset per problem: a coin per problem
    assert one.low == pytest.approx(0.5 - 1.96 * 0.5 / 20, abs=0.006)
    assert one.high == pytest.approx(0.5 + 1.96 * 0.5 / 20, abs=0.006)
    exact = subset_accuracy_interval(constructed(600, 1000), 10**12)
    assert astuple(exact) == pytest.approx(astuple(accuracy_interval(constructed(600, 1000))), abs=0.003)


def test_average_of_two_benchmarks_resamples_each_on_its_own():
    large, small = constructed(300, 500), constructed(9, 30)  # MATH-500-like and AIME-like sizes
    average = average_interval([large, small])
    assert average.estimate == pytest.approx((0.6 + 0.3) / 2)
    # Independent parts: the variance of the average is the sum of the halves' variances.
    half_width = 1.96 * math.sqrt(0.6 * 0.4 / 500 + 0.3 * 0.7 / 30) / 2
    assert average.low == pytest.approx(average.estimate - half_width, abs=0.01)
    assert average.high == pytest.approx(average.estimate + half_width, abs=0.01)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least 2 problems"):
        accuracy_interval([1.0])
    with pytest.raises(ValueError, match="same problems"):
        paired_difference([1.0, 0.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        accuracy_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        subset_accuracy_interval([0.5, 1.5], 4)
