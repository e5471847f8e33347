"""The benchmarks: one declaration each, which the lm-eval tasks and the leaderboard both read.

A :class:`Benchmark` says where its problems come from (the Hub and a local JSONL file under
``$TTS_EVAL_DATA_DIR``, or nowhere when a task builds them itself, as the toy world's do),
which lm-eval tasks measure it and how the leaderboard reads each one's samples, what its
difficulty grade is called, and whether the paper's tables (``leaderboard/reference.yaml``)
and a row's average include it. A benchmark with a ``title`` is a leaderboard column.

Adding a benchmark: one entry in :data:`BENCHMARKS` plus, for a task of tts-eval's own, its
YAML file (and ``utils.py``) in ``tasks/``; ``tests/test_benchmarks.py`` checks that the two
agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataSource:
    hub_id: str
    hub_split: str
    local_file: str  # relative to $TTS_EVAL_DATA_DIR
    required: tuple[str, ...]  # fields every row must have


@dataclass(frozen=True)
class Task:
    """An lm-eval task that measures a benchmark, and how its samples file is read."""

    name: str
    metric: str = "acc"  # the per-sample 0/1 accuracy field of the samples file
    search_results: bool = True  # filtered_resps[0] is a tts-eval search result (JSON text)
    grade_field: str | None = None  # the document field holding the task's own difficulty grade
    builtin: bool = False  # one of lm-eval's own tasks (not in tasks/)


@dataclass(frozen=True)
class Benchmark:
    key: str  # load_benchmark(key); the leaderboard's column key; its field in reference.yaml
    title: str | None  # the leaderboard's name for it; None: not on the leaderboard
    data: DataSource | None  # None: its tasks build their documents themselves
    tasks: tuple[Task, ...]
    grade: str | None = None  # what its tasks' difficulty grade is called (tables, plots)
    paper: bool = False  # one of the paper's benchmarks: a row's average is over these
    published: bool = False  # reference.yaml's results may give its accuracy (field ``key``)
    # Problems of the toy world: a PRM's quality on them is its F1 on the toy ProcessBench,
    # never the real ProcessBench's (measured or published).
    toy: bool = False


_MATH500_FIELDS = ("problem", "answer", "level", "subject", "unique_id")
PROCESSBENCH_FIELDS = ("id", "problem", "steps", "label")
PROCESSBENCH_SPLITS = ("gsm8k", "math", "olympiadbench", "omnimath")  # the Hub's splits

BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "math500",
        "MATH-500",
        DataSource("HuggingFaceH4/MATH-500", "test", "math500/test.jsonl", _MATH500_FIELDS),
        (
            Task("math500_tts", grade_field="level"),
            Task("minerva_math500", "math_verify", False, "level", builtin=True),
            Task("hendrycks_math500", "exact_match", False, "level", builtin=True),
        ),
        grade="MATH level",
        paper=True,
        published=True,
    ),
    Benchmark(
        "aime24",
        "AIME24",
        DataSource("HuggingFaceH4/aime_2024", "train", "aime24/test.jsonl", ("problem", "answer")),
        (Task("aime24_tts"), Task("aime24", "exact_match", False, builtin=True)),
        paper=True,
        published=True,
    ),
    # The offline toy world (tts_eval.toy): its test split and the split's two halves.
    Benchmark(
        "toy", "Toy arithmetic", None, (Task("arith_tts", grade_field="difficulty"),), grade="operations", toy=True
    ),
    Benchmark(
        "toy_dev",
        "Toy arithmetic (development)",
        None,
        (Task("arith_tts_dev", grade_field="difficulty"),),
        grade="operations",
        toy=True,
    ),
    Benchmark(
        "toy_heldout",
        "Toy arithmetic (held-out)",
        None,
        (Task("arith_tts_heldout", grade_field="difficulty"),),
        grade="operations",
        toy=True,
    ),
    # ProcessBench (solutions with their first wrong step labelled): one benchmark per split,
    # scored by the prm model (F1), read by the leaderboard's --processbench, not as a column.
    *(
        Benchmark(
            f"processbench_{split}",
            None,
            DataSource("Qwen/ProcessBench", split, f"processbench/{split}.jsonl", PROCESSBENCH_FIELDS),
            (Task(f"processbench_{split}", "f1", False),),
        )
        for split in PROCESSBENCH_SPLITS
    ),
    Benchmark("processbench_toy", None, None, (Task("processbench_toy", "f1", False),), toy=True),
)


def benchmark(key: str) -> Benchmark:
    """The benchmark declared as ``key``; a ``KeyError`` naming the known ones otherwise."""
    for b in BENCHMARKS:
        if b.key == key:
            return b
    raise KeyError(f"unknown benchmark {key!r}; known: {', '.join(b.key for b in BENCHMARKS)}")


def leaderboard_benchmarks() -> tuple[Benchmark, ...]:
    """The benchmarks that are leaderboard columns, in column order."""
    return tuple(b for b in BENCHMARKS if b.title is not None)
