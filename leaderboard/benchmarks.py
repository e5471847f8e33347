"""The lm-eval tasks the leaderboard compares, and how to read each one's samples, as the
benchmark declarations of :mod:`tts_eval.benchmarks` say.

A row of the leaderboard has one accuracy per benchmark (MATH-500, AIME24, ...), named by
the benchmark's title. tts-eval's own tasks store every search candidate in the samples;
lm-eval's built-in versions of the same benchmarks store one graded answer per problem.
"""

from __future__ import annotations

from dataclasses import dataclass

from tts_eval.benchmarks import benchmark, leaderboard_benchmarks


def _title(key: str) -> str:
    title = benchmark(key).title
    assert title is not None, f"benchmark {key!r} is no leaderboard column"
    return title


MATH500 = _title("math500")
AIME24 = _title("aime24")
TOY_BENCHMARKS = frozenset(_title(b.key) for b in leaderboard_benchmarks() if b.toy)  # the toy world's columns
BENCHMARKS: tuple[str, ...] = tuple(_title(b.key) for b in leaderboard_benchmarks())
PAPER_BENCHMARKS = tuple(_title(b.key) for b in leaderboard_benchmarks() if b.paper)  # a row's average is over these


@dataclass(frozen=True)
class TaskReading:
    benchmark: str
    metric: str  # the per-sample 0/1 accuracy field of the samples file
    search_results: bool  # filtered_resps[0] is a tts-eval search result (JSON text)
    grade_field: str | None = None  # the document field holding the task's own difficulty grade


KNOWN_TASKS: dict[str, TaskReading] = {
    task.name: TaskReading(_title(b.key), task.metric, task.search_results, task.grade_field)
    for b in leaderboard_benchmarks()
    for task in b.tasks
}

# What each benchmark's difficulty grade is called (tables, plots).
GRADE_NAMES = {_title(b.key): b.grade for b in leaderboard_benchmarks() if b.grade is not None}

# Document fields that name a problem, in order of preference (MATH-500, AIME 2024 copies).
PROBLEM_ID_FIELDS = ("unique_id", "id", "ID")
PROBLEM_TEXT_FIELDS = ("problem", "Problem", "question")
GOLD_FIELDS = ("answer", "Answer")


def known_tasks_text() -> str:
    return ", ".join(f"{task} ({reading.benchmark})" for task, reading in KNOWN_TASKS.items())
