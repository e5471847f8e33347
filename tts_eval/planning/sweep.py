"""``tts-eval sweep``: every strategy x budget x aggregation x voting of one policy, PRM and
task, with per-problem outcomes, for ``tts-eval plan`` to learn a policy table from.

Work is shared wherever the strategies allow:

- one Best-of-N run at the largest budget (always made: its samples are also each problem's
  Pass@1 and the probes the difficulty estimate is fitted on) gives majority and Best-of-N at
  every smaller budget: a run at budget k would have drawn k of the stored solutions, so its expected
  accuracy is the mean over size-k subsets (``tts_eval.estimators``: exact for prm_max,
  every subset or a seeded random sample of them for majority and prm_vote);
- one DVTS run gives DVTS at every multiple of the beam size (its subtrees are independent);
- beam search and particle filtering run once per budget they are needed at (a particle
  filter's final vote uses its particles' weights, ``particle_filtering.vote_particles``);
- every aggregation and voting is computed from the same candidates (the searches rank
  beams by the newest step's score whatever the aggregation).

Beam search and DVTS are also run at the budget a compute-optimal probe leaves
(``N - probe``, see ``fit_tree``), since that is what the compute-optimal strategy runs.

The output folder::

    sweep.json        settings, models, parameter counts, the runs, the configurations
    runs/*.jsonl      every search result of every run (tts_eval.serialization form)
    problems.jsonl    per problem: gold, Pass@1 and each Best-of-N sample's answer class,
                      correctness and aggregated PRM scores (for the difficulty estimate)
    outcomes.jsonl    per configuration: expected accuracy and FLOPs of every problem

A finished run in ``runs/`` is reused when the sweep is started again with the same settings.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tts_eval.compute_optimal.table import Probe, fit_tree
from tts_eval.flops import TokenCounts, at_budget
from tts_eval.jsonl import read_jsonl
from tts_eval.scoring import AGGREGATIONS, aggregate
from tts_eval.search_options import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_PF_TEMPERATURE,
    DEFAULT_RESAMPLING,
    DEFAULT_TEMPERATURE,
    default,
)
from tts_eval.strategies import get_strategy
from tts_eval.strategies.names import BEAM_SEARCH, BEST_OF_N, DVTS, MAJORITY, PARTICLE_FILTERING
from tts_eval.types import Problem, SearchResult
from tts_eval.voting import MAJORITY_VOTE, VOTINGS

FORMAT_VERSION = 1
SWEEP_FILE, PROBLEMS_FILE, OUTCOMES_FILE, RUNS_DIR = "sweep.json", "problems.jsonl", "outcomes.jsonl", "runs"
DEFAULT_PROBE = Probe(fraction=0.25, min=2)


class SweepError(ValueError):
    """A sweep's input or folder is unusable; the message names it and what to do."""


@dataclass(frozen=True)
class SweepProblem:
    id: str
    question: str
    gold: str


@dataclass(frozen=True)
class SearchRun:
    """One search the grid needs."""

    strategy: str
    n: int
    beam_size: int | None = None

    @property
    def file_name(self) -> str:
        tail = "" if self.beam_size is None else f"-m{self.beam_size}"
        return f"{self.strategy}-n{self.n}{tail}.jsonl"


@dataclass(frozen=True)
class Config:
    """One cell of the grid: a strategy at a budget with an aggregation and a voting.
    ``aggregation`` is None where it plays no part (majority voting)."""

    strategy: str
    n: int
    beam_size: int | None
    aggregation: str | None
    voting: str

    def label(self) -> str:
        parts = [self.strategy, f"n={self.n}"]
        parts += [f"M={self.beam_size}"] if self.beam_size is not None else []
        parts += [self.aggregation] if self.aggregation is not None else []
        parts += [self.voting] if self.strategy != MAJORITY else []
        return " ".join(parts)


