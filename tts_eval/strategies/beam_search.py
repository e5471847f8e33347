"""PRM-guided beam search over steps.

K = N / M beams. The first step samples N candidates; then every unfinished kept beam
samples M children. All new candidates are scored and ranked by their newest step's score;
the best K - R are kept (R: results already set aside). A kept candidate that is finished
is set aside as a result; at the step or token limit the kept unfinished beams become
results. The search ends when K results exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tts_eval.scoring import rank_key
from tts_eval.seeding import derive_seed
from tts_eval.strategies.base import Expansion, SearchUnit, Strategy, step_stops
from tts_eval.strategies.names import BEAM_SEARCH
from tts_eval.strategies.registry import register
from tts_eval.types import Problem, Trajectory


@dataclass
class BeamUnit(SearchUnit):
    root_width: int = 1  # candidates sampled for the first step
    child_width: int = 1  # children sampled per kept beam afterwards (M)
    keep: int = 1  # K: beams kept, and results wanted
    depth: int = 0
    active: list[Trajectory] = field(default_factory=list)

    def expansions(self) -> list[Expansion]:
        s = self.settings
        parents = self.active if self.depth else [Trajectory(steps=[])]
        width = self.child_width if self.depth else self.root_width
        return [
            Expansion(
                parent,
                width,
                min(s.max_step_tokens, s.max_tokens - parent.num_tokens),
                step_stops(s),
                derive_seed(self.seed, self.depth, i),
                dedupe=True,
            )
            for i, parent in enumerate(parents)
        ]

    def receive(self, children: list[list[Trajectory]]) -> None:
        s = self.settings
        self.depth += 1
        candidates = [child for group in children for child in group]
        # sorted() is stable, so equal scores keep generation order.
        ranked = sorted(candidates, key=lambda c: rank_key(_newest_score(c)), reverse=True)
        self.active = []
        for candidate in ranked[: self.keep - len(self.results)]:
            at_limit = self.depth >= s.max_steps or candidate.num_tokens >= s.max_tokens
            if candidate.finished or at_limit:
                self.results.append(candidate)
            else:
                self.active.append(candidate)
        self.done = len(self.results) >= self.keep or not self.active


def _newest_score(trajectory: Trajectory) -> float:
    return trajectory.step_scores[-1] if trajectory.step_scores else math.nan


def make_units(problem: Problem, settings, seed: int) -> list[SearchUnit]:
    m = settings.beam_size
    return [BeamUnit(problem, settings, seed, root_width=settings.n, child_width=m, keep=settings.n // m)]


STRATEGY = register(
    Strategy(
        name=BEAM_SEARCH,
        make_units=make_units,
        needs_prm=True,
        label="Beam search",
        order=3,
        candidate="beam",
        tree=True,
        colour="#9467bd",
    )
)
