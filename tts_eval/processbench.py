"""ProcessBench's rule and metrics: how well a PRM finds the first wrong step of a solution.

A ProcessBench sample is a problem, a solution split into steps and ``label``: the index of
the first wrong step, or ``-1`` when every step is right. A PRM predicts the first step
whose score falls below a threshold (``-1`` if none does). The benchmark reports the
accuracy on the erroneous samples (the exact index found), the accuracy on the correct ones
(``-1`` predicted) and their harmonic mean, F1 (Zheng et al., 2024, arXiv 2412.06559).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

NO_ERROR = -1
DEFAULT_THRESHOLD = 0.5


def first_error(step_scores: Sequence[float], threshold: float = DEFAULT_THRESHOLD) -> int:
    """The index of the first step scored below ``threshold``, or ``NO_ERROR``. A step the
    PRM could not read (NaN: it did not fit ``max_length``) is no evidence either way and
    is passed over."""
    for index, score in enumerate(step_scores):
        if not math.isnan(score) and score < threshold:
            return index
    return NO_ERROR


def harmonic_mean(a: float, b: float) -> float:
    """ProcessBench's F1 of the two accuracies (0 when either is 0)."""
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


@dataclass(frozen=True)
class ProcessBenchScore:
    error_acc: float  # fraction of erroneous samples whose first wrong step was found exactly
    correct_acc: float  # fraction of correct samples predicted NO_ERROR
    f1: float  # harmonic mean of the two
    erroneous: int  # samples with label != NO_ERROR
    correct: int  # samples with label == NO_ERROR


def processbench_score(labels: Sequence[int], predictions: Sequence[int | None]) -> ProcessBenchScore:
    """The three metrics over samples with gold ``labels`` and ``predictions`` (None: the
    model gave no readable index, which counts as wrong). Both kinds of sample must be
    present: F1 is undefined otherwise."""
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    erroneous = [p == y for y, p in zip(labels, predictions) if y != NO_ERROR]
    correct = [p == NO_ERROR for y, p in zip(labels, predictions) if y == NO_ERROR]
    if not erroneous or not correct:
        missing = "erroneous (label >= 0)" if not erroneous else "correct (label -1)"
        raise ValueError(
            f"the {len(labels)} evaluated samples hold no {missing} solution, so ProcessBench's F1 is undefined; "
            "evaluate more samples (a larger --limit, or none)"
        )
    error_acc, correct_acc = sum(erroneous) / len(erroneous), sum(correct) / len(correct)
    return ProcessBenchScore(
        error_acc, correct_acc, harmonic_mean(error_acc, correct_acc), len(erroneous), len(correct)
    )
