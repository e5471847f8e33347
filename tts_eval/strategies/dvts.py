"""Diverse verifier tree search: N / M independent subtrees, each a beam search that keeps
one beam (its root samples M first steps, the best is kept and samples M children, ...).
Each subtree gives one result; the N / M results are the candidates."""

from __future__ import annotations

from tts_eval.seeding import derive_seed
from tts_eval.strategies.base import SearchUnit, Strategy
from tts_eval.strategies.beam_search import BeamUnit
from tts_eval.strategies.names import DVTS
from tts_eval.strategies.registry import register
from tts_eval.types import Problem


def make_units(problem: Problem, settings, seed: int) -> list[SearchUnit]:
    m = settings.beam_size
    return [
        BeamUnit(problem, settings, derive_seed(seed, "subtree", k), root_width=m, child_width=m, keep=1)
        for k in range(settings.n // m)
    ]


STRATEGY = register(
    Strategy(
        name=DVTS,
        make_units=make_units,
        needs_prm=True,
        label="DVTS",
        order=4,
        candidate="subtree",
        tree=True,
        colour="#d62728",
    )
)