@dataclass
class SweepSettings:
    budgets: tuple[int, ...]
    strategies: tuple[str, ...] = (MAJORITY, BEST_OF_N, BEAM_SEARCH, DVTS)
    aggregations: tuple[str, ...] = ("min", "last")
    votings: tuple[str, ...] = VOTINGS
    beam_size: int = default("beam_size")
    probe: Probe = field(default_factory=lambda: DEFAULT_PROBE)
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = default("top_p")
    max_tokens: int = DEFAULT_MAX_TOKENS
    max_step_tokens: int = default("max_step_tokens")
    max_steps: int = default("max_steps")
    seed: int = default("seed")
    max_subsets: int = 200  # subsets per problem and budget beyond which votes are sampled
    pf_temperature: float = DEFAULT_PF_TEMPERATURE  # particle filtering's weights
    resampling: str = DEFAULT_RESAMPLING  # particle filtering's draws

    def __post_init__(self) -> None:
        self.budgets = tuple(sorted(set(self.budgets)))
        if not self.budgets or self.budgets[0] < 1:
            raise SweepError(f"budgets must be positive integers, got {list(self.budgets)}")
        for name, given, allowed in (
            ("strategies", self.strategies, (MAJORITY, BEST_OF_N, BEAM_SEARCH, DVTS, PARTICLE_FILTERING)),
            ("aggregations", self.aggregations, AGGREGATIONS),
            ("votings", self.votings, VOTINGS),
        ):
            unknown = [x for x in given if x not in allowed]
            if unknown or not given:
                raise SweepError(f"{name}: {unknown or 'none given'}; choose from {', '.join(allowed)}")
        if self.beam_size < 1:
            raise SweepError(f"beam_size must be at least 1, got {self.beam_size}")
        from tts_eval.search import validate_settings

        try:  # the particle options, checked where the search checks them
            validate_settings(
                PARTICLE_FILTERING,
                n=1,
                beam_size=1,
                aggregation="last",
                voting=MAJORITY_VOTE,
                has_prm=True,
                pf_temperature=self.pf_temperature,
                resampling=self.resampling,
            )
        except ValueError as err:
            raise SweepError(str(err)) from None

    @property
    def largest(self) -> int:
        return self.budgets[-1]

    def probe_size(self, budget: int) -> int:
        return self.probe.size(budget)

    def sampling_sizes(self) -> list[int]:
        """Budgets at which majority and Best-of-N are estimated: powers of two, the budgets
        and the probe sizes, up to the largest budget."""
        sizes = {1 << p for p in range(self.largest.bit_length())} | set(self.budgets)
        sizes |= {self.probe_size(b) for b in self.budgets}
        return sorted(s for s in sizes if s <= self.largest)

    def tree_sizes(self) -> list[tuple[int, int]]:
        """(n, beam size) of the tree searches: each budget, and what its probe leaves."""
        sizes = set()
        for budget in self.budgets:
            for n in (budget, budget - self.probe_size(budget)):
                if n >= 1:
                    sizes.add(fit_tree(n, self.beam_size))
        return sorted(sizes)

    def particle_sizes(self) -> list[int]:
        """Particle counts of the particle filter: each budget, and what its probe leaves."""
        if PARTICLE_FILTERING not in self.strategies:
            return []
        return sorted({n for b in self.budgets for n in (b, b - self.probe_size(b)) if n >= 1})

    def runs(self) -> list[SearchRun]:
        # Always: its samples are also the probes and the Pass@1 the difficulty estimate is fitted on.
        runs = [SearchRun(BEST_OF_N, self.largest)]
        trees = self.tree_sizes()
        if DVTS in self.strategies and any(m == self.beam_size for _, m in trees):
            largest = max(n for n, m in trees if m == self.beam_size)
            runs.append(SearchRun(DVTS, largest, self.beam_size))
        for n, m in trees:
            # One beam of width n < beam size is DVTS with one subtree too: beam search serves both.
            if BEAM_SEARCH in self.strategies or (DVTS in self.strategies and m < self.beam_size):
                runs.append(SearchRun(BEAM_SEARCH, n, m))
        runs += [SearchRun(PARTICLE_FILTERING, n) for n in self.particle_sizes()]
        return runs

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["probe"] = self.probe.model_dump(exclude_none=True)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SweepSettings:
        data = dict(data)
        data["probe"] = Probe.model_validate(data["probe"])
        for key in ("budgets", "strategies", "aggregations", "votings"):
            data[key] = tuple(data[key])
        return cls(**data)


