"""Leaderboard rows: one per policy x PRM x strategy (x voting) x budget N.

- *measured*: a run's own accuracy, as lm-eval graded it, with its recorded compute;
- *derived*: accuracy at a smaller budget estimated from a run's stored candidates
  (:mod:`tts_eval.estimators`), with the compute a run at that budget would spend
  (:func:`tts_eval.flops.at_budget`, as the sweep and plan count it);
- *published*: a figure from the reference file, never measured here.

Runs of one setup on different benchmarks fill one row. Compute per problem: tokens are
the policy's (prompt + generated) plus the PRM's (what it read); FLOPs = 2 x parameters x
tokens, summed over policy and PRM (setups without a PRM count the policy only).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from leaderboard.benchmarks import PAPER_BENCHMARKS
from leaderboard.errors import LeaderboardError
from leaderboard.reference import ModelBook, ReferenceFile
from leaderboard.runs import Run, TaskResult
from tts_eval.estimators import budgets, canonical_candidates, pass_at_k, subsets_used, vote_accuracy
from tts_eval.flops import TokenCounts, at_budget, flops, unit_share
from tts_eval.statistics import Interval, accuracy_interval, average_interval, subset_accuracy_interval
from tts_eval.strategies import get_strategy, traits
from tts_eval.strategies.names import BEST_OF_N, MAJORITY
from tts_eval.voting import MAJORITY_VOTE

MEASURED, DERIVED, PUBLISHED = "measured", "derived", "published"
PASS_AT_K = "pass@k"  # the oracle "voting" of pass@k rows: right if any candidate is
# The same oracle over a tree search's final candidates (DVTS subtrees), which are no
# independent samples of the policy: not its pass@k.
ANY_FINAL = "any final candidate correct"
ORACLES = (PASS_AT_K, ANY_FINAL)


@dataclass(frozen=True)
class Setup:
    """What a row measures; rows with equal setups are the same configuration."""

    policy: str
    prm: str | None
    strategy: str
    n: int | None
    voting: str | None = None
    aggregation: str | None = None
    beam_size: int | None = None

    @property
    def uses_prm(self) -> bool:
        return self.prm is not None


@dataclass
class Score:
    """A measured or derived row's result on one benchmark."""

    accuracy: float  # fraction
    per_problem: dict[str, float]  # problem id -> (expected) correctness
    levels: dict[str, int]  # problem id -> MATH level, where known
    policy_tokens: float | None  # mean per problem
    prm_tokens: float | None
    benchmark_size: int | None
    source: str  # the samples file
    kind: str = MEASURED  # measured | derived
    method: str = "run"  # "run", "maj@k", "prm_max@k", "prm_vote@k", "pass@k"
    source_n: int | None = None  # budget of the run the score comes from
    tokens_note: str | None = None
    # 95% bootstrap interval of the accuracy (over problems, and subsets for derived
    # scores); None with fewer than 2 problems, where there is nothing to resample.
    interval: Interval | None = None
    prm_scored_tokens: float | None = None  # mean per problem; prm_tokens excludes reused prefixes

    @property
    def problems(self) -> int:
        return len(self.per_problem)


