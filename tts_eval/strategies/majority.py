"""Majority voting: N sampled solutions, the most frequent equivalent answer wins; no PRM."""

from tts_eval.strategies.base import Strategy
from tts_eval.strategies.names import MAJORITY
from tts_eval.strategies.registry import register
from tts_eval.strategies.sampling import make_sample_units

STRATEGY = register(
    Strategy(name=MAJORITY, make_units=make_sample_units, needs_prm=False, label="Majority", order=1, colour="#1f77b4")
)
