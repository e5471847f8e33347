"""Measuring test-time scaling in the toy world through the real search path: the shipped
policies (``load_policy``), the shipped PRM (``load_prm``) and ``tts_eval.search``.

Used by ``bench/toy.py`` (the full table) and by the tests (the stable orderings).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tts_eval.compute_optimal.difficulty import bucket_of
from tts_eval.grading import is_equivalent
from tts_eval.scoring import AGGREGATIONS
from tts_eval.toy import PRM_CONFIG, package_reference
from tts_eval.toy.problems import ToyProblem
from tts_eval.types import Problem, SearchResult
from tts_eval.voting import MAJORITY_VOTE, vote

PRM_VOTINGS = ("prm_max", "prm_vote")
BON_VARIANTS = [(agg, v) for agg in ("min", "last") for v in PRM_VOTINGS]


def load_toy_policy(size: str = "small", models_dir: Path | None = None, **options):
    """A toy policy (``small`` or ``large``) through ``load_policy``: the shipped one (as
    ``pkg://tts_eval.toy/models/policy-SIZE``), or the one in ``models_dir`` (the ``models``
    folder that ``tts-eval toy train`` writes)."""
    from tts_eval.policies import load_policy

    name = f"policy-{size}"
    model = package_reference(name) if models_dir is None else str(Path(models_dir) / name)
    return load_policy(model, backend=options.pop("backend", "hf"), **options)


def load_toy_prm(models_dir: Path | None = None, **overrides):
    """The toy PRM through ``load_prm`` and its shipped YAML file (``toy-prm``): the shipped
    checkpoint the YAML names, or the one in ``models_dir``."""
    from prm_backends import load_prm

    if models_dir is not None:
        overrides = {"model": str(Path(models_dir) / "prm"), **overrides}
    return load_prm(PRM_CONFIG, **overrides)


def as_problems(policy, toy_problems: Sequence[ToyProblem]) -> list[Problem]:
    return [Problem(question=p.question, prompt=policy.format_prompt(p.question)) for p in toy_problems]


def is_right(problem: ToyProblem, answer: str | None) -> bool:
    return answer is not None and is_equivalent(problem.answer, answer)


@dataclass
class SampleStats:
    """What one problem's N sampled, PRM-scored candidates (a Best-of-N run) give."""

    pass_at_1: float  # share of right candidates
    majority: bool
    any_right: bool  # pass@N: an oracle verifier choosing among the same candidates
    best_of_n: dict[str, bool] = field(default_factory=dict)  # "agg/voting" -> right


def variant_name(aggregation: str, voting: str) -> str:
    return f"{aggregation}/{voting}"


def sample_stats(problem: ToyProblem, result: SearchResult) -> SampleStats:
    candidates = result.candidates
    right = [is_right(problem, c.answer) for c in candidates]
    stats = SampleStats(
        pass_at_1=sum(right) / len(right),
        majority=right[vote(candidates, MAJORITY_VOTE, "last")],
        any_right=any(right),
    )
    for agg, voting in BON_VARIANTS:
        stats.best_of_n[variant_name(agg, voting)] = right[vote(candidates, voting, agg)]
    return stats


def chosen_right(problem: ToyProblem, result: SearchResult, voting: str, aggregation: str) -> bool:
    """Whether ``voting`` over the result's candidates picks a right answer."""
    candidates = result.candidates
    return is_right(problem, candidates[vote(candidates, voting, aggregation)].answer)


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def difficulty_buckets(pass_at_1: Sequence[float]) -> list[str]:
    """The paper's buckets from each problem's own Pass@1: easy [0.5, 1], medium [0.1, 0.5),
    hard [0, 0.1)."""
    return [bucket_of(p) for p in pass_at_1]


def hardest_third(pass_at_1: Sequence[float], difficulty: Sequence[int]) -> list[bool]:
    """The third of problems with the lowest Pass@1 (ties: more operations first)."""
    order = sorted(range(len(pass_at_1)), key=lambda i: (pass_at_1[i], -difficulty[i], i))
    chosen = set(order[: len(order) // 3])
    return [i in chosen for i in range(len(pass_at_1))]


__all__ = [
    "AGGREGATIONS",
    "BON_VARIANTS",
    "SampleStats",
    "as_problems",
    "chosen_right",
    "difficulty_buckets",
    "hardest_third",
    "is_right",
    "load_toy_policy",
    "load_toy_prm",
    "mean",
    "sample_stats",
]
