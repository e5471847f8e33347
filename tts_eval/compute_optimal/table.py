"""Compute-optimal policy tables: which strategy to run for a problem of a given difficulty,
for a policy size range, a PRM, a task and a budget.

A table is a YAML file (``yaml_configs/compute_optimal/<name>.yaml``, or any path)::

    name: paper
    probe: {fraction: 0.25, min: 2}          # probe solutions drawn to estimate difficulty
    difficulty: {bias: 0, agreement: 0.5, prm: 0.5, aggregation: last}
    rules:                                   # the first rule that matches is used
      - task: ["*math500*"]                  # glob patterns on the task name (case-insensitive)
        prm: ["*"]                           # glob patterns on the PRM's name
        policy_params: {min: 0, max: 7.0e9}  # [min, max) parameters of the policy
        plans:                               # by budget: the largest budget <= N is used
          - budget: 1
            easy:   {strategy: beam_search}
            medium: {strategy: beam_search}
            hard:   {strategy: beam_search, n: 16, beam_size: 4, aggregation: min, voting: prm_vote}

A choice's unset fields take the run's settings (``beam_size``, ``aggregation``, ``voting``)
and the whole budget the probe leaves (``n``). A plan may set its own ``probe`` and
``difficulty``; otherwise the table's apply. See docs/compute-optimal.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from tts_eval.compute_optimal.difficulty import BUCKETS, DifficultyModel
from tts_eval.scoring import Aggregation
from tts_eval.strategies.registry import STRATEGIES
from tts_eval.validation import describe_errors
from tts_eval.voting import MAJORITY_VOTE, Voting

DEFAULT_TABLE = "paper"
TABLES_FOLDER = "compute_optimal"


class TableError(ValueError):
    """A policy table is unusable, or has no rule for a run; the message names the file,
    the field and what to do."""


class Choice(BaseModel):
    """What to run for one difficulty bucket."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str = Field(description="A strategy a table may choose (Strategy.table_choice)")
    n: int | None = Field(
        default=None,
        ge=1,
        description="Budget of the choice (majority / best_of_n: solutions, the probe's included); "
        "default: all the budget leaves",
    )
    beam_size: int | None = Field(default=None, ge=1, description="Beam size M (beam_search, dvts); default: the run's")
    aggregation: Aggregation | None = Field(default=None, description="Default: the run's")
    voting: Voting | None = Field(default=None, description="Default: the run's")

    @field_validator("strategy")
    @classmethod
    def _choosable(cls, value: str) -> str:
        choosable = choice_strategies()
        if value not in choosable:  # worded as pydantic words a Literal's error
            expected = " or ".join([", ".join(map(repr, choosable[:-1])), repr(choosable[-1])])
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Choice:
        spec = STRATEGIES[self.strategy]
        if not spec.needs_prm and self.voting not in (None, MAJORITY_VOTE):
            scorer = " or ".join(
                s.name for s in STRATEGIES.values() if s.table_choice and s.independent_samples and s.needs_prm
            )
            raise ValueError(
                f"strategy {self.strategy} votes by answer counts; drop voting={self.voting} or use {scorer}"
            )
        if not spec.tree and self.beam_size is not None:
            trees = " and ".join(s.name for s in STRATEGIES.values() if s.table_choice and s.tree)
            raise ValueError(f"beam_size is only for {trees}, not {self.strategy}")
        if spec.tree and self.n is not None and self.beam_size is not None and self.n % self.beam_size:
            raise ValueError(f"n={self.n} must be a multiple of beam_size={self.beam_size}")
        return self

    def label(self) -> str:
        parts: list[str] = [self.strategy]
        parts += [f"n={self.n}"] if self.n is not None else []
        parts += [f"M={self.beam_size}"] if self.beam_size is not None else []
        parts += [x for x in (self.aggregation, self.voting) if x is not None]
        return " ".join(parts)


class Probe(BaseModel):
    """How many whole solutions the probe samples at budget N: ``n``, or
    ``max(min, floor(fraction * N))``; never more than N."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int | None = Field(default=None, ge=1)
    fraction: float | None = Field(default=None, gt=0, le=1)
    min: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _one_rule(self) -> Probe:
        if (self.n is None) == (self.fraction is None):
            raise ValueError("give exactly one of n (a fixed count) and fraction (a share of the budget)")
        return self

    def size(self, budget: int) -> int:
        if self.n is not None:
            return min(self.n, budget)
        assert self.fraction is not None  # _one_rule: exactly one of n and fraction
        return min(max(self.min, math.floor(self.fraction * budget)), budget)


class BudgetPlan(BaseModel):
    """The choices for budgets from ``budget`` up to the next plan's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget: int = Field(ge=1)
    probe: Probe | None = None
    difficulty: DifficultyModel | None = None
    easy: Choice
    medium: Choice
    hard: Choice
    notes: dict[str, Any] | None = Field(
        default=None, description="What the plan was fitted on (not read by the search)"
    )

    @model_validator(mode="after")
    def _within_budget(self) -> BudgetPlan:
        for bucket in BUCKETS:
            choice: Choice = getattr(self, bucket)
            if choice.n is not None and choice.n > self.budget:
                raise ValueError(f"{bucket}: n={choice.n} exceeds the plan's budget {self.budget}")
        return self

    def choices(self) -> dict[str, Choice]:
        return {b: getattr(self, b) for b in BUCKETS}


