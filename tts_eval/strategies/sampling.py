"""Whole solutions sampled in one request: the unit behind CoT, majority and Best-of-N."""

from __future__ import annotations

from tts_eval.strategies.base import Expansion, SearchUnit
from tts_eval.types import Trajectory


class SampleUnit(SearchUnit):
    """Samples ``settings.n`` independent whole solutions; they are all candidates."""

    def expansions(self) -> list[Expansion]:
        s = self.settings
        return [Expansion(Trajectory(steps=[]), s.n, s.max_tokens, s.stop, self.seed, dedupe=False)]

    def receive(self, children: list[list[Trajectory]]) -> None:
        (self.results,) = children
        self.done = True


def make_sample_units(problem, settings, seed) -> list[SearchUnit]:
    return [SampleUnit(problem, settings, seed)]