# -- reading problems ------------------------------------------------------------------


def read_problems(path: Path, limit: int | None = None) -> list[SweepProblem]:
    """A JSONL file with 'problem' or 'question', 'answer' and optionally 'id' / 'unique_id'
    (a problem's line number counts from 0 where it has none)."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(
            f"{path}: no such problems file; give a JSONL file with 'problem' (or 'question') and 'answer'"
        )
    problems: list[SweepProblem] = []
    for index, row in enumerate(read_jsonl(path, SweepError)[:limit]):
        question = row.get("problem", row.get("question"))
        if not isinstance(question, str) or row.get("answer") is None:
            raise SweepError(f"{path}: problem {index + 1} needs a 'problem' (or 'question') string and an 'answer'")
        problems.append(SweepProblem(str(row.get("id", row.get("unique_id", index))), question, str(row["answer"])))
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise SweepError(f"{path}: problem ids repeat; give each line a distinct 'id'")
    if not problems:
        raise SweepError(f"{path}: no problems")
    return problems


# -- running ---------------------------------------------------------------------------


def run_sweep(
    problems: Sequence[SweepProblem],
    policy,
    prm,
    settings: SweepSettings,
    out_dir: Path,
    *,
    task: str,
    progress: bool = False,
    log=print,
) -> Path:
    """Run the grid's searches (reusing finished ones in ``out_dir``), then write the
    per-problem outcomes. Returns ``out_dir``."""
    from tts_eval.search import search

    out_dir = Path(out_dir)
    header = {
        "format": FORMAT_VERSION,
        "task": task,
        "policy": policy.name,
        "policy_params": policy.num_parameters,
        "prm": prm.name,
        "prm_params": prm.num_parameters,
        "settings": settings.to_json(),
        "problems": [p.id for p in problems],
    }
    _claim_folder(out_dir, header)
    runs_dir = out_dir / RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    search_problems = [Problem(p.question, policy.format_prompt(p.question)) for p in problems]
    results: dict[SearchRun, list[SearchResult]] = {}
    for run in settings.runs():
        path = runs_dir / run.file_name
        found = _read_run(path, problems)
        if found is None:
            name = f"{run.strategy} n={run.n}" + (f" M={run.beam_size}" if run.beam_size else "")
            started = time.perf_counter()
            own = get_strategy(run.strategy).options  # settings only this strategy reads
            particle: dict[str, Any] = {"pf_temperature": settings.pf_temperature, "resampling": settings.resampling}
            found = search(
                search_problems,
                policy,
                prm,
                strategy=run.strategy,
                n=run.n,
                beam_size=run.beam_size or settings.beam_size,
                temperature=settings.temperature,
                top_p=settings.top_p,
                max_tokens=settings.max_tokens,
                max_step_tokens=settings.max_step_tokens,
                max_steps=settings.max_steps,
                seed=settings.seed,
                progress=progress,
                **{name: value for name, value in particle.items() if name in own},
            )
            _write_run(path, problems, found)
            log(f"sweep: {name} on {len(problems)} problems: {time.perf_counter() - started:.0f} s")
        else:
            log(f"sweep: reusing {path}")
        results[run] = found
    log("sweep: grading and estimating every configuration")
    write_outcomes(out_dir, problems, results, settings, policy.num_parameters, prm.num_parameters)
    header["runs"] = [asdict(r) | {"file": f"{RUNS_DIR}/{r.file_name}"} for r in settings.runs()]
    (out_dir / SWEEP_FILE).write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")
    return out_dir


def _claim_folder(out_dir: Path, header: dict[str, Any]) -> None:
    """Use ``out_dir`` for this sweep: new, empty, or a sweep with the same settings."""
    existing = out_dir / SWEEP_FILE
    if existing.is_file():
        old = json.loads(existing.read_text(encoding="utf-8"))
        same = {k: old.get(k) for k in header} == json.loads(json.dumps(header))
        if not same:
            raise SweepError(
                f"{out_dir} holds a sweep with other settings, models or problems; give another --out or delete it"
            )
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise SweepError(f"{out_dir} is not empty and holds no sweep; give a new or empty --out folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    existing.write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")


def _write_run(path: Path, problems: Sequence[SweepProblem], results: Sequence[SearchResult]) -> None:
    from tts_eval.serialization import result_to_dict

    partial = path.with_suffix(".partial")
    with open(partial, "w", encoding="utf-8") as f:
        for p, r in zip(problems, results):
            f.write(json.dumps({"id": p.id, "result": result_to_dict(r)}) + "\n")
    partial.replace(path)  # a killed sweep never leaves half a run behind


def _read_run(path: Path, problems: Sequence[SweepProblem]) -> list[SearchResult] | None:
    from tts_eval.serialization import result_from_dict

    if not path.is_file():
        return None
    rows = read_jsonl(path, SweepError)
    if [r.get("id") for r in rows] != [p.id for p in problems]:
        return None
    return [result_from_dict(r["result"]) for r in rows]


# -- outcomes --------------------------------------------------------------------------


@dataclass
class _Graded:
    """One run's candidates of one problem, with answers canonical and graded."""

    candidates: list  # canonical candidates (tts_eval.estimators.canonical_candidates)
    correct: list[bool]
    classes: list[int | None]


