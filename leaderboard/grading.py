"""Whether each stored candidate's answer is right (the runs store answers, not verdicts)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from leaderboard.runs import Run
from tts_eval.grading import is_equivalent

# is_equivalent runs each comparison in a checker process; a few threads keep them busy.
GRADING_THREADS = 4


def grade_candidates(runs: list[Run]) -> None:
    """Fill ``candidate_correct`` of every problem that stored candidates."""
    problems = [p for run in runs for task in run.tasks.values() for p in task.problems if p.candidates is not None]
    pairs = sorted({(p.gold, c.answer) for p in problems for c in p.candidates if c.answer is not None})
    with ThreadPoolExecutor(GRADING_THREADS) as pool:
        verdicts = dict(zip(pairs, pool.map(lambda pair: is_equivalent(*pair), pairs)))
    for p in problems:
        p.candidate_correct = [c.answer is not None and verdicts[(p.gold, c.answer)] for c in p.candidates]