class ParamRange(BaseModel):
    """Policy parameters in [min, max)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float = Field(default=0.0, ge=0)
    max: float = math.inf

    @model_validator(mode="after")
    def _ordered(self) -> ParamRange:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        return self

    def contains(self, params: float) -> bool:
        return self.min <= params < self.max


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task: list[str] = Field(default=["*"], min_length=1, description="Glob patterns on the task name")
    prm: list[str] = Field(default=["*"], min_length=1, description="Glob patterns on the PRM's name")
    policy_params: ParamRange = ParamRange()
    plans: list[BudgetPlan] = Field(min_length=1)

    _lists = field_validator("task", "prm", mode="before")(_as_list)

    @model_validator(mode="after")
    def _distinct_budgets(self) -> Rule:
        budgets = [p.budget for p in self.plans]
        if len(set(budgets)) != len(budgets):
            raise ValueError(f"plans repeat a budget ({budgets}); give each budget once")
        return self

    def matches(self, policy_params: float, prm_name: str, task: str | None) -> bool:
        return (
            self.policy_params.contains(policy_params)
            and _matches_any(prm_name, self.prm)
            and ("*" in self.task if task is None else _matches_any(task, self.task))
        )

    def plan_for(self, budget: int) -> BudgetPlan | None:
        fitting = [p for p in self.plans if p.budget <= budget]
        return max(fitting, key=lambda p: p.budget) if fitting else None

    def describe(self) -> str:
        high = "inf" if math.isinf(self.policy_params.max) else f"{self.policy_params.max:.3g}"
        return (
            f"task {self.task}, PRM {self.prm}, policy parameters [{self.policy_params.min:.3g}, {high}), "
            f"budgets {sorted(p.budget for p in self.plans)}"
        )


def _matches_any(name: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(name.lower(), pattern.lower()) for pattern in patterns)


class PolicyTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    probe: Probe = Probe(fraction=0.25, min=2)
    difficulty: DifficultyModel = DifficultyModel()
    rules: list[Rule] = Field(min_length=1)
    source: str | None = Field(default=None, exclude=True, description="The file it was read from")

    def resolve(self, *, policy_params: float, prm_name: str, task: str | None, budget: int) -> ResolvedPlan:
        """The plan for a run: the first matching rule, its plan for ``budget``, the probe
        size (0 when every bucket makes the same choice: then nothing needs estimating)."""
        where = f"policy table '{self.name}'" + (f" ({self.source})" if self.source else "")
        for index, rule in enumerate(self.rules):
            if rule.matches(policy_params, prm_name, task):
                plan = rule.plan_for(budget)
                if plan is None:
                    raise TableError(
                        f"{where}: rule {index} ({rule.describe()}) has no plan for budget n={budget}; "
                        f"use n >= {min(p.budget for p in rule.plans)} or add a plan with a smaller budget"
                    )
                choices = plan.choices()
                same = len(set(choices.values())) == 1
                probe = plan.probe or self.probe
                return ResolvedPlan(
                    table=self.name,
                    rule=index,
                    budget=budget,
                    plan_budget=plan.budget,
                    probe_n=0 if same else probe.size(budget),
                    difficulty=plan.difficulty or self.difficulty,
                    choices=choices,
                )
        covered = "; ".join(f"rule {i}: {r.describe()}" for i, r in enumerate(self.rules))
        task_text = "no task name (pass task=)" if task is None else f"task '{task}'"
        raise TableError(
            f"{where} has no rule for a policy of {policy_params:.4g} parameters, PRM '{prm_name}' and {task_text}. "
            f"Its rules: {covered}. Add a rule for this setup, or pass another table (table=)"
        )

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        return yaml.safe_dump(_finite(data), sort_keys=False, allow_unicode=True, width=100)


def _finite(value: Any) -> Any:
    """YAML-ready data: infinite bounds are left out (their default)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items() if not (isinstance(v, float) and math.isinf(v))}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


