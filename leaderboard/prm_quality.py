"""A PRM's ProcessBench F1: measured by a ``prm`` run (``lm_eval --model prm --tasks
processbench...``), else the figure published in its spec (``processbench_f1``).

The toy world's ProcessBench (``processbench_toy``) measures a PRM on the toy arithmetic, so
its F1 goes with the toy benchmarks (those declared ``toy`` in :mod:`tts_eval.benchmarks`: the
test split and its two halves); the real splits (and the published figures, which average
them) go with MATH-500 and AIME24.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from leaderboard.benchmarks import TOY_BENCHMARKS
from leaderboard.errors import LeaderboardError
from leaderboard.runs import find_results_files
from tts_eval.benchmarks import BENCHMARKS

PRM_MODEL = "prm"
# The ProcessBench tasks (the benchmarks scored by F1) -> whether they measure on the toy world.
PROCESSBENCH_TASKS = {task.name: b.toy for b in BENCHMARKS for task in b.tasks if task.metric == "f1"}
PUBLISHED = "published"


@dataclass(frozen=True)
class F1:
    value: float  # percent
    source: str  # "measured: <tasks>" or "published"
    results_file: str | None = None

    @property
    def measured(self) -> bool:
        return self.source != PUBLISHED


def read_processbench_runs(run_dirs: Iterable[Path]) -> dict[tuple[str, bool], F1]:
    """(PRM display name, toy?) -> the F1 measured by the ``prm`` runs in ``run_dirs``: the
    mean of the run's ``f1`` over its ProcessBench tasks, in percent."""
    found: dict[tuple[str, bool], F1] = {}
    for run_dir in run_dirs:
        for path in find_results_files(Path(run_dir)):
            try:
                results = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise LeaderboardError(f"{path}: not valid JSON ({err.msg}); the run may not have finished") from None
            config = results.get("config") or {}
            judge = config.get("prm_judge")
            if config.get("model") != PRM_MODEL or not isinstance(judge, dict):
                raise LeaderboardError(
                    f"{path}: not a ProcessBench run of the prm model (lm_eval --model prm --tasks processbench); "
                    "give TTS runs as run folders and ProcessBench runs with --processbench"
                )
            tasks = [t for t in results.get("results", {}) if t in PROCESSBENCH_TASKS]
            for toy in (True, False):
                chosen = [t for t in tasks if PROCESSBENCH_TASKS[t] == toy]
                if not chosen:
                    continue
                values = []
                for task in chosen:
                    value = results["results"][task].get("f1,none")
                    if not isinstance(value, (int, float)):
                        raise LeaderboardError(f"{path}: task {task} has no 'f1,none' result")
                    values.append(100.0 * value)
                key = (str(judge["prm_name"]), toy)
                if key in found:
                    raise LeaderboardError(
                        f"two ProcessBench runs measure {key[0]} on {'the toy' if toy else 'the real'} splits: "
                        f"{found[key].results_file} and {path}; give one of them"
                    )
                found[key] = F1(sum(values) / len(values), "measured: " + ", ".join(sorted(chosen)), str(path))
    return found


def published_f1() -> dict[str, float]:
    """The shipped specs' published ProcessBench F1 (percent), by display name and by file
    stem. Read from the YAML files alone: a spec whose checkpoint is absent still counts."""
    import yaml

    from prm_backends import prm_config_dir

    figures = {}
    for path in sorted(prm_config_dir().glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        value = data.get("processbench_f1")
        if isinstance(value, (int, float)):
            figures[path.stem] = figures[str(data.get("name", path.stem))] = float(value)
    return figures


def f1_for(prm: str, benchmark: str, measured: dict[tuple[str, bool], F1], published: dict[str, float]) -> F1 | None:
    """The F1 that goes with TTS runs of ``prm`` on ``benchmark`` (a leaderboard title):
    measured on the matching ProcessBench (the toy one for a toy-world benchmark), else
    published (real benchmarks only), else None."""
    toy = benchmark in TOY_BENCHMARKS
    if (prm, toy) in measured:
        return measured[(prm, toy)]
    if not toy and prm in published:
        return F1(published[prm], PUBLISHED)
    return None