def _grade(result: SearchResult, gold: str) -> _Graded:
    from tts_eval.estimators import canonical_candidates
    from tts_eval.grading import is_equivalent
    from tts_eval.voting import group_answers

    candidates = canonical_candidates(result.candidates)
    classes = group_answers([c.answer for c in candidates])
    verdict: dict[int, bool] = {}
    for c, cls in zip(candidates, classes):
        if cls is not None and cls not in verdict:
            assert c.answer is not None  # only a missing answer has no class
            verdict[cls] = is_equivalent(gold, c.answer)
    return _Graded(candidates, [cls is not None and verdict[cls] for cls in classes], classes)


def write_outcomes(
    out_dir: Path,
    problems: Sequence[SweepProblem],
    results: dict[SearchRun, list[SearchResult]],
    settings: SweepSettings,
    policy_params: int,
    prm_params: int,
) -> None:
    """``problems.jsonl`` and ``outcomes.jsonl`` from the runs' results."""
    outcomes: dict[Config, tuple[list[float], list[float]]] = {}
    runs = {(r.strategy, r.n, r.beam_size): found for r, found in results.items()}
    (bon,) = [found for r, found in results.items() if r.strategy == BEST_OF_N]
    with open(out_dir / PROBLEMS_FILE, "w", encoding="utf-8") as f:
        for index, problem in enumerate(problems):
            cells = _Cells(outcomes, settings, seed=(settings.seed, problem.id))
            row = _sampling_outcomes(cells, bon[index], problem, policy_params, prm_params)
            _tree_outcomes(cells, runs, index, problem, policy_params, prm_params)
            _particle_outcomes(cells, runs, index, problem)
            f.write(json.dumps(row) + "\n")
    with open(out_dir / OUTCOMES_FILE, "w", encoding="utf-8") as f:
        for config, (accuracy, flops) in outcomes.items():
            f.write(json.dumps({"config": asdict(config), "accuracy": accuracy, "flops": flops}) + "\n")


@dataclass
class _Cells:
    """Appends one problem's outcome to each configuration it estimates."""

    outcomes: dict[Config, tuple[list[float], list[float]]]
    settings: SweepSettings
    seed: object

    def add(self, config: Config, graded: _Graded, k: int, flops: float) -> None:
        from tts_eval.estimators import vote_accuracy

        accuracy = vote_accuracy(
            graded.candidates,
            graded.correct,
            k,
            config.voting,
            config.aggregation or "last",
            max_subsets=self.settings.max_subsets,
            seed=self.seed,
        )
        self.add_value(config, accuracy, flops)

    def add_value(self, config: Config, accuracy: float, flops: float) -> None:
        acc, fl = self.outcomes.setdefault(config, ([], []))
        acc.append(accuracy)
        fl.append(flops)


