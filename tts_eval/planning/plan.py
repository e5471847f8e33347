"""``tts-eval plan``: learn a compute-optimal policy table from sweeps, and measure it honestly.

For every sweep (one policy, PRM and task) and every budget N of it, with k = the probe size
at N:

1. The difficulty estimate is fitted: least squares on the features of k-sample probes
   (several disjoint probes per problem) of the Pass@1 of the problem's other Best-of-N
   samples, then its bucket edges (``fit_edges``), for the aggregation that puts the most
   probes in their bucket.
2. Each problem gets the bucket the estimate predicts from its first k samples, exactly the
   probe the compute-optimal strategy draws at test time.
3. Per bucket, the option with the best mean accuracy on that bucket's problems is chosen
   (ties: fewer FLOPs; a bucket with fewer than 5 problems takes the best option over all
   problems). Options are what the strategy can run within N after its probe: majority /
   Best-of-N with k <= n <= N solutions (the probe's among them), beam search / DVTS with
   n <= N - k, every aggregation and voting; each costs its FLOPs plus the probe's.
4. If the best single strategy within N (no probe) is at least as good on the same problems,
   the plan uses it for every bucket and draws no probe.

The accuracy printed for the table is cross-validated: problems are split into folds (seeded);
steps 1-4 run on all but one fold and the result is scored on the held-out fold; the mean over
held-out problems is reported. The best single strategy is chosen on the same training folds
and scored on the same held-out folds. The table written is fitted on all problems.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tts_eval.compute_optimal.difficulty import (
    BUCKETS,
    DifficultyModel,
    ProbeFeatures,
    bucket_of,
    features,
    fit_difficulty_model,
)
from tts_eval.compute_optimal.table import (
    BudgetPlan,
    Choice,
    ParamRange,
    PolicyTable,
    Probe,
    ResolvedPlan,
    Rule,
    concrete,
)
from tts_eval.flops import TokenCounts, at_budget
from tts_eval.jsonl import read_jsonl
from tts_eval.planning.sweep import (
    FORMAT_VERSION,
    OUTCOMES_FILE,
    PROBLEMS_FILE,
    SWEEP_FILE,
    Config,
    SweepSettings,
)
from tts_eval.scoring import AGGREGATIONS
from tts_eval.strategies import get_strategy
from tts_eval.voting import MAJORITY_VOTE

TIE = 1e-9  # accuracies closer than this are equal
MAX_PROBES_PER_PROBLEM = 8  # disjoint probes per problem used to fit the estimate
MIN_BUCKET = 5  # a bucket with fewer training problems takes the best option over all of them


class PlanError(ValueError):
    """The sweeps cannot be planned from; the message names the folder and what to do."""


@dataclass
class Sweep:
    """A sweep folder read back."""

    folder: Path
    task: str
    policy: str
    policy_params: int
    prm: str
    prm_params: int
    settings: SweepSettings
    ids: list[str]
    pass_at_1: list[float]
    samples: list[list[dict]]  # per problem, the Best-of-N samples in generation order
    tokens: list[tuple[int, int, int]]  # per problem: the Best-of-N run's policy in/out and PRM tokens
    outcomes: dict[Config, tuple[list[float], list[float]]]  # config -> (accuracy, flops) per problem

    def probe(self, index: int, k: int, aggregation: str, start: int = 0) -> ProbeFeatures:
        chunk = self.samples[index][start : start + k]
        return features([s["class"] for s in chunk], [_nan(s["scores"][aggregation]) for s in chunk])

    def pass_at_1_besides(self, index: int, k: int, start: int = 0) -> float:
        """Pass@1 over the problem's samples outside ``[start, start + k)``: a target for the
        probe's estimate whose sampling noise is independent of the probe's own (over all
        samples when the probe holds them all)."""
        samples = self.samples[index]
        rest = [s["correct"] for j, s in enumerate(samples) if not start <= j < start + k]
        return sum(rest) / len(rest) if rest else self.pass_at_1[index]

    def probe_flops(self, index: int, k: int) -> tuple[float, float]:
        """What a k-solution probe costs, (policy, PRM) FLOPs: one request's prompt, k
        solutions, their PRM scores (the Best-of-N run's tokens, scaled)."""
        tokens = at_budget(TokenCounts(*self.tokens[index]), k, len(self.samples[index]), one_request=True)
        return tokens.policy_flops(self.policy_params), tokens.prm_flops(self.prm_params)

    def prompt_flops(self, index: int) -> float:
        return TokenCounts(self.tokens[index][0], 0, 0).policy_flops(self.policy_params)


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def read_sweep(folder: Path) -> Sweep:
    folder = Path(folder)
    header_file = folder / SWEEP_FILE
    if not header_file.is_file():
        raise PlanError(f"{folder}: no {SWEEP_FILE}; give folders written by tts-eval sweep")
    try:
        header = json.loads(header_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise PlanError(f"{header_file}: not valid JSON ({err.msg}); run tts-eval sweep again") from None
    if header.get("format") != FORMAT_VERSION:
        raise PlanError(
            f"{header_file}: sweep format {header.get('format')!r}, this version reads {FORMAT_VERSION}; re-run the sweep"
        )
    if "runs" not in header or not (folder / OUTCOMES_FILE).is_file() or not (folder / PROBLEMS_FILE).is_file():
        raise PlanError(
            f"{folder}: the sweep has not finished (no outcomes); run tts-eval sweep again with the same arguments"
        )
    rows = read_jsonl(folder / PROBLEMS_FILE, PlanError)
    ids = [r["id"] for r in rows]
    if ids != header["problems"]:
        raise PlanError(
            f"{folder / PROBLEMS_FILE}: its problems are not the sweep's; run tts-eval sweep again with the same arguments"
        )
    outcomes: dict[Config, tuple[list[float], list[float]]] = {}
    for row in read_jsonl(folder / OUTCOMES_FILE, PlanError):
        if len(row["accuracy"]) != len(ids):
            raise PlanError(
                f"{folder / OUTCOMES_FILE}: {len(row['accuracy'])} outcomes for {len(ids)} problems; re-run the sweep"
            )
        outcomes[Config(**row["config"])] = (row["accuracy"], row["flops"])
    return Sweep(
        folder=folder,
        task=header["task"],
        policy=header["policy"],
        policy_params=int(header["policy_params"]),
        prm=header["prm"],
        prm_params=int(header["prm_params"]),
        settings=SweepSettings.from_json(header["settings"]),
        ids=ids,
        pass_at_1=[r["pass_at_1"] for r in rows],
        samples=[r["samples"] for r in rows],
        tokens=[(r["policy_input_tokens"], r["policy_output_tokens"], r["prm_tokens"]) for r in rows],
        outcomes=outcomes,
    )


# -- options and choices ----------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """Something a plan can run for a bucket at budget N, with its per-problem outcomes."""

    config: Config
    accuracy: tuple[float, ...]
    flops: tuple[float, ...]


def single_options(sweep: Sweep, budget: int) -> list[Option]:
    """Every configuration within ``budget``, run alone."""
    return [Option(c, tuple(a), tuple(f)) for c, (a, f) in sweep.outcomes.items() if c.n <= budget]


def probed_options(sweep: Sweep, budget: int, k: int) -> list[Option]:
    """What the compute-optimal strategy can run after a k-solution probe within ``budget``,
    each with what the probe adds to its cost.

    Majority and Best-of-N keep the probe's solutions as their first k, so they add the rest
    request's prompt (when there is a rest) and, for majority, the PRM scores of the probe;
    beam search and DVTS add the whole probe."""
    options = []
    for config, (accuracy, flops) in sweep.outcomes.items():
        if get_strategy(config.strategy).independent_samples:
            if not k <= config.n <= budget:
                continue
            cost = [
                flops[i]
                + (sweep.prompt_flops(i) if config.n > k else 0.0)
                + (sweep.probe_flops(i, k)[1] if not get_strategy(config.strategy).needs_prm else 0.0)
                for i in range(len(sweep.ids))
            ]
        else:
            if config.n > budget - k:
                continue
            cost = [flops[i] + sum(sweep.probe_flops(i, k)) for i in range(len(sweep.ids))]
        options.append(Option(config, tuple(accuracy), tuple(cost)))
    return options


def best_option(options: Sequence[Option], problems: Sequence[int]) -> Option:
    """The option with the best mean accuracy on ``problems``; ties: fewer mean FLOPs, then
    the first listed."""

    def key(option: Option) -> tuple[float, float]:
        return _mean(option.accuracy[i] for i in problems), -_mean(option.flops[i] for i in problems)

    if not options:
        raise PlanError("no strategy of the sweep fits this budget; sweep smaller budgets or more strategies")
    best = options[0]
    best_key = key(best)
    for option in options[1:]:
        acc, neg_flops = key(option)
        if acc > best_key[0] + TIE or (abs(acc - best_key[0]) <= TIE and neg_flops > best_key[1]):
            best, best_key = option, (acc, neg_flops)
    return best


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else math.nan


# -- fitting one budget ---------------------------------------------------------------------


@dataclass
class FittedBudget:
    """A plan for one budget, fitted on some problems."""

    budget: int
    probe_n: int  # 0: no probe, one choice for every bucket
    difficulty: DifficultyModel | None
    choices: dict[str, Option]

    def outcome(self, sweep: Sweep, index: int) -> tuple[float, float, str | None]:
        """(accuracy, FLOPs, predicted bucket) of problem ``index`` under this plan."""
        if self.difficulty is None:
            option = self.choices[BUCKETS[0]]
            return option.accuracy[index], option.flops[index], None
        bucket = self.difficulty.bucket(sweep.probe(index, self.probe_n, self.difficulty.aggregation))
        option = self.choices[bucket]
        return option.accuracy[index], option.flops[index], bucket


def fit_estimate(sweep: Sweep, problems: Sequence[int], k: int) -> DifficultyModel:
    """The difficulty estimate from k-sample probes (several disjoint ones per problem), each
    fitted to the Pass@1 of the problem's other samples, for the aggregation whose estimate
    puts the most probes in their bucket."""
    best: DifficultyModel | None = None
    best_right = -1
    for aggregation in AGGREGATIONS:
        rows, targets = [], []
        for i in problems:
            chunks = min(MAX_PROBES_PER_PROBLEM, len(sweep.samples[i]) // k)
            for c in range(chunks):
                rows.append(sweep.probe(i, k, aggregation, start=c * k))
                targets.append(sweep.pass_at_1_besides(i, k, start=c * k))
        model = fit_difficulty_model(rows, targets, aggregation)
        right = sum(model.bucket(r) == bucket_of(t) for r, t in zip(rows, targets))
        if right > best_right:
            best, best_right = model, right
    assert best is not None  # the first aggregation tried beats -1
    return best


def fit_budget(sweep: Sweep, problems: Sequence[int], budget: int) -> FittedBudget:
    """Steps 1-4 of the module doc on ``problems``."""
    k = sweep.settings.probe_size(budget)
    single = best_option(single_options(sweep, budget), problems)
    uniform = FittedBudget(budget, 0, None, dict.fromkeys(BUCKETS, single))
    probed = probed_options(sweep, budget, k)
    if not probed:
        return uniform
    difficulty = fit_estimate(sweep, problems, k)
    members: dict[str, list[int]] = {b: [] for b in BUCKETS}
    for i in problems:
        members[difficulty.bucket(sweep.probe(i, k, difficulty.aggregation))].append(i)
    overall = best_option(probed, problems)
    choices = {b: best_option(probed, members[b]) if len(members[b]) >= MIN_BUCKET else overall for b in BUCKETS}
    bucketed = FittedBudget(budget, k, difficulty, choices)
    scored = [bucketed.outcome(sweep, i)[:2] for i in problems]
    bucketed_key = (_mean(a for a, _ in scored), -_mean(f for _, f in scored))
    single_key = (_mean(single.accuracy[i] for i in problems), -_mean(single.flops[i] for i in problems))
    if single_key[0] > bucketed_key[0] + TIE or (
        abs(single_key[0] - bucketed_key[0]) <= TIE and single_key[1] >= bucketed_key[1]
    ):
        return uniform
    return bucketed


# -- cross-validation ---------------------------------------------------------------------------


@dataclass
class BudgetReport:
    budget: int
    probe_n: int
    table: Scored  # the fitted table, cross-validated
    single: Scored  # the best single strategy within N, chosen on the same training folds
    bucket_accuracy: float  # held-out problems whose predicted bucket is their Pass@1's
    fitted: FittedBudget  # on all problems
    single_option: Option  # the best single strategy on all problems


@dataclass(frozen=True)
class Scored:
    """Mean accuracy and FLOPs per problem over held-out problems."""

    accuracy: float
    flops: float
    per_problem: tuple[float, ...] = ()  # each problem's accuracy when held out, in sweep order


def folds_of(count: int, folds: int, seed: int) -> list[list[int]]:
    if folds < 2:
        raise PlanError(f"cross-validation needs at least 2 folds, got {folds}")
    if count < folds:
        raise PlanError(f"{count} problems cannot be split into {folds} folds; sweep more problems or use fewer folds")
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return [sorted(order[f::folds]) for f in range(folds)]


def cross_validate(
    sweep: Sweep, fit: Callable[[list[int]], Callable[[int], tuple[float, float]]], folds: int = 5, seed: int = 0
) -> Scored:
    """``fit(train problems)`` returns a scorer of one problem, (accuracy, FLOPs); it is
    scored on every held-out fold in turn."""
    results: dict[int, tuple[float, float]] = {}
    for held_out in folds_of(len(sweep.ids), folds, seed):
        held = set(held_out)
        score = fit([i for i in range(len(sweep.ids)) if i not in held])
        results |= {i: score(i) for i in held_out}
    ordered = [results[i] for i in sorted(results)]
    return Scored(_mean(a for a, _ in ordered), _mean(f for _, f in ordered), tuple(a for a, _ in ordered))


def versus_single(report: BudgetReport) -> str:
    """The fitted table against the best single strategy, paired over the same held-out
    problems: the difference in points with its 95% interval, and the verdict."""
    from tts_eval.statistics import paired_difference, verdict

    difference = paired_difference(report.table.per_problem, report.single.per_problem)
    return (
        f"{verdict(difference)} ({100 * difference.estimate:+.1f} [{100 * difference.low:+.1f}, "
        f"{100 * difference.high:+.1f}] points)"
    )


def choose_among(options: Sequence[Option]) -> Callable[[list[int]], Callable[[int], tuple[float, float]]]:
    """A fit for :func:`cross_validate`: the best of ``options`` on the training problems."""

    def fit(train: list[int]) -> Callable[[int], tuple[float, float]]:
        best = best_option(options, train)
        return lambda i: (best.accuracy[i], best.flops[i])

    return fit


def predicted_buckets(sweep: Sweep, k: int, folds: int = 5, seed: int = 0) -> list[str]:
    """Each problem's bucket as the difficulty estimate predicts it from its first k samples,
    with the estimate fitted on the other folds."""
    buckets = [""] * len(sweep.ids)
    for held_out in folds_of(len(sweep.ids), folds, seed):
        held = set(held_out)
        model = fit_estimate(sweep, [i for i in range(len(sweep.ids)) if i not in held], k)
        for i in held_out:
            buckets[i] = model.bucket(sweep.probe(i, k, model.aggregation))
    return buckets


def evaluate_budget(sweep: Sweep, budget: int, folds: int = 5, seed: int = 0) -> BudgetReport:
    def fit_table(train: list[int]) -> Callable[[int], tuple[float, float]]:
        fitted = fit_budget(sweep, train, budget)
        return lambda i: fitted.outcome(sweep, i)[:2]

    singles = single_options(sweep, budget)
    predicted = predicted_buckets(sweep, sweep.settings.probe_size(budget), folds, seed)
    truth = [bucket_of(p) for p in sweep.pass_at_1]
    fitted = fit_budget(sweep, list(range(len(sweep.ids))), budget)
    return BudgetReport(
        budget=budget,
        probe_n=fitted.probe_n,
        table=cross_validate(sweep, fit_table, folds, seed),
        single=cross_validate(sweep, choose_among(singles), folds, seed),
        bucket_accuracy=_mean(p == t for p, t in zip(predicted, truth)),
        fitted=fitted,
        single_option=best_option(singles, list(range(len(sweep.ids)))),
    )


# -- tables ---------------------------------------------------------------------------------


def choice_of(option: Option) -> Choice:
    c = option.config
    # Validated, not constructed: the sweep's names are plain strings, the table's are Literals.
    return Choice.model_validate(
        {
            "strategy": c.strategy,
            "n": c.n,
            "beam_size": c.beam_size,
            "aggregation": None if c.voting == MAJORITY_VOTE else c.aggregation,
            "voting": None if not get_strategy(c.strategy).needs_prm else c.voting,
        }
    )


def budget_plan(sweep: Sweep, report: BudgetReport) -> BudgetPlan:
    fitted = report.fitted
    notes = {
        "sweep": str(sweep.folder),
        "problems": len(sweep.ids),
        "cv_accuracy": round(report.table.accuracy, 4),
        "cv_flops": float(f"{report.table.flops:.4g}"),
        "best_single": report.single_option.config.label(),
        "best_single_cv_accuracy": round(report.single.accuracy, 4),
        "vs_best_single": versus_single(report),
    }
    choices = {b: choice_of(fitted.choices[b]) for b in BUCKETS}
    return BudgetPlan(
        budget=report.budget,
        probe=Probe(n=max(fitted.probe_n, 1)) if fitted.difficulty is not None else None,
        difficulty=fitted.difficulty,
        notes=notes,
        **choices,
    )


@dataclass
class PlanResult:
    table: PolicyTable
    reports: dict[Path, list[BudgetReport]]


def plan_table(folders: Sequence[Path], *, name: str, folds: int = 5, seed: int = 0) -> PlanResult:
    """A table with one rule per sweep; rules of sweeps with the same PRM and task split the
    policy sizes at the geometric means between their policies."""
    sweeps = [read_sweep(f) for f in folders]
    keys: dict[tuple[str, str, str], Path] = {}
    for s in sweeps:
        key = (s.policy, s.prm, s.task)
        if key in keys:
            raise PlanError(f"{s.folder} and {keys[key]} sweep the same policy, PRM and task; give one of them")
        keys[key] = s.folder
    reports: dict[Path, list[BudgetReport]] = {}
    rules = []
    groups: dict[tuple[str, str], list[Sweep]] = {}
    for s in sweeps:
        groups.setdefault((s.prm, s.task), []).append(s)
    for (prm, task), group in groups.items():
        group.sort(key=lambda s: s.policy_params)
        edges = (
            [0.0] + [math.sqrt(a.policy_params * b.policy_params) for a, b in itertools.pairwise(group)] + [math.inf]
        )
        for s, low, high in zip(group, edges, edges[1:]):
            reports[s.folder] = [evaluate_budget(s, b, folds, seed) for b in s.settings.budgets]
            rules.append(
                Rule(
                    task=[task],
                    prm=[prm],
                    policy_params=ParamRange(min=low, max=high),
                    plans=[budget_plan(s, r) for r in reports[s.folder]],
                )
            )
    description = "Fitted by tts-eval plan on " + ", ".join(
        f"{s.policy} + {s.prm} on {s.task} ({len(s.ids)} problems)" for s in sweeps
    )
    return PlanResult(PolicyTable(name=name, description=description, rules=rules), reports)


def format_report(result: PlanResult) -> str:
    lines = []
    for folder, reports in result.reports.items():
        lines.append(f"{folder}: accuracy on held-out problems (cross-validated), mean FLOPs per problem")
        lines.append(
            f"  {'N':>4}  {'probe':>5}  {'table':>7}  {'FLOPs':>9}  {'best single':>11}  {'FLOPs':>9}  "
            f"{'buckets':>7}  {'table vs best single':<32}  best single strategy (all problems) / table choices (easy | medium | hard)"
        )
        for r in reports:
            if r.fitted.difficulty is None:
                choices = f"no probe: {r.fitted.choices[BUCKETS[0]].config.label()}"
            else:
                choices = " | ".join(r.fitted.choices[b].config.label() for b in BUCKETS)
            lines.append(
                f"  {r.budget:>4}  {r.probe_n:>5}  {r.table.accuracy:>7.3f}  {r.table.flops:>9.3g}  {r.single.accuracy:>11.3f}  "
                f"{r.single.flops:>9.3g}  {r.bucket_accuracy:>7.3f}  {versus_single(r):<32}  {r.single_option.config.label()} / {choices}"
            )
    lines.append("table: the fitted table; best single: the best strategy within N, chosen on the same training folds;")
    lines.append("table vs best single: the difference in accuracy on the same held-out problems, in points, with its")
    lines.append('95% paired bootstrap interval; "beats" only when the interval lies above zero.')
    lines.append(
        "buckets: share of problems whose bucket predicted from the probe (estimate fitted on the other folds)"
    )
    lines.append("is the bucket of their Pass@1 over all Best-of-N samples.")
    return "\n".join(lines)


# -- scoring a given table -------------------------------------------------------------------


def table_outcomes(
    sweep: Sweep, plan: ResolvedPlan, *, beam_size: int, aggregation: str, voting: str
) -> list[tuple[float, float, str | None]]:
    """Per problem (accuracy, FLOPs, predicted bucket or None) of running a table's ``plan``
    on the sweep's policy, PRM and task, read from the sweep's outcomes. ``beam_size``,
    ``aggregation`` and ``voting`` are the run's settings, for choices that leave them unset."""
    k = plan.probe_n
    found = probed_options(sweep, plan.budget, k) if k else single_options(sweep, plan.budget)
    options = {o.config: o for o in found}
    outcomes = []
    for i in range(len(sweep.ids)):
        bucket = plan.difficulty.bucket(sweep.probe(i, k, plan.difficulty.aggregation)) if k else None
        choice = plan.choices[bucket] if bucket else next(iter(plan.choices.values()))
        run = concrete(
            choice, budget=plan.budget, probe_n=k, beam_size=beam_size, aggregation=aggregation, voting=voting
        )
        assert run.voting is not None  # the run's voting fills a choice's gap
        config = Config(
            run.strategy, run.n, run.beam_size, None if run.voting == MAJORITY_VOTE else run.aggregation, run.voting
        )
        if config not in options:
            raise PlanError(
                f"{sweep.folder}: no outcomes for {config.label()}, which table '{plan.table}' runs; "
                "sweep that strategy, budget, aggregation and voting"
            )
        outcomes.append((options[config].accuracy[i], options[config].flops[i], bucket))
    return outcomes
