"""Turning a trajectory's step scores into one number (the ``aggregation`` setting)."""

from __future__ import annotations

import math
from typing import Literal, NoReturn, TypeGuard, get_args

# The aggregations :func:`aggregate` implements; mypy checks that it handles each one.
Aggregation = Literal["min", "last", "avg", "prod"]
AGGREGATIONS: tuple[Aggregation, ...] = get_args(Aggregation)


def is_aggregation(how: object) -> TypeGuard[Aggregation]:
    return how in AGGREGATIONS


def aggregate(step_scores: list[float], how: str) -> float:
    """Score a trajectory from its step scores.

    NaN scores (steps a PRM could not read because the input was too long) are left out;
    a trajectory with no readable score gets NaN, which ranks below every number.
    """
    if not is_aggregation(how):
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
    if how == "prod":
        return math.prod(scores)
    _unhandled(how)


def _unhandled(how: NoReturn) -> NoReturn:
    # typing.assert_never (Python 3.11+): mypy reports an aggregation the chain above misses.
    raise AssertionError(f"aggregation {how!r} is not implemented")


def rank_key(score: float) -> float:
    """Sort key that puts NaN below every real score."""
    return -math.inf if math.isnan(score) else score