def _sampling_outcomes(
    cells: _Cells, result: SearchResult, problem: SweepProblem, policy_params: int, prm_params: int
) -> dict:
    """Majority and Best-of-N at every sampling size from the Best-of-N run; returns the
    problem's row of ``problems.jsonl``."""
    s = cells.settings
    graded = _grade(result, problem.gold)
    u, size = result.usage, len(result.candidates)
    for k in s.sampling_sizes():
        tokens = at_budget(TokenCounts.of(u), k, size, one_request=True)
        policy_cost, prm_cost = tokens.policy_flops(policy_params), tokens.prm_flops(prm_params)
        if MAJORITY in s.strategies:
            cells.add(Config(MAJORITY, k, None, None, MAJORITY_VOTE), graded, k, policy_cost)
        if BEST_OF_N in s.strategies:
            for aggregation in s.aggregations:
                for voting in (v for v in s.votings if v != MAJORITY_VOTE):
                    cells.add(Config(BEST_OF_N, k, None, aggregation, voting), graded, k, policy_cost + prm_cost)
    return {
        "id": problem.id,
        "gold": problem.gold,
        "pass_at_1": sum(graded.correct) / size,
        "policy_input_tokens": u.policy_input_tokens,
        "policy_output_tokens": u.policy_output_tokens,
        "prm_tokens": u.prm_tokens,
        "samples": [
            {"class": cls, "correct": ok, "scores": {a: _json_float(aggregate(c.step_scores, a)) for a in AGGREGATIONS}}
            for c, cls, ok in zip(graded.candidates, graded.classes, graded.correct)
        ],
    }


def _tree_outcomes(
    cells: _Cells,
    runs: dict[tuple, list[SearchResult]],
    index: int,
    problem: SweepProblem,
    policy_params: int,
    prm_params: int,
) -> None:
    """Beam search and DVTS at every tree size: DVTS from subsets of its run's subtrees, beam
    search from its own runs (one beam of width n < M is also DVTS with one subtree)."""
    s = cells.settings
    for n, m in s.tree_sizes():
        for strategy in (t for t in (BEAM_SEARCH, DVTS) if t in s.strategies):
            if strategy == DVTS and m == s.beam_size:
                ((_, largest, _),) = [key for key in runs if key[0] == DVTS]
                result = runs[(DVTS, largest, m)][index]
                k = n // m
                tokens = at_budget(TokenCounts.of(result.usage), k, len(result.candidates), one_request=False)
                flops = tokens.flops(policy_params, prm_params)
            else:
                result = runs[(BEAM_SEARCH, n, m)][index]
                k, flops = len(result.candidates), result.usage.flops
            graded = _grade(result, problem.gold)
            for voting in s.votings:
                for aggregation in [None] if voting == MAJORITY_VOTE else s.aggregations:
                    cells.add(Config(strategy, n, m, aggregation, voting), graded, k, flops)


def _particle_outcomes(cells: _Cells, runs: dict[tuple, list[SearchResult]], index: int, problem: SweepProblem) -> None:
    """Particle filtering at every particle count: its own run's weighted vote, for every
    aggregation and voting (its particles cannot be subsampled: they were resampled together)."""
    from tts_eval.strategies.particle_filtering import vote_particles

    s = cells.settings
    for n in s.particle_sizes():
        result = runs[(PARTICLE_FILTERING, n, None)][index]
        graded = _grade(result, problem.gold)
        for voting in s.votings:
            for aggregation in [None] if voting == MAJORITY_VOTE else s.aggregations:
                chosen = vote_particles(graded.candidates, voting, aggregation or "last", s.pf_temperature)
                cells.add_value(
                    Config(PARTICLE_FILTERING, n, None, aggregation, voting),
                    float(graded.correct[chosen]),
                    result.usage.flops,
                )


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value