@dataclass
class Row:
    setup: Setup
    kind: str  # measured | derived | published
    method: str  # "run", "maj@k", "prm_max@k", "prm_vote@k", "pass@k" or a table name
    policy_params: float | None = None
    prm_params: float | None = None
    pretraining_flops: float | None = None
    model_source: str | None = None
    source_n: int | None = None  # budget of the run a derived row comes from
    scores: dict[str, Score] = field(default_factory=dict)
    published: dict[str, float] = field(default_factory=dict)  # benchmark -> fraction

    def accuracy(self, benchmark: str) -> float | None:
        if benchmark in self.scores:
            return self.scores[benchmark].accuracy
        return self.published.get(benchmark)

    def known_accuracy(self, benchmark: str) -> float:
        """:meth:`accuracy` for a caller that kept only rows with a figure on ``benchmark``."""
        value = self.accuracy(benchmark)
        assert value is not None, f"the row has no accuracy on {benchmark}"
        return value

    def interval(self, benchmark: str) -> Interval | None:
        """The 95% interval of a measured or derived accuracy (published figures have none)."""
        score = self.scores.get(benchmark)
        return None if score is None else score.interval

    def average(self) -> float | None:
        values = [v for b in PAPER_BENCHMARKS if (v := self.accuracy(b)) is not None]
        return None if len(values) < len(PAPER_BENCHMARKS) else sum(values) / len(values)

    def average_interval(self) -> Interval | None:
        """The 95% interval of :meth:`average`, each benchmark's problems resampled on their
        own (problems only, for derived scores too); None for published rows."""
        scores = [s for b in PAPER_BENCHMARKS if (s := self.scores.get(b)) is not None and s.problems >= 2]
        if len(scores) < len(PAPER_BENCHMARKS):
            return None
        return average_interval([list(s.per_problem.values()) for s in scores])

    def tokens(self, benchmark: str | None = None) -> float | None:
        """Tokens per problem (policy + PRM where the setup uses one), on one benchmark or
        over every problem of the row."""
        return self._per_problem(
            benchmark, lambda s: _sum_known(s.policy_tokens, s.prm_tokens if self.setup.uses_prm else 0.0)
        )

    def flops(self, benchmark: str | None = None) -> float | None:
        """Inference FLOPs per problem: 2 x parameters x tokens, policy plus PRM."""

        def of(score: Score) -> float | None:
            if score.policy_tokens is None or self.policy_params is None:
                return None
            total = flops(self.policy_params, score.policy_tokens)
            if self.setup.uses_prm:
                if score.prm_tokens is None or self.prm_params is None:
                    return None
                total += flops(self.prm_params, score.prm_tokens)
            return total

        return self._per_problem(benchmark, of)

    def _per_problem(self, benchmark, value_of) -> float | None:
        if benchmark is not None and benchmark not in self.scores:
            return None  # published figures, or a benchmark the row has no run on
        scores = [self.scores[benchmark]] if benchmark is not None else list(self.scores.values())
        if not scores:
            return None
        values = [value_of(s) for s in scores]
        if any(v is None for v in values):
            return None
        weights = [s.problems for s in scores]
        return sum(v * w for v, w in zip(values, weights)) / sum(weights)


