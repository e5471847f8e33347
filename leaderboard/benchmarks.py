"""The lm-eval tasks the leaderboard compares, and how to read each one's samples.

A row of the leaderboard has one accuracy per benchmark (MATH-500, AIME24). tts-eval's
own tasks store every search candidate in the samples; lm-eval's built-in versions of the
same benchmarks store one graded answer per problem.
"""

from __future__ import annotations

from dataclasses import dataclass

MATH500 = "MATH-500"
AIME24 = "AIME24"
TOY = "Toy arithmetic"
TOY_DEV = "Toy arithmetic (development)"  # the halves of the toy test split (tts_eval.toy.SPLITS)
TOY_HELDOUT = "Toy arithmetic (held-out)"
BENCHMARKS = (MATH500, AIME24, TOY, TOY_DEV, TOY_HELDOUT)
PAPER_BENCHMARKS = (MATH500, AIME24)  # a row's average is over these, as in the paper


@dataclass(frozen=True)
class TaskReading:
    benchmark: str
    metric: str  # the per-sample 0/1 accuracy field of the samples file
    search_results: bool  # filtered_resps[0] is a tts-eval search result (JSON text)
    grade_field: str | None = None  # the document field holding the task's own difficulty grade


KNOWN_TASKS: dict[str, TaskReading] = {
    "math500_tts": TaskReading(MATH500, "acc", True, "level"),
    "aime24_tts": TaskReading(AIME24, "acc", True),
    "minerva_math500": TaskReading(MATH500, "math_verify", False, "level"),
    "hendrycks_math500": TaskReading(MATH500, "exact_match", False, "level"),
    "aime24": TaskReading(AIME24, "exact_match", False),
    "arith_tts": TaskReading(TOY, "acc", True, "difficulty"),  # the offline toy world (tts_eval.toy)
    "arith_tts_dev": TaskReading(TOY_DEV, "acc", True, "difficulty"),
    "arith_tts_heldout": TaskReading(TOY_HELDOUT, "acc", True, "difficulty"),
}

# What each benchmark's difficulty grade is called (tables, plots).
GRADE_NAMES = {MATH500: "MATH level", TOY: "operations", TOY_DEV: "operations", TOY_HELDOUT: "operations"}

# Document fields that name a problem, in order of preference (MATH-500, AIME 2024 copies).
PROBLEM_ID_FIELDS = ("unique_id", "id", "ID")
PROBLEM_TEXT_FIELDS = ("problem", "Problem", "question")
GOLD_FIELDS = ("answer", "Answer")


def known_tasks_text() -> str:
    return ", ".join(f"{task} ({reading.benchmark})" for task, reading in KNOWN_TASKS.items())
