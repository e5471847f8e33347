"""Compute-optimal test-time scaling: per problem, the strategy a policy table gives for the
problem's estimated difficulty, within the budget N.

Each problem's unit first samples a probe of k whole solutions (k from the table, e.g.
N / 4), scored by the PRM. From their answer agreement and PRM scores it predicts the
policy's Pass@1 on the problem, maps it to easy / medium / hard, and then runs that bucket's
choice from the table, forwarding the choice's own units' requests to the engine:

- majority / Best-of-N: the probe's solutions are the first of the choice's solutions (they
  are drawn exactly as those strategies draw theirs), so the choice samples only the rest;
- beam search / DVTS: a tree search with the N - k candidates per step the probe leaves
  (rounded down to a multiple of the beam size, or one beam of width N - k when fewer are
  left); particle filtering: N - k particles (at the run's pf_temperature and resampling
  defaults); the probe's solutions are not candidates.

The final vote uses the choice's voting and aggregation (the run's where the table leaves
them unset; majority always votes by answer counts). The probe goes through the engine, so
its tokens are counted in the problem's ``Usage``. When every bucket of the plan makes the
same choice no probe is drawn, and the choice runs as that strategy alone would.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass, field

from tts_eval.compute_optimal.difficulty import probe_features
from tts_eval.compute_optimal.table import Choice, ResolvedPlan, concrete, load_table
from tts_eval.seeding import derive_seed
from tts_eval.strategies.base import Expansion, SearchSettings, SearchUnit, Strategy
from tts_eval.strategies.names import COMPUTE_OPTIMAL
from tts_eval.strategies.registry import register
from tts_eval.types import Problem, Trajectory

logger = logging.getLogger(__name__)


@dataclass
class ComputeOptimalUnit(SearchUnit):
    plan: ResolvedPlan = field(kw_only=True)  # after the base class's fields with defaults
    probe: list[Trajectory] = field(default_factory=list)
    estimate: float | None = None  # predicted Pass@1 (None without a probe)
    bucket: str | None = None  # None without a probe
    choice: Choice | None = None
    parts: list[SearchUnit] = field(default_factory=list)  # the choice's own units
    _kept: list[Trajectory] = field(default_factory=list)  # probe solutions that are candidates
    _scored: bool = True
    _voting: str | None = None
    _aggregation: str | None = None
    _asked: list[tuple[SearchUnit, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.plan.probe_n == 0:
            (self.choice,) = set(self.plan.choices.values())
            self._start()

    def expansions(self) -> list[Expansion]:
        if self.choice is None:
            s = self.settings
            # Seeded like a Best-of-N unit: the probe is what Best-of-N would sample first.
            return [Expansion(Trajectory(steps=[]), self.plan.probe_n, s.max_tokens, s.stop, self.seed, dedupe=False)]
        requests: list[Expansion] = []
        self._asked = []
        for part in self.parts:
            if part.done:
                continue
            asked = part.expansions()
            if not self._scored:
                asked = [dataclasses.replace(e, scored=False) for e in asked]
            self._asked.append((part, len(asked)))
            requests += asked
        return requests

    def receive(self, children: list[list[Trajectory]]) -> None:
        if self.choice is None:
            (self.probe,) = children
            difficulty = self.plan.difficulty
            assert difficulty is not None  # a plan with a probe has a difficulty estimate
            found = probe_features(self.probe, difficulty.aggregation)
            self.estimate = difficulty.predict(found)
            self.bucket = difficulty.bucket(found)
            self.choice = self.plan.choices[self.bucket]
            self._start()
        else:
            start = 0
            for part, count in self._asked:
                part.receive(children[start : start + count])
                start += count
        self._finish()

    def vote_settings(self, voting: str, aggregation: str) -> tuple[str, str]:
        return self._voting or voting, self._aggregation or aggregation

    def choose(self, candidates: list[Trajectory], voting: str, aggregation: str) -> int:
        if len(self.parts) == 1 and not self._kept:  # the choice's own vote (particle filtering weighs)
            return self.parts[0].choose(candidates, *self.vote_settings(voting, aggregation))
        return super().choose(candidates, voting, aggregation)

    def _start(self) -> None:
        """Build the choice's units for what the budget leaves after the probe."""
        from tts_eval.strategies import STRATEGIES

        s = self.settings
        probed = len(self.probe)
        assert self.choice is not None  # chosen before the units start
        run = concrete(self.choice, budget=self.plan.budget, probe_n=probed, beam_size=s.beam_size)
        spec = STRATEGIES[run.strategy]
        self._kept = list(self.probe) if run.keeps_probe else []
        if run.new_samples:
            sub_settings = dataclasses.replace(s, n=run.new_samples, beam_size=run.beam_size or s.beam_size)
            # Without a probe the choice runs exactly as that strategy alone would.
            seed = self.seed if not probed else derive_seed(self.seed, "choice", run.strategy)
            self.parts = spec.make_units(self.problem, sub_settings, seed)
        self._scored = spec.needs_prm
        self._voting = run.voting  # None: the run's (vote_settings)
        self._aggregation = run.aggregation

    def _finish(self) -> None:
        if self.choice is not None and all(part.done for part in self.parts):
            self.results = self._kept + [t for part in self.parts for t in part.results]
            self.done = True


def make_units(problem: Problem, settings: SearchSettings, seed: int, *, plan: ResolvedPlan) -> list[SearchUnit]:
    return [ComputeOptimalUnit(problem, settings, seed, plan=plan)]


def bind(*, policy, prm, table, task: str | None, settings: SearchSettings):
    """make_units for the problems of ``task``: the table's plan for this policy, PRM and N."""
    loaded = load_table(table)
    plan = loaded.resolve(policy_params=policy.num_parameters, prm_name=prm.name, task=task, budget=settings.n)
    logger.info(
        "compute_optimal: table %s, rule %d, plan for budget %d (n=%d), probe %d: %s",
        plan.table,
        plan.rule,
        plan.plan_budget,
        plan.budget,
        plan.probe_n,
        ", ".join(f"{b}: {c.label()}" for b, c in plan.choices.items()),
    )
    return functools.partial(make_units, plan=plan)


def _unbound(problem: Problem, settings: SearchSettings, seed: int) -> list[SearchUnit]:
    raise RuntimeError("compute_optimal units depend on the policy, PRM and table: build them through bind()")


STRATEGY = register(
    Strategy(
        name=COMPUTE_OPTIMAL,
        make_units=_unbound,
        needs_prm=True,
        label="Compute-optimal TTS",
        order=6,
        candidate="choice",
        colour="#ff7f0e",
        options=("table",),
        bind=bind,
    )
)
