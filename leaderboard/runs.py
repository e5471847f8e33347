"""Reading lm-eval output folders: the results JSON and the per-task samples of each run.

lm-eval writes ``<output_path>/<model_name_sanitized>/results_<date>.json`` and, with
``--log_samples``, ``samples_<task>_<date>.jsonl`` beside it (same ``<date>``). A run is one
results file with its samples. Runs of the ``tts`` model carry the search settings and
parameter counts in the results' ``config`` and every candidate of every search in the
samples; runs of any other lm-eval model are read as plain CoT (one answer per problem).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from leaderboard.benchmarks import (
    GOLD_FIELDS,
    KNOWN_TASKS,
    PROBLEM_ID_FIELDS,
    PROBLEM_TEXT_FIELDS,
    TaskReading,
    known_tasks_text,
)
from leaderboard.errors import LeaderboardError
from tts_eval.jsonl import read_jsonl
from tts_eval.strategies import is_baseline, traits
from tts_eval.strategies.names import COT
from tts_eval.types import Trajectory

# lm-eval versions whose output layout this reader knows (results keys, samples fields).
SUPPORTED_LM_EVAL = SpecifierSet(">=0.4,<0.5")
TTS_MODEL = "tts"
RESULTS_GLOB = "results_*.json"


@dataclass
class ProblemOutcome:
    """One problem of one run."""

    problem_id: str
    level: int | None  # the task's own difficulty grade (MATH level 1-5, toy operations 2-8), if any
    gold: str
    correct: bool  # the run's answer, as the task graded it
    candidates: list[Trajectory] | None = None  # tts runs: every candidate of the search
    chosen: int | None = None  # tts runs: the index of the candidate the search answered with
    candidate_correct: list[bool] | None = None  # filled by grade_candidates
    policy_tokens: float | None = None  # input + output
    policy_input_tokens: float | None = None  # tts runs: the prompts' share of policy_tokens
    prm_tokens: float | None = None  # computed by the PRM (reused prefixes excluded)
    prm_scored_tokens: float | None = None  # of every input the PRM scored
    prompt_text: str | None = None  # other models: what was sent and returned, to count tokens
    response_text: str | None = None


@dataclass
class TaskResult:
    """The samples of one task (one benchmark) of a run."""

    task: str
    benchmark: str
    samples_file: Path
    problems: list[ProblemOutcome]
    benchmark_size: int | None  # problems in the full benchmark ("original" in n-samples)
    tokens_note: str | None = None  # how token counts were obtained, when not by the search


@dataclass
class RunSettings:
    """What produced a run: the model and, for the tts model, the search."""

    model_source: str  # lm-eval's --model: "tts", "hf", "vllm", ...
    policy: str
    prm: str | None
    strategy: str
    n: int
    beam_size: int | None
    voting: str | None
    aggregation: str | None
    temperature: float | None
    policy_params: float | None
    prm_params: float | None
    model_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    results_file: Path
    settings: RunSettings
    tasks: dict[str, TaskResult]  # by benchmark name

    @property
    def label(self) -> str:
        return str(self.results_file)


def find_results_files(run_dir: Path) -> list[Path]:
    """The results files anywhere under ``run_dir``: an ``--output_path`` folder, one of its
    model folders, or any folder holding such folders (e.g. the demo's output folder)."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise LeaderboardError(f"{run_dir}: no such folder; give folders that lm_eval --output_path wrote")
    if not run_dir.is_dir():
        raise LeaderboardError(
            f"{run_dir}: not a folder; give the folder that lm_eval --output_path wrote, not a file in it"
        )
    found = sorted(p for p in run_dir.rglob(RESULTS_GLOB) if p.is_file())
    if not found:
        raise LeaderboardError(
            f"{run_dir}: no lm-eval results (results_*.json) in it or any folder below it; give a folder that holds "
            "what lm_eval --output_path (or tts-eval run --output_path) wrote, after the run has finished"
        )
    return found


def read_run(results_file: Path) -> Run:
    """One run: its results file, settings and the samples of every task."""
    results = _read_results_json(results_file)
    settings = _settings_of(results, results_file)
    readings = _tasks_of(results, results_file)
    samples = _samples_files(results_file, readings)
    tasks: dict[str, TaskResult] = {}
    for task, reading in readings.items():
        n_samples = (results.get("n-samples") or {}).get(task) or {}
        problems = _read_samples(samples[task], reading, expected=n_samples.get("effective"))
        tasks[reading.benchmark] = TaskResult(
            task=task,
            benchmark=reading.benchmark,
            samples_file=samples[task],
            problems=problems,
            benchmark_size=n_samples.get("original"),
        )
    return Run(results_file=results_file, settings=settings, tasks=tasks)


def read_runs(run_dirs: Iterable[Path]) -> list[Run]:
    runs = [read_run(f) for d in run_dirs for f in find_results_files(Path(d))]
    seen: dict[Path, Path] = {}
    for run in runs:
        key = run.results_file.resolve()
        if key in seen:
            raise LeaderboardError(
                f"{run.results_file} is given twice (through overlapping folders); give each run folder once"
            )
        seen[key] = run.results_file
    return runs


# -- results JSON -----------------------------------------------------------------------


def _read_results_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise LeaderboardError(
            f"{path}: not valid JSON ({err.msg}, line {err.lineno}); the run may not have finished"
        ) from None
    if not isinstance(data, dict):
        raise LeaderboardError(f"{path}: not an lm-eval results file (expected a JSON object)")
    version = data.get("lm_eval_version")
    if version is None:
        raise LeaderboardError(
            f"{path}: no 'lm_eval_version'; the leaderboard reads results of lm-eval {SUPPORTED_LM_EVAL} "
            "(re-run the evaluation with a supported lm-eval)"
        )
    try:
        parsed = Version(str(version))
    except InvalidVersion:
        parsed = None
    if parsed is None or parsed not in SUPPORTED_LM_EVAL:
        raise LeaderboardError(
            f"{path}: written by lm-eval {version}, whose output layout the leaderboard does not know; "
            f"it reads lm-eval {SUPPORTED_LM_EVAL} (re-run with such a version, or update tts-eval)"
        )
    for key in ("results", "config"):
        if not isinstance(data.get(key), dict):
            raise LeaderboardError(
                f"{path}: field '{key}' is missing or not an object; not a complete lm-eval results file"
            )
    return data


def _settings_of(results: dict[str, Any], path: Path) -> RunSettings:
    config = results["config"]
    source = str(config.get("model") or results.get("model_source") or "")
    if not source:
        raise LeaderboardError(f"{path}: config.model is missing; cannot tell which lm-eval model wrote it")
    model_args = config.get("model_args")
    model_args = _parse_model_args(model_args) if isinstance(model_args, str) else dict(model_args or {})
    if source == TTS_MODEL:
        tts = config.get("tts")
        if not isinstance(tts, dict):
            raise LeaderboardError(
                f"{path}: a tts run without config.tts (the search settings); re-run with this tts-eval"
            )
        missing = [k for k in ("policy", "strategy", "n", "beam_size", "voting", "aggregation") if k not in tts]
        if missing:
            raise LeaderboardError(f"{path}: config.tts lacks {', '.join(missing)}; re-run with this tts-eval")
        strategy = str(tts["strategy"])
        uses_prm = tts.get("prm") is not None
        spec = traits(strategy)
        return RunSettings(
            model_source=source,
            policy=str(tts["policy"]),
            prm=str(tts.get("prm_name") or tts["prm"]) if uses_prm else None,
            strategy=strategy,
            n=int(tts["n"]),
            beam_size=int(tts["beam_size"]) if spec is not None and spec.tree else None,
            voting=None if is_baseline(strategy) else str(tts["voting"]),
            aggregation=str(tts["aggregation"]) if uses_prm else None,
            temperature=_float_or_none(tts.get("temperature")),
            policy_params=_float_or_none(config.get("model_num_parameters")),
            prm_params=_float_or_none(config.get("prm_num_parameters")),
            model_args=model_args,
        )
    name = results.get("model_name") or next(
        (model_args[k] for k in ("pretrained", "model", "path", "engine") if model_args.get(k)), None
    )
    if not name:
        raise LeaderboardError(
            f"{path}: cannot tell the model's name (no model_name, no pretrained= in config.model_args)"
        )
    return RunSettings(
        model_source=source,
        policy=str(name),
        prm=None,
        strategy=COT,
        n=1,
        beam_size=None,
        voting=None,
        aggregation=None,
        temperature=None,
        policy_params=_float_or_none(config.get("model_num_parameters")),
        prm_params=None,
        model_args=model_args,
    )


def _parse_model_args(text: str) -> dict[str, str]:
    args = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        args[key.strip()] = value.strip()
    return args


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _tasks_of(results: dict[str, Any], path: Path) -> dict[str, TaskReading]:
    groups = {g for g, subtasks in (results.get("group_subtasks") or {}).items() if subtasks}
    tasks = [t for t in results["results"] if t not in groups]
    if not tasks:
        raise LeaderboardError(f"{path}: the results hold no task; nothing to compare")
    unknown = [t for t in tasks if t not in KNOWN_TASKS]
    if unknown:
        raise LeaderboardError(
            f"{path}: task(s) {', '.join(unknown)} are not MATH-500, AIME24 or the toy world; the leaderboard compares "
            f"{known_tasks_text()}. Evaluate other tasks in a separate --output_path and leave it out"
            + (
                " (ProcessBench runs of the prm model are given with --processbench)"
                if any(t.startswith("processbench") for t in unknown)
                else ""
            )
        )
    by_benchmark: dict[str, str] = {}
    for task in tasks:
        benchmark = KNOWN_TASKS[task].benchmark
        if benchmark in by_benchmark:
            raise LeaderboardError(
                f"{path}: tasks {by_benchmark[benchmark]} and {task} both measure {benchmark} in one run; "
                "keep one of them per run"
            )
        by_benchmark[benchmark] = task
    return {task: KNOWN_TASKS[task] for task in tasks}


def _samples_files(results_file: Path, readings: dict[str, TaskReading]) -> dict[str, Path]:
    date = results_file.stem.removeprefix("results_")
    folder = results_file.parent
    files: dict[str, Path] = {}
    for path in folder.glob(f"samples_*_{date}.jsonl"):
        task = path.name[len("samples_") : -len(f"_{date}.jsonl")]
        files[task] = path
    stray = sorted(set(files) - set(readings))
    if stray:
        raise LeaderboardError(
            f"{folder}: samples for task(s) {', '.join(stray)} are dated like {results_file.name} but its results do "
            "not list them; the folder mixes runs: keep each run's results and samples files together and alone"
        )
    missing = sorted(set(readings) - set(files))
    if missing:
        raise LeaderboardError(
            f"{results_file}: no samples file for task(s) {', '.join(missing)} (expected "
            f"samples_<task>_{date}.jsonl beside it): the run was made without --log_samples, or its samples "
            "were moved or deleted; re-run it with --log_samples (a tts run resumes from its checkpoint)"
        )
    return files


# -- samples ----------------------------------------------------------------------------


def _read_samples(path: Path, reading: TaskReading, expected: int | None) -> list[ProblemOutcome]:
    rows = read_jsonl(path, LeaderboardError, "not an lm-eval samples file, or a damaged one")
    filters = sorted({str(r.get("filter", "none")) for r in rows})
    if len(filters) > 1:
        if "none" not in filters:
            raise LeaderboardError(f"{path}: samples of several filters ({', '.join(filters)}) and none called 'none'")
        rows = [r for r in rows if r.get("filter", "none") == "none"]
    problems: dict[int, ProblemOutcome] = {}
    for number, row in enumerate(rows, 1):
        where = f"{path}: sample {number}"
        doc_id = row.get("doc_id")
        doc = row.get("doc")
        if not isinstance(doc_id, int) or not isinstance(doc, dict):
            raise LeaderboardError(f"{where}: 'doc_id' or 'doc' is missing; not an lm-eval samples file")
        if doc_id in problems:
            raise LeaderboardError(f"{where}: problem doc_id={doc_id} appears twice; the file mixes runs")
        if reading.metric not in row:
            raise LeaderboardError(
                f"{where}: no '{reading.metric}' (the task's accuracy); not a {reading.benchmark} samples file"
            )
        problems[doc_id] = _outcome(row, doc, reading, where)
    if expected is not None and len(problems) != int(expected):
        raise LeaderboardError(
            f"{path}: {len(problems)} problems, but the results file counts {expected}; the samples file is "
            "incomplete or belongs to another run"
        )
    if not problems:
        raise LeaderboardError(f"{path}: no samples")
    return [problems[i] for i in sorted(problems)]


def _outcome(row: dict[str, Any], doc: dict[str, Any], reading: TaskReading, where: str) -> ProblemOutcome:
    gold = next((doc[f] for f in GOLD_FIELDS if doc.get(f) is not None), row.get("target"))
    if gold is None:
        raise LeaderboardError(f"{where}: the document has no answer field ({', '.join(GOLD_FIELDS)}) and no target")
    value = row[reading.metric]
    if not isinstance(value, (int, float)) or value not in (0, 1):
        raise LeaderboardError(f"{where}: '{reading.metric}' is {value!r}, expected 0 or 1")
    level = _level(doc.get(reading.grade_field)) if reading.grade_field else None
    outcome = ProblemOutcome(problem_id=_problem_id(doc), level=level, gold=str(gold), correct=bool(value))
    search = _search_result(row, where) if reading.search_results else None
    if search is not None and search.get("usage") is not None:
        from tts_eval.serialization import result_from_dict

        try:
            result = result_from_dict(search)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise LeaderboardError(f"{where}: the stored search result is malformed ({err!r})") from None
        outcome.candidates = result.candidates
        outcome.chosen = search["prediction_index"]
        outcome.policy_tokens = float(result.usage.policy_input_tokens + result.usage.policy_output_tokens)
        outcome.policy_input_tokens = float(result.usage.policy_input_tokens)
        outcome.prm_tokens = float(result.usage.prm_tokens)
        outcome.prm_scored_tokens = float(result.usage.prm_scored_tokens)
    else:
        outcome.prompt_text = _prompt_text(row)
        outcome.response_text = _response_text(row)
    return outcome


def _search_result(row: dict[str, Any], where: str) -> dict[str, Any]:
    filtered = row.get("filtered_resps")
    text: Any = (
        filtered[0] if isinstance(filtered, list) and filtered else filtered
    )  # unchecked: json.loads rejects a non-string
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        raise LeaderboardError(
            f"{where}: filtered_resps does not hold a search result; was it written by a tts-eval task?"
        ) from None
    if not isinstance(data, dict) or "candidates" not in data:
        raise LeaderboardError(
            f"{where}: filtered_resps does not hold a search result; was it written by a tts-eval task?"
        )
    return data


def _prompt_text(row: dict[str, Any]) -> str | None:
    arguments = row.get("arguments")
    if isinstance(arguments, dict):
        first = arguments.get("gen_args_0")
        if isinstance(first, dict) and isinstance(first.get("arg_0"), str):
            return first["arg_0"]
    return None


def _response_text(row: dict[str, Any]) -> str | None:
    resps = row.get("resps")
    while isinstance(resps, list) and resps:
        resps = resps[0]
    return resps if isinstance(resps, str) else None


def _problem_id(doc: dict[str, Any]) -> str:
    for name in PROBLEM_ID_FIELDS:
        if doc.get(name) is not None:
            return str(doc[name])
    for name in PROBLEM_TEXT_FIELDS:
        if isinstance(doc.get(name), str):
            return doc[name].strip()
    return json.dumps(doc, sort_keys=True, ensure_ascii=False)


def _level(level: Any) -> int | None:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str):  # "Level 3" in the original MATH release
        digits = "".join(c for c in level if c.isdigit())
        return int(digits) if digits else None
    return None
