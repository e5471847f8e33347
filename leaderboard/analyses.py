"""The paper's PRM analyses, from stored runs only (nothing is generated):

- **TTS vs PRM quality** (Q1): each PRM-guided run's accuracy against its PRM's ProcessBench
  F1 (measured by a ``prm`` run where one is given, else the spec's published figure, marked
  so), with ``accuracy = a * ln(F1) + b`` fitted (percent on both axes) over the runs of one
  policy, strategy, budget and voting that differ only in the PRM;
- **length bias** (Q3): the tokens and steps of the solutions a PRM-guided run chose, against
  the policy's own solutions on the same problems (its CoT run's and its majority run's
  chosen solutions) and against every candidate the run generated;
- **voting sensitivity** (Q3): each PRM-guided run's accuracy under every aggregation x
  voting, re-voted over the candidates it stored, and their spread (max - min).

Accuracies and spreads are in percent. Token counts are the policy's generated tokens of a
solution (``Trajectory.num_tokens``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from leaderboard.formatting import DASH, policy_label, strategy_name
from leaderboard.prm_quality import F1, f1_for, published_f1, read_processbench_runs
from leaderboard.runs import ProblemOutcome, Run
from tts_eval.scoring import AGGREGATIONS
from tts_eval.strategies import is_baseline, traits
from tts_eval.types import Trajectory
from tts_eval.voting import MAJORITY_VOTE, vote

PRM_VOTINGS = ("prm_max", "prm_vote")
VOTING_COLUMNS = [(MAJORITY_VOTE, None)] + [(v, a) for a in AGGREGATIONS for v in PRM_VOTINGS]


def column_name(voting: str, aggregation: str | None) -> str:
    return voting if aggregation is None else f"{aggregation}/{voting}"


@dataclass(frozen=True)
class RunKey:
    """A run's setup on one benchmark, as the analyses name it."""

    policy: str
    benchmark: str
    strategy: str
    n: int
    prm: str | None
    aggregation: str | None
    voting: str | None
    beam_size: int | None

    def title(self, with_prm: bool = True) -> str:
        parts = [policy_label(self.policy)]
        if with_prm and self.prm:
            parts.append(policy_label(self.prm))
        parts.append(strategy_name(self.strategy) + (f" (M={self.beam_size})" if self.beam_size else ""))
        if self.voting:
            parts.append(
                self.voting
                if self.aggregation is None or self.voting == MAJORITY_VOTE
                else f"{self.aggregation}/{self.voting}"
            )
        parts.append(f"N={self.n}")
        return " · ".join(parts)


@dataclass
class QualityPoint:
    key: RunKey
    f1: F1
    accuracy: float  # percent
    problems: int


@dataclass
class LogFit:
    """``accuracy = a * ln(f1) + b`` over the points of one group (percent)."""

    group: RunKey  # the points' setup, prm left out
    a: float
    b: float
    points: int


@dataclass
class LengthRow:
    key: RunKey
    problems: int
    tokens: float  # per chosen solution
    steps: float  # per chosen solution
    tokens_per_step: float  # tokens / steps of the chosen solutions (ratio of sums)
    candidate_tokens: float  # per candidate the run generated
    cot_tokens: float | None = None  # the policy's CoT solutions on the same problems
    majority_tokens: float | None = None  # the policy's majority-voted solutions on the same problems


@dataclass
class VotingRow:
    key: RunKey
    problems: int
    accuracy: dict[str, float] = field(default_factory=dict)  # column name -> percent

    @property
    def spread(self) -> float:
        return max(self.accuracy.values()) - min(self.accuracy.values())


@dataclass
class Analyses:
    quality: list[QualityPoint]
    fits: list[LogFit]
    lengths: list[LengthRow]
    voting: list[VotingRow]


def build_analyses(runs: Sequence[Run], processbench_dirs: Iterable[Path] = ()) -> Analyses:
    """The three analyses of ``runs`` (their candidates already graded)."""
    measured = read_processbench_runs(processbench_dirs)
    published = published_f1()
    quality, lengths, voting = [], [], []
    for run in runs:
        s = run.settings
        if s.prm is None:
            continue
        for benchmark, task in run.tasks.items():
            key = run_key(run, benchmark)
            f1 = f1_for(s.prm, benchmark, measured, published)
            if f1 is not None:
                accuracy = 100.0 * sum(p.correct for p in task.problems) / len(task.problems)
                quality.append(QualityPoint(key, f1, accuracy, len(task.problems)))
            stored = [p for p in task.problems if p.candidates]
            if stored:
                lengths.append(length_row(key, stored, runs))
                voting.append(voting_row(key, stored))
    return Analyses(quality=quality, fits=fit_groups(quality), lengths=lengths, voting=voting)


