"""The benchmark declarations agree with the task files and with what the leaderboard reads."""

from __future__ import annotations

import pytest
import yaml

from leaderboard.benchmarks import BENCHMARKS as BOARD_TITLES
from leaderboard.benchmarks import KNOWN_TASKS
from leaderboard.reference import load_reference
from leaderboard.table import COLUMNS
from tts_eval.benchmarks import BENCHMARKS, leaderboard_benchmarks
from tts_eval.resources import resource_dir


class _Loader(yaml.SafeLoader):
    """Reads lm-eval task YAML files: ``!function`` tags become their text."""


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def task_files() -> dict[str, dict]:
    """Every task of tts-eval's ``tasks/`` folder, with its (include-merged) YAML fields."""
    found = {}
    for path in sorted(resource_dir("tasks").rglob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        if "include" in data:
            data = {**yaml.load((path.parent / data["include"]).read_text(encoding="utf-8"), Loader=_Loader), **data}
        found[data["task"]] = data
    return found


def test_every_task_file_belongs_to_one_declared_benchmark_and_back():
    declared = [t.name for b in BENCHMARKS for t in b.tasks]
    assert len(declared) == len(set(declared)), "a task measures two benchmarks"
    files = task_files()
    assert sorted(t.name for b in BENCHMARKS for t in b.tasks if not t.builtin) == sorted(files)
    for b in BENCHMARKS:
        for task in b.tasks:
            if task.builtin:
                continue
            data = files[task.name]
            # The declared metric is one the task computes.
            assert task.metric in [m["metric"] for m in data["metric_list"]], (task.name, task.metric)
            if b.data is not None:  # the task file names the Hub dataset the declaration reads
                assert data["dataset_path"] == b.data.hub_id, task.name


@pytest.mark.slow
def test_builtin_tasks_are_lm_evals_own():
    from lm_eval.tasks import TaskManager

    known = set(TaskManager().all_tasks)
    builtin = [t.name for b in BENCHMARKS for t in b.tasks if t.builtin]
    assert builtin and set(builtin) <= known


def test_the_leaderboard_reads_the_declarations():
    board = leaderboard_benchmarks()
    assert tuple(b.title for b in board) == BOARD_TITLES
    assert set(KNOWN_TASKS) == {t.name for b in board for t in b.tasks}
    assert {c.key: c.benchmark for c in COLUMNS if c.benchmark} == {b.key: b.title for b in board}
    # Published rows carry accuracies of the benchmarks declared published, under their titles.
    published = {title for r in load_reference().results for title in r.accuracies()}
    assert published == {b.title for b in board if b.published} == {"MATH-500", "AIME24"}
