"""Turning a trajectory's step scores into one number (the ``aggregation`` setting)."""

from __future__ import annotations

import math

AGGREGATIONS = ("min", "last", "avg", "prod")


def aggregate(step_scores: list[float], how: str) -> float:
    """Score a trajectory from its step scores.

    NaN scores (steps a PRM could not read because the input was too long) are left out;
    a trajectory with no readable score gets NaN, which ranks below every number.
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; choose one of {', '.join(AGGREGATIONS)}")
    scores = [s for s in step_scores if not math.isnan(s)]
    if not scores:
        return math.nan
    if how == "min":
        return min(scores)
    if how == "last":
        return scores[-1]
    if how == "avg":
        return sum(scores) / len(scores)
    return math.prod(scores)


def rank_key(score: float) -> float:
    """Sort key that puts NaN below every real score."""
    return -math.inf if math.isnan(score) else score