@dataclass(frozen=True)
class ResolvedPlan:
    """A table's answer for one policy, PRM, task and budget N."""

    table: str
    rule: int
    budget: int  # the run's N
    plan_budget: int  # the budget of the plan used (the largest <= N)
    probe_n: int  # probe solutions; 0 when every bucket makes the same choice
    difficulty: DifficultyModel
    choices: dict[str, Choice]


@dataclass(frozen=True)
class ConcreteChoice:
    """What a choice runs for a problem at budget N after a probe of k solutions."""

    strategy: str
    n: int  # majority / Best-of-N: solutions in all, the probe's included; tree: candidates per step
    beam_size: int | None  # tree searches only
    aggregation: str | None  # None: the run's
    voting: str | None  # None: the run's
    keeps_probe: bool  # the probe's solutions are candidates
    new_samples: int  # what the choice samples itself (0: nothing, the probe's solutions are all)


def concrete(
    choice: Choice,
    *,
    budget: int,
    probe_n: int,
    beam_size: int,
    aggregation: str | None = None,
    voting: str | None = None,
) -> ConcreteChoice:
    """The settings a choice runs with, within ``budget`` after a ``probe_n``-solution probe:

    - majority / Best-of-N: ``choice.n`` (default N) solutions in all, of which the probe's
      are the first (so at least ``probe_n``);
    - beam search / DVTS: ``choice.n`` (default: what the probe leaves) candidates per step,
      at most N - ``probe_n``, fitted to the beam size (:func:`fit_tree`); particle filtering:
      that many particles. When the probe took the whole budget, nothing more is run and the
      probe's solutions are the candidates.

    Unset fields take the run's ``beam_size``, ``aggregation`` and ``voting`` (None: left to
    the run); majority always votes by answer counts."""
    spec = STRATEGIES[choice.strategy]
    vote_by = MAJORITY_VOTE if not spec.needs_prm else choice.voting or voting
    aggregate_by = choice.aggregation or aggregation
    if spec.independent_samples:
        total = max(choice.n or budget, probe_n)
        return ConcreteChoice(choice.strategy, total, None, aggregate_by, vote_by, True, total - probe_n)
    left = min(choice.n or budget - probe_n, budget - probe_n)
    if left < 1:
        return ConcreteChoice(choice.strategy, 0, None, aggregate_by, vote_by, True, 0)
    if not spec.tree:
        return ConcreteChoice(choice.strategy, left, None, aggregate_by, vote_by, False, left)
    n, m = fit_tree(left, choice.beam_size or beam_size)
    return ConcreteChoice(choice.strategy, n, m, aggregate_by, vote_by, False, n)


def choice_strategies() -> tuple[str, ...]:
    """The strategies a table may choose, in table order."""
    return tuple(name for name, spec in STRATEGIES.items() if spec.table_choice)


def fit_tree(n: int, beam_size: int) -> tuple[int, int]:
    """A tree search's (n, beam size) within ``n`` candidates per step: ``n`` rounded down to
    a multiple of ``beam_size``, or one beam of width ``n`` when ``n < beam_size``."""
    if n < 1:
        raise ValueError(f"a tree search needs at least one candidate per step, got n={n}")
    if n < beam_size:
        return n, n
    return n - n % beam_size, beam_size


# -- files --------------------------------------------------------------------------------


def tables_dir() -> Path:
    from tts_eval.resources import resource_dir

    return resource_dir("yaml_configs") / TABLES_FOLDER


def list_tables() -> list[str]:
    """The names of the shipped tables."""
    return sorted(p.stem for p in tables_dir().glob("*.yaml"))


def find_table_file(name_or_path: str | Path) -> Path:
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml") or path.parent != Path("."):
        if not path.is_file():
            raise TableError(
                f"{path}: no such policy table file; give an existing YAML path or one of {', '.join(list_tables())}"
            )
        return path
    shipped = tables_dir() / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise TableError(
            f"unknown policy table {str(name_or_path)!r}: not one of the shipped tables ({', '.join(list_tables())}) "
            f"in {tables_dir()}, nor a YAML path"
        )
    return shipped


def load_table(table: str | Path | PolicyTable | None = None) -> PolicyTable:
    """A policy table: a loaded one as is, a shipped name, a YAML path, or (None) the paper's."""
    if isinstance(table, PolicyTable):
        return table
    path = find_table_file(DEFAULT_TABLE if table is None else table)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise TableError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise TableError(
            f"{path}: a policy table is a YAML mapping with name, rules, ... (see docs/compute-optimal.md)"
        )
    try:
        return PolicyTable.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        problems = describe_errors(exc)
        raise TableError(f"{path}: {problems} (see docs/compute-optimal.md for the format)") from None