def run_key(run: Run, benchmark: str) -> RunKey:
    s = run.settings
    return RunKey(s.policy, benchmark, s.strategy, s.n, s.prm, s.aggregation if s.prm else None, s.voting, s.beam_size)


def fit_log_curve(f1: Sequence[float], accuracy: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``a, b`` of ``accuracy = a * ln(f1) + b``."""
    a, b = np.polyfit(np.log(np.asarray(f1, dtype=float)), np.asarray(accuracy, dtype=float), 1)
    return float(a), float(b)


def fit_groups(points: Sequence[QualityPoint]) -> list[LogFit]:
    """One fit per group of points that differ in the PRM only, where two or more distinct
    positive F1 values make a curve."""
    groups: dict[RunKey, list[QualityPoint]] = defaultdict(list)
    for point in points:
        groups[_without_prm(point.key)].append(point)
    fits = []
    for group, members in groups.items():
        xs = [p.f1.value for p in members if p.f1.value > 0]
        if len(set(xs)) >= 2 and len(xs) == len(members):
            a, b = fit_log_curve(xs, [p.accuracy for p in members])
            fits.append(LogFit(group, a, b, len(members)))
    return fits


def _without_prm(key: RunKey) -> RunKey:
    return RunKey(key.policy, key.benchmark, key.strategy, key.n, None, key.aggregation, key.voting, key.beam_size)


def _candidates(problem: ProblemOutcome) -> list[Trajectory]:
    assert problem.candidates is not None, "the analyses read only problems that stored their candidates"
    return problem.candidates


def _graded(problem: ProblemOutcome) -> list[bool]:
    assert problem.candidate_correct is not None, "the analyses read only problems whose candidates were graded"
    return problem.candidate_correct


def _chosen(problem: ProblemOutcome) -> Trajectory:
    return _candidates(problem)[problem.chosen if problem.chosen is not None else 0]


def mean_tokens(problems: Iterable[ProblemOutcome]) -> float | None:
    values = [_chosen(p).num_tokens for p in problems]
    return sum(values) / len(values) if values else None


def length_row(key: RunKey, problems: list[ProblemOutcome], runs: Sequence[Run]) -> LengthRow:
    chosen = [_chosen(p) for p in problems]
    tokens, steps = sum(c.num_tokens for c in chosen), sum(len(c.steps) for c in chosen)
    candidates = [c for p in problems for c in _candidates(p)]
    ids = {p.problem_id for p in problems}
    row = LengthRow(
        key=key,
        problems=len(problems),
        tokens=tokens / len(chosen),
        steps=steps / len(chosen),
        tokens_per_step=tokens / steps if steps else math.nan,
        candidate_tokens=sum(c.num_tokens for c in candidates) / len(candidates),
    )
    for run in runs:  # the policy's own solutions on the same problems
        s, task = run.settings, run.tasks.get(key.benchmark)
        if s.policy != key.policy or s.prm is not None or task is None or _uses_prm(s.strategy):
            continue
        same = [p for p in task.problems if p.problem_id in ids and p.candidates]
        if len(same) != len(ids):
            continue  # lengths differ between problems: compare on the same ones only
        if is_baseline(s.strategy):
            row.cot_tokens = mean_tokens(same)
        else:
            row.majority_tokens = mean_tokens(same)
    return row


def _uses_prm(strategy: str) -> bool:
    """True unless a registered strategy that searches without a PRM (CoT, majority)."""
    found = traits(strategy)
    return found is None or found.needs_prm


def voting_row(key: RunKey, problems: list[ProblemOutcome]) -> VotingRow:
    row = VotingRow(key=key, problems=len(problems))
    for voting, aggregation in VOTING_COLUMNS:
        right = [_graded(p)[vote(_candidates(p), voting, aggregation or "last")] for p in problems]
        row.accuracy[column_name(voting, aggregation)] = 100.0 * sum(right) / len(right)
    return row


# -- tables (Markdown and HTML alike) and JSON -------------------------------------------------


@dataclass
class AnalysisTable:
    title: str
    description: str
    header: list[str]
    rows: list[list[str]]


def _number(value: float | None, digits: int = 1) -> str:
    return DASH if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _ratio(value: float, reference: float | None) -> str:
    return DASH if not reference else f"{value / reference:.2f}x"


def analysis_tables(analyses: Analyses | None) -> list[AnalysisTable]:
    if analyses is None:
        return []
    tables = []
    if analyses.quality:
        fits = {f.group: f for f in analyses.fits}
        rows = []
        for p in sorted(analyses.quality, key=lambda p: (p.key.benchmark, _without_prm(p.key).title(), p.f1.value)):
            fit = fits.get(_without_prm(p.key))
            rows.append(
                [
                    p.key.benchmark,
                    p.key.title(with_prm=False),
                    policy_label(p.key.prm or ""),
                    _number(p.f1.value),
                    p.f1.source,
                    _number(p.accuracy),
                    str(p.problems),
                    DASH if fit is None else f"{fit.a:.2f}·ln(F1) + {fit.b:.2f}",
                ]
            )
        tables.append(
            AnalysisTable(
                "TTS accuracy vs PRM ProcessBench F1",
                "Each PRM-guided run's accuracy against its PRM's ProcessBench F1: measured by a prm run where one was "
                "given (the toy ProcessBench for the toy benchmark), else the spec's published figure (marked "
                "'published'). Fit: accuracy = a·ln(F1) + b (percent) over the runs that differ only in the PRM "
                "(the paper: 7.66·ln(F1) + 44.31).",
                ["Benchmark", "Setup", "PRM", "F1 (%)", "F1 source", "Accuracy (%)", "Problems", "Fit"],
                rows,
            )
        )
    if analyses.lengths:
        rows = [
            [
                r.key.benchmark,
                r.key.title(),
                str(r.problems),
                _number(r.tokens),
                _number(r.steps, 2),
                _number(r.tokens_per_step, 2),
                _number(r.candidate_tokens),
                _ratio(r.tokens, r.cot_tokens),
                _ratio(r.tokens, r.majority_tokens),
            ]
            for r in analyses.lengths
        ]
        tables.append(
            AnalysisTable(
                "Length bias of the PRMs",
                "Generated tokens and steps of the solutions each PRM-guided run chose, per solution; 'all candidates': "
                "every solution the run generated; the ratios compare the chosen solutions with the policy's own "
                "(its CoT run's and its majority run's chosen solutions) on the same problems.",
                [
                    "Benchmark",
                    "Setup",
                    "Problems",
                    "Tokens / solution",
                    "Steps / solution",
                    "Tokens / step",
                    "Tokens / candidate (all)",
                    "vs CoT",
                    "vs majority",
                ],
                rows,
            )
        )
    if analyses.voting:
        names = [column_name(v, a) for v, a in VOTING_COLUMNS]
        rows = [
            [
                r.key.benchmark,
                r.key.title(),
                str(r.problems),
                *(_number(r.accuracy[n]) for n in names),
                _number(r.spread),
            ]
            for r in analyses.voting
        ]
        tables.append(
            AnalysisTable(
                "Voting sensitivity",
                "Accuracy (%) of each PRM-guided run's stored candidates under every aggregation/voting, and the spread "
                "(max - min, points). Only the final vote changes: beam search and DVTS grew their candidates with the "
                "run's own aggregation.",
                ["Benchmark", "Setup", "Problems", *names, "Spread"],
                rows,
            )
        )
    return tables


def analyses_json(analyses: Analyses | None) -> dict | None:
    if analyses is None:
        return None

    def key(k: RunKey) -> dict:
        return asdict(k)

    return {
        "tts_vs_prm_quality": [
            {
                **key(p.key),
                "f1": p.f1.value,
                "f1_source": p.f1.source,
                "f1_results_file": p.f1.results_file,
                "accuracy": p.accuracy,
                "problems": p.problems,
            }
            for p in analyses.quality
        ],
        "log_fits": [{**key(f.group), "a": f.a, "b": f.b, "points": f.points} for f in analyses.fits],
        "length_bias": [{**key(r.key), **{k: v for k, v in asdict(r).items() if k != "key"}} for r in analyses.lengths],
        "voting_sensitivity": [
            {**key(r.key), "problems": r.problems, "accuracy": r.accuracy, "spread": r.spread} for r in analyses.voting
        ],
    }