def _sum_known(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


# -- measured and derived rows ------------------------------------------------------------


def run_setup(run: Run) -> Setup:
    s = run.settings
    uses_prm_vote = s.voting in ("prm_max", "prm_vote")
    return Setup(
        policy=s.policy,
        prm=s.prm,
        strategy=s.strategy,
        n=s.n,
        voting=s.voting,
        aggregation=s.aggregation if uses_prm_vote else None,
        beam_size=s.beam_size,
    )


def measured_row(run: Run) -> Row:
    row = Row(
        setup=run_setup(run),
        kind=MEASURED,
        method="run",
        policy_params=run.settings.policy_params,
        prm_params=run.settings.prm_params,
        model_source=run.settings.model_source,
    )
    for benchmark, task in run.tasks.items():
        per_problem = {p.problem_id: float(p.correct) for p in task.problems}
        row.scores[benchmark] = _score(
            task, per_problem, budget=None, kind=MEASURED, method="run", source_n=run.settings.n, subsets=None
        )
    return row


def derived_rows(run: Run, *, max_subsets: int, seed: int) -> list[Row]:
    """Rows at budgets k = 1, 2, 4, ... from a Best-of-N, majority or DVTS run's candidates."""
    s = run.settings
    # Only a strategy whose stored candidates are independent draws: one solution each
    # (Best-of-N, majority) or one subtree each (DVTS).
    spec = traits(s.strategy)
    if spec is None or not spec.subsampled or s.model_source != "tts":
        return []
    unit = spec.candidate_budget(s.beam_size)
    count = s.n // unit
    # Whole solutions are asked for in one request (one prompt); subtrees send their own.
    one_request = spec.independent_samples
    has_scores = s.prm is not None
    oracle = (PASS_AT_K, PASS_AT_K) if spec.independent_samples else (ANY_FINAL, "any_final@k")
    methods = [(MAJORITY_VOTE, "maj@k"), oracle] + (
        [("prm_max", "prm_max@k"), ("prm_vote", "prm_vote@k")] if has_scores else []
    )
    rows: dict[tuple[str, int], Row] = {}
    for benchmark, task in run.tasks.items():
        prepared = [_prepared(p, count, task) for p in task.problems]
        for k in budgets(count):
            for method in methods:
                voting, name = method
                per_problem = {}
                for problem, (candidates, correct) in zip(task.problems, prepared):
                    if voting in ORACLES:
                        value = pass_at_k(count, sum(correct), k)
                    else:
                        value = vote_accuracy(
                            candidates,
                            correct,
                            k,
                            voting,
                            s.aggregation or "last",
                            max_subsets=max_subsets,
                            seed=(seed, benchmark, problem.problem_id),
                        )
                    per_problem[problem.problem_id] = value
                key = (name, k)
                if key not in rows:
                    rows[key] = Row(
                        setup=_derived_setup(run, voting, k * unit),
                        kind=DERIVED,
                        method=name,
                        policy_params=s.policy_params,
                        prm_params=s.prm_params,
                        model_source=s.model_source,
                        source_n=s.n,
                    )
                rows[key].scores[benchmark] = _score(
                    task,
                    per_problem,
                    budget=(k, count, one_request),
                    kind=DERIVED,
                    method=name,
                    source_n=s.n,
                    subsets=subsets_used(count, k, voting, max_subsets),
                )
    return list(rows.values())


def _derived_setup(run: Run, voting: str, n: int) -> Setup:
    s = run.settings
    if not get_strategy(s.strategy).independent_samples:
        # Subtrees were grown with the PRM whatever the final vote.
        return Setup(
            s.policy,
            s.prm,
            s.strategy,
            n,
            voting,
            s.aggregation if voting in ("prm_max", "prm_vote") else None,
            s.beam_size,
        )
    if voting in (MAJORITY_VOTE, PASS_AT_K):
        # Independent samples voted by answer alone: the majority strategy, no PRM spent.
        return Setup(s.policy, None, MAJORITY, n, voting)
    return Setup(s.policy, s.prm, BEST_OF_N, n, voting, s.aggregation)


def _prepared(problem, count: int, task: TaskResult):
    if problem.candidates is None or problem.candidate_correct is None:
        raise LeaderboardError(f"{task.samples_file}: problem {problem.problem_id!r} has no stored candidates")
    if len(problem.candidates) != count:
        raise LeaderboardError(
            f"{task.samples_file}: problem {problem.problem_id!r} has {len(problem.candidates)} candidates, "
            f"but the run's settings give {count}"
        )
    return canonical_candidates(problem.candidates), problem.candidate_correct


def _score(
    task: TaskResult,
    per_problem: dict[str, float],
    *,
    budget: tuple[int, int, bool] | None,
    kind: str,
    method: str,
    source_n: int | None,
    subsets: int | None,
) -> Score:
    """A score from per-problem values; compute is the run's, or with ``budget`` = (k, units,
    one_request) what a run drawing k of its units would spend (:func:`tts_eval.flops.at_budget`).
    ``subsets``: how many size-k subsets each derived per-problem value averages (None: a
    measured 0/1)."""
    problems = task.problems
    values = list(per_problem.values())
    interval = None
    if len(values) >= 2:
        interval = accuracy_interval(values) if subsets is None else subset_accuracy_interval(values, subsets)

    def mean_tokens(attr: str) -> float | None:
        values = [getattr(p, attr) for p in problems]
        if any(v is None for v in values):
            return None
        return sum(values) / len(values)

    def mean_at_budget(attr: str, measured: str) -> float | None:
        if budget is None:
            return mean_tokens(measured)
        k, units, one_request = budget
        scaled = []
        for p in problems:
            if p.policy_input_tokens is None or p.policy_tokens is None or p.prm_tokens is None:
                return None
            tokens = TokenCounts(p.policy_input_tokens, p.policy_tokens - p.policy_input_tokens, p.prm_tokens)
            scaled.append(at_budget(tokens, k, units, one_request=one_request))
        return sum(getattr(t, attr) for t in scaled) / len(scaled)

    return Score(
        accuracy=sum(per_problem.values()) / len(per_problem),
        per_problem=per_problem,
        levels={p.problem_id: p.level for p in problems if p.level is not None},
        policy_tokens=mean_at_budget("policy", "policy_tokens"),
        prm_tokens=mean_at_budget("prm", "prm_tokens"),
        benchmark_size=task.benchmark_size,
        source=str(task.samples_file),
        kind=kind,
        method=method,
        source_n=source_n,
        tokens_note=task.tokens_note,
        interval=interval,
        prm_scored_tokens=_scaled(mean_tokens("prm_scored_tokens"), budget),
    )


def _scaled(tokens: float | None, budget: tuple[int, int, bool] | None) -> float | None:
    """The PRM's inputs belong to the units (solutions, subtrees): they scale with them."""
    if tokens is None or budget is None:
        return tokens
    k, units, _ = budget
    return tokens * unit_share(k, units)


# -- merging ------------------------------------------------------------------------------


def merge_rows(rows: list[Row]) -> list[Row]:
    """One row per setup. Published rows stay as they are. Runs of one setup on different
    benchmarks fill one row; for each benchmark a measurement beats an estimate, and an
    estimate from a larger run beats one from a smaller run (the first given wins ties). A
    benchmark measured twice for one setup is an error."""
    merged: dict[Setup, Row] = {}
    out: list[Row] = []
    for row in rows:
        if row.kind == PUBLISHED:
            out.append(row)
            continue
        target = merged.get(row.setup)
        if target is None:
            target = merged[row.setup] = Row(
                setup=row.setup, kind=row.kind, method=row.method, model_source=row.model_source
            )
            out.append(target)
        for benchmark, score in row.scores.items():
            held = target.scores.get(benchmark)
            if held is not None:
                if held.kind == MEASURED and score.kind == MEASURED:
                    raise LeaderboardError(
                        f"two runs measure the same setup on {benchmark}: {held.source} and {score.source}; "
                        "give only one of them"
                    )
                if _preference(score) <= _preference(held):
                    continue
            target.scores[benchmark] = score
        target.policy_params = target.policy_params or row.policy_params
        target.prm_params = target.prm_params or row.prm_params
    for row in out:
        if row.kind != PUBLISHED:
            kinds = {s.kind for s in row.scores.values()}
            row.kind = MEASURED if kinds == {MEASURED} else DERIVED
            row.method = "/".join(sorted({s.method for s in row.scores.values()}))
            row.source_n = max((s.source_n or 0 for s in row.scores.values()), default=0) or None
    return out


def _preference(score: Score) -> tuple:
    return (score.kind == MEASURED, score.source_n or 0)


# -- model facts and published rows --------------------------------------------------------


def apply_model_facts(rows: list[Row], book: ModelBook) -> None:
    """Fill parameter counts the runs did not record, and pre-training FLOPs."""
    for row in rows:
        found = book.find(row.setup.policy)
        if found is None:
            continue
        _, facts = found
        if row.policy_params is None:
            row.policy_params = facts.parameters
        if row.pretraining_flops is None:
            row.pretraining_flops = facts.pretraining()


def published_rows(reference: ReferenceFile, benchmarks: Collection[str] | None = None) -> list[Row]:
    """The reference's rows; with ``benchmarks``, only their figures on those benchmarks (rows
    with none left out)."""
    rows = []
    for result in reference.results:
        facts = reference.models[result.policy]
        published = {b: v for b, v in result.accuracies().items() if benchmarks is None or b in benchmarks}
        if not published:
            continue
        rows.append(
            Row(
                setup=Setup(result.policy, result.prm, result.strategy, result.n),
                kind=PUBLISHED,
                method=result.table,
                policy_params=facts.parameters,
                pretraining_flops=facts.pretraining(),
                published=published,
            )
        )
    return rows
