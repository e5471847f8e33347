"""Accuracy at a smaller budget k, estimated from the N candidates a run stored.

A Best-of-N or majority run samples N independent solutions per problem; a DVTS run
grows N/M independent subtrees. A run at budget k would have drawn k of them, so its
expected accuracy is the mean over all size-k subsets of the stored candidates (kept in
generation order) of "the subset's vote is correct":

- ``pass@k``: exact, ``1 - C(N-c, k) / C(N, k)`` with c correct candidates;
- ``prm_max@k``: exact; a candidate wins a subset when no better-scored answered candidate
  is in it, so answered candidate i (with b answered candidates ranked above it, ties
  going to the earlier one) wins ``C(N-1-b, k-1)`` of the ``C(N, k)`` subsets;
- ``maj@k`` and ``prm_vote@k``: every subset's vote by ``tts_eval.voting.vote`` when there
  are at most ``max_subsets`` subsets; otherwise the mean over ``max_subsets`` subsets drawn
  uniformly at random (without replacement within a subset), seeded by the problem, k and
  voting — an unbiased Monte-Carlo estimate of the same mean.

Answers are grouped by equivalence once per problem over all N candidates
(``tts_eval.voting.group_answers``); subsets vote over those groups.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace
from itertools import combinations

from tts_eval.scoring import aggregate, rank_key
from tts_eval.seeding import derive_seed
from tts_eval.types import Trajectory
from tts_eval.voting import VOTINGS, group_answers, vote

DEFAULT_MAX_SUBSETS = 200


def pass_at_k(n: int, correct: int, k: int) -> float:
    """The unbiased pass@k estimate from ``n`` samples of which ``correct`` are right."""
    _check_k(n, k)
    if n - correct < k:
        return 1.0
    return 1.0 - math.comb(n - correct, k) / math.comb(n, k)


def canonical_candidates(candidates: Sequence[Trajectory]) -> list[Trajectory]:
    """The candidates with each answer replaced by the first answer of its equivalence
    group, so that votes over subsets compare each group once, not each spelling."""
    classes = group_answers([c.answer for c in candidates])
    first: dict[int, str] = {}
    for candidate, cls in zip(candidates, classes):
        if cls is not None:
            assert candidate.answer is not None  # only a missing answer has no class
            first.setdefault(cls, candidate.answer)
    return [c if cls is None else replace(c, answer=first[cls]) for c, cls in zip(candidates, classes)]


def vote_accuracy(
    candidates: Sequence[Trajectory],
    correct: Sequence[bool],
    k: int,
    voting: str,
    aggregation: str = "last",
    *,
    max_subsets: int = DEFAULT_MAX_SUBSETS,
    seed: object = 0,
) -> float:
    """Expected correctness of ``voting`` among k of ``candidates`` (see the module doc).

    ``candidates`` should come from :func:`canonical_candidates`; ``correct[i]`` says whether
    candidate i's answer is right. ``seed`` (any value) seeds the Monte-Carlo subsets.
    """
    n = len(candidates)
    _check_k(n, k)
    if len(correct) != n:
        raise ValueError(f"{len(correct)} correctness flags for {n} candidates")
    if voting not in VOTINGS:
        raise ValueError(f"unknown voting {voting!r}; choose one of {', '.join(VOTINGS)}")
    if voting == "prm_max":
        return _prm_max_accuracy(candidates, correct, k, aggregation)
    if subsets_used(n, k, voting, max_subsets) == math.comb(n, k):
        subsets = list(combinations(range(n), k))
    else:
        rng = random.Random(derive_seed(seed, k, voting))
        subsets = [tuple(sorted(rng.sample(range(n), k))) for _ in range(max_subsets)]
    wins = 0
    for subset in subsets:
        chosen = vote([candidates[i] for i in subset], voting, aggregation)
        wins += bool(correct[subset[chosen]])
    return wins / len(subsets)


def subsets_used(n: int, k: int, voting: str, max_subsets: int) -> int:
    """How many size-k subsets of n candidates an estimate of ``voting`` averages: all of
    them for the exact estimates (``pass@k``, ``prm_max``) and for votes when they are at
    most ``max_subsets``, else ``max_subsets`` drawn at random."""
    every = math.comb(n, k)
    return every if voting in ("pass@k", "prm_max") else min(every, max_subsets)


def _prm_max_accuracy(candidates: Sequence[Trajectory], correct: Sequence[bool], k: int, aggregation: str) -> float:
    n = len(candidates)
    answered = [i for i, c in enumerate(candidates) if c.answer is not None]
    for i in answered:
        if not candidates[i].step_scores and candidates[i].steps:
            raise ValueError("prm_max needs step scores: the run had no PRM")
    scores = {i: rank_key(aggregate(candidates[i].step_scores, aggregation)) for i in answered}
    # Best first; among equal scores the earlier candidate wins, as in vote().
    ranked = sorted(answered, key=lambda i: (-scores[i], i))
    wins = sum(math.comb(n - 1 - better, k - 1) for better, i in enumerate(ranked) if correct[i])
    return wins / math.comb(n, k)


def budgets(count: int) -> list[int]:
    """k = 1, 2, 4, ... up to ``count``, and ``count`` itself."""
    ks = [1 << p for p in range(count.bit_length()) if 1 << p <= count]
    return ks if ks[-1] == count else [*ks, count]


def _check_k(n: int, k: int) -> None:
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of candidates ({n}), got {k}")
