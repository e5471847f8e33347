"""Whether each stored candidate's answer is right (the runs store answers, not verdicts).

An answer the grader reaches no verdict on (see ``tts_eval.grading.grade``) counts as wrong
and as one grading failure; the leaderboard reports how many there were.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from leaderboard.runs import Run
from tts_eval.grading import grade

# is_equivalent runs each comparison in a checker process; a few threads keep them busy.
GRADING_THREADS = 4


def grade_candidates(runs: list[Run]) -> int:
    """Fill ``candidate_correct`` of every problem that stored candidates; returns the number
    of distinct (gold, answer) pairs that could not be graded."""
    stored = [
        (p, p.candidates)
        for run in runs
        for task in run.tasks.values()
        for p in task.problems
        if p.candidates is not None
    ]
    pairs = sorted({(p.gold, c.answer) for p, candidates in stored for c in candidates if c.answer is not None})
    with ThreadPoolExecutor(GRADING_THREADS) as pool:
        grades = dict(zip(pairs, pool.map(lambda pair: grade(*pair), pairs)))
    for p, candidates in stored:
        p.candidate_correct = [c.answer is not None and grades[(p.gold, c.answer)].equal for c in candidates]
    return sum(g.failure is not None for g in grades.values())
