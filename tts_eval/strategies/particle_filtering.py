"""Particle filtering (Puri et al. 2025, arXiv 2502.01618): N particles, each a partial
solution, advanced one step per round and resampled in proportion to PRM-derived weights.

- Round r: every unfinished particle samples one next step (one sample each, seeded by the
  problem's seed, the round and the particle's slot); the PRM scores each new partial
  solution.
- Weight of a particle: ``softmax(logit(s) / pf_temperature)`` over the N particles, where
  ``s`` is the PRM's score of the particle's newest step (the PRM reads the whole partial
  solution, so the newest step's score is its judgement of the partial solution: the
  "model aggregation" of Puri et al., and what beam search ranks by). A score of 1 has an
  infinite log-odds: the particles that have one share all the weight.
- Finished particles are kept with the score of their last step: they take part in every
  later resampling like the others, and a finished particle drawn k times becomes k copies
  that sample nothing and are not scored again.
- While any particle is unfinished, the N particles are replaced by N draws from them
  (``resampling``: ``systematic``, one uniform offset and N evenly spaced points, so that
  particle i is drawn floor(N w_i) or ceil(N w_i) times; or ``multinomial``, N independent
  draws), with a generator seeded by the problem's seed and the round. After the round in
  which the last particle finishes (or reaches the step or token limit, which finishes it
  as it is) nothing is resampled: the N particles are the candidates.
- The final answer is the run's ``voting`` over the candidates with their weights taking
  the place of the aggregated scores: a candidate's weight is ``softmax(logit(a) /
  pf_temperature)`` with ``a`` its score by the run's ``aggregation`` (``last``, the
  default, gives the resampling weights). ``prm_max`` takes the heaviest particle,
  ``prm_vote`` the answer with the most weight (copies count once each), ``majority`` the
  answer held by most particles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logit

from tts_eval.scoring import aggregate
from tts_eval.seeding import derive_seed
from tts_eval.strategies.base import Expansion, SearchSettings, SearchUnit, Strategy, step_stops
from tts_eval.strategies.names import PARTICLE_FILTERING
from tts_eval.strategies.registry import register
from tts_eval.types import Problem, Trajectory
from tts_eval.voting import vote

RESAMPLINGS = ("systematic", "multinomial")  # the defaults live in SearchSettings


def particle_weights(scores: Sequence[float], temperature: float) -> np.ndarray:
    """Normalised weights ``softmax(logit(s) / temperature)`` of scores in [0, 1].

    NaN (a score the PRM could not read) weighs like 0. When some scores are 1, those
    particles share the weight equally; when every score is 0 (or NaN), all weigh alike.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        raise ValueError("particle_weights needs at least one score")
    if np.any((s < 0) | (s > 1)):
        raise ValueError(f"PRM scores must lie in [0, 1] to be weighed, got {s[(s < 0) | (s > 1)].tolist()}")
    with np.errstate(divide="ignore"):
        log_w = np.where(np.isnan(s), -np.inf, logit(s)) / temperature
    if np.isposinf(log_w).any():
        w = np.isposinf(log_w).astype(np.float64)
    elif np.isneginf(log_w).all():
        w = np.ones_like(log_w)
    else:
        w = np.exp(log_w - log_w.max())
    return w / w.sum()


def resample(weights: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``len(weights)`` particles drawn in proportion to ``weights``, ascending
    for systematic resampling, in draw order for multinomial."""
    n = len(weights)
    if how == "systematic":
        positions = (rng.random() + np.arange(n)) / n
        cumulative = np.cumsum(weights)
        cumulative /= cumulative[-1]  # exactly 1 at the end, so no position falls past it
        return np.searchsorted(cumulative, positions, side="right")
    if how == "multinomial":
        return rng.choice(n, size=n, p=weights)
    raise ValueError(f"unknown resampling {how!r}; choose one of {', '.join(RESAMPLINGS)}")


@dataclass
class ParticleUnit(SearchUnit):
    depth: int = 0
    particles: list[Trajectory] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.particles = [Trajectory(steps=[]) for _ in range(self.settings.n)]

    def _open(self) -> list[int]:
        """Slots of the particles still to be extended."""
        return [i for i, p in enumerate(self.particles) if not p.finished]

    def expansions(self) -> list[Expansion]:
        s = self.settings
        return [
            Expansion(
                self.particles[i],
                1,
                min(s.max_step_tokens, s.max_tokens - self.particles[i].num_tokens),
                step_stops(s),
                derive_seed(self.seed, self.depth, i),
                dedupe=False,
            )
            for i in self._open()
        ]

    def receive(self, children: list[list[Trajectory]]) -> None:
        s = self.settings
        self.depth += 1
        for i, (child,) in zip(self._open(), children):
            if self.depth >= s.max_steps or child.num_tokens >= s.max_tokens:
                child.finished = True  # at the limit: a candidate as it is
            self.particles[i] = child
        if all(p.finished for p in self.particles):
            self.results = list(self.particles)
            self.done = True
            return
        weights = particle_weights([_newest(p) for p in self.particles], self.settings.pf_temperature)
        rng = np.random.default_rng(derive_seed(self.seed, "resample", self.depth))
        # Copies may share one Trajectory: nothing changes a trajectory once it is scored.
        self.particles = [self.particles[i] for i in resample(weights, self.settings.resampling, rng)]

    def choose(self, candidates: Sequence[Trajectory], voting: str, aggregation: str) -> int:
        return vote_particles(candidates, voting, aggregation, self.settings.pf_temperature)


def vote_particles(candidates: Sequence[Trajectory], voting: str, aggregation: str, temperature: float) -> int:
    """The index of the winning particle: ``voting`` with the particles' weights (from
    their scores by ``aggregation``) in place of the aggregated scores."""
    weights = particle_weights([aggregate(c.step_scores, aggregation) for c in candidates], temperature)
    return vote(candidates, voting, aggregation, weights=weights.tolist())


def _newest(trajectory: Trajectory) -> float:
    return trajectory.step_scores[-1] if trajectory.step_scores else math.nan


def make_units(problem: Problem, settings: SearchSettings, seed: int) -> list[SearchUnit]:
    return [ParticleUnit(problem, settings, seed)]


STRATEGY = register(
    Strategy(
        name=PARTICLE_FILTERING,
        make_units=make_units,
        needs_prm=True,
        label="Particle filtering",
        order=5,
        candidate="particle",
        colour="#17becf",
        options=("pf_temperature", "resampling"),
    )
)
