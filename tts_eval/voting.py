"""Choosing one answer among candidates (the ``voting`` setting).

Answers are grouped by mathematical equivalence: first by :func:`answer_key` (cheap, exact
normal form), then groups whose representatives :func:`is_equivalent` are merged. Ties are
broken by generation order: the group or candidate that appears first wins. Candidates
without an answer take no part in a vote unless no candidate has one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

from tts_eval.grading import answer_key, is_equivalent
from tts_eval.scoring import aggregate, rank_key
from tts_eval.types import Trajectory

Voting = Literal["majority", "prm_max", "prm_vote"]
VOTINGS: tuple[str, ...] = get_args(Voting)
MAJORITY_VOTE = VOTINGS[0]  # by answer counts alone (the majority strategy's vote, and CoT's)
# How a strategy that searches with a PRM reads it when the run says nothing: vote with the
# PRM (majority would ignore the scores it paid for) and aggregate as the PRM's spec
# recommends, else by the weakest step (docs/lm-eval.md, "Default voting and aggregation",
# has the measurements).
PRM_DEFAULT_VOTING = "prm_vote"
DEFAULT_AGGREGATION = "min"


def resolve_vote_settings(
    uses_prm: bool, *, voting: str | None, aggregation: str | None, recommended: str | None = None
) -> tuple[str, str]:
    """The (voting, aggregation) a search uses: the given ones, else the defaults. A strategy
    that uses a PRM (``uses_prm``) votes ``prm_vote``; majority and CoT vote ``majority``.
    The aggregation defaults to ``recommended`` (the PRM spec's ``aggregation``), else ``min``."""
    resolved_voting = voting if voting is not None else (PRM_DEFAULT_VOTING if uses_prm else MAJORITY_VOTE)
    resolved_aggregation = aggregation if aggregation is not None else (recommended or DEFAULT_AGGREGATION)
    return resolved_voting, resolved_aggregation


def recommended_aggregation(prm: object) -> str | None:
    """The aggregation a loaded PRM's spec recommends (None for a PRM without a spec)."""
    return getattr(getattr(prm, "spec", None), "aggregation", None)


def group_answers(answers: Sequence[str | None]) -> list[int | None]:
    """An equivalence-class id per answer (None for a missing answer). Class ids are numbered
    in order of first appearance."""
    key_class: dict[str, int] = {}
    representatives: list[str] = []  # one answer per class, in order of first appearance
    classes: list[int | None] = []
    for answer in answers:
        if answer is None:
            classes.append(None)
            continue
        key = answer_key(answer)
        if key not in key_class:
            match = next((c for c, rep in enumerate(representatives) if is_equivalent(rep, answer)), None)
            if match is None:
                match = len(representatives)
                representatives.append(answer)
            key_class[key] = match
        classes.append(key_class[key])
    return classes


def vote(
    candidates: Sequence[Trajectory], voting: str, aggregation: str, *, weights: Sequence[float] | None = None
) -> int:
    """The index of the candidate whose answer wins (``prediction``); its answer is the vote.

    ``weights`` (one number per candidate) take the place of the aggregated scores in
    ``prm_max`` and ``prm_vote`` (particle filtering votes with its particles' weights).

    - ``majority``: the most frequent answer; the prediction is that answer's first candidate.
    - ``prm_max``: the candidate with the best aggregated score.
    - ``prm_vote``: the answer with the largest sum of aggregated scores; the prediction is
      that answer's best-scored candidate.
    """
    if voting not in VOTINGS:
        raise ValueError(f"unknown voting {voting!r}; choose one of {', '.join(VOTINGS)}")
    if not candidates:
        raise ValueError("vote() needs at least one candidate")
    answered = [i for i, c in enumerate(candidates) if c.answer is not None]
    pool = answered or list(range(len(candidates)))
    if voting == MAJORITY_VOTE:
        classes = group_answers([candidates[i].answer for i in pool])
        counts: dict[int | None, int] = {}
        for cls in classes:
            counts[cls] = counts.get(cls, 0) + 1
        best_class = max(counts, key=counts.__getitem__)  # dicts keep first-appearance order
        return pool[classes.index(best_class)]

    if weights is not None and len(weights) != len(candidates):
        raise ValueError(f"{len(weights)} weights for {len(candidates)} candidates")
    scores = {i: _score(candidates[i], aggregation) if weights is None else weights[i] for i in pool}
    if voting == "prm_max":
        return max(pool, key=lambda i: rank_key(scores[i]))
    classes = group_answers([candidates[i].answer for i in pool])
    totals: dict[int | None, float] = {}
    for i, cls in zip(pool, classes):
        totals[cls] = totals.get(cls, 0.0) + (0.0 if math.isnan(scores[i]) else scores[i])
    best_class = max(totals, key=totals.__getitem__)
    members = [i for i, cls in zip(pool, classes) if cls == best_class]
    return max(members, key=lambda i: rank_key(scores[i]))


def _score(candidate: Trajectory, aggregation: str) -> float:
    if not candidate.step_scores and candidate.steps:
        raise ValueError("PRM voting needs step scores: run the search with a PRM")
    return aggregate(candidate.step_scores, aggregation)
