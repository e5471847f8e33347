"""Accuracy by difficulty: each task's own grade (MATH levels 1-5, the toy task's number of
operations), and the paper's Pass@1 buckets.

A problem's bucket comes from its Pass@1 under the row's policy, estimated as the share of
correct candidates over every sampled (temperature > 0) Best-of-N or majority run of that
policy on that benchmark: easy = [50%, 100%], medium = [10%, 50%), hard = [0%, 10%). A tree
search's final candidates are no samples of the policy, so its rows take their buckets from
such a run of the same policy, or have none.
"""

from __future__ import annotations

from collections import defaultdict

from leaderboard.rows import Row
from leaderboard.runs import Run
from tts_eval.compute_optimal.difficulty import BUCKETS, bucket_of
from tts_eval.strategies import traits


def pass_at_1(runs: list[Run]) -> dict[tuple[str, str], dict[str, float]]:
    """(policy, benchmark) -> problem id -> share of correct sampled candidates."""
    correct: dict[tuple[str, str], dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        s = run.settings
        if s.model_source != "tts" or not _sampled(s.strategy) or not (s.temperature or 0) > 0:
            continue
        for benchmark, task in run.tasks.items():
            for p in task.problems:
                if p.candidate_correct is not None:
                    correct[(s.policy, benchmark)][p.problem_id] += p.candidate_correct
    return {key: {pid: sum(v) / len(v) for pid, v in problems.items()} for key, problems in correct.items()}


def _sampled(strategy: str) -> bool:
    """A strategy whose candidates are independent samples of the policy (their share of
    right answers is its Pass@1); CoT's one greedy solution is not counted."""
    found = traits(strategy)
    return found is not None and found.independent_samples and not found.single_sample


def grades(rows: list[Row], benchmark: str) -> list[int]:
    """The difficulty grades (levels) the rows' problems on ``benchmark`` have, in order."""
    return sorted({level for r in rows if benchmark in r.scores for level in r.scores[benchmark].levels.values()})


def accuracy_by_level(row: Row, benchmark: str) -> dict[int, tuple[float, int]]:
    """level -> (accuracy, problems) over the row's problems with a level (grade)."""
    score = row.scores.get(benchmark)
    if score is None:
        return {}
    groups: dict[int, list[float]] = defaultdict(list)
    for pid, value in score.per_problem.items():
        if pid in score.levels:
            groups[score.levels[pid]].append(value)
    return {level: (sum(v) / len(v), len(v)) for level, v in sorted(groups.items())}


def accuracy_by_bucket(row: Row, benchmark: str, pass1: dict[str, float]) -> dict[str, tuple[float, int]]:
    """bucket -> (accuracy, problems) over the row's problems whose Pass@1 is known."""
    score = row.scores.get(benchmark)
    if score is None:
        return {}
    groups: dict[str, list[float]] = defaultdict(list)
    for pid, value in score.per_problem.items():
        if pid in pass1:
            groups[bucket_of(pass1[pid])].append(value)
    return {b: (sum(groups[b]) / len(groups[b]), len(groups[b])) for b in BUCKETS if groups[b]}
