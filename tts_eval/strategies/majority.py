"""Majority voting: N sampled solutions, the most frequent equivalent answer wins; no PRM."""

from tts_eval.strategies.base import Strategy
from tts_eval.strategies.sampling import make_sample_units

STRATEGY = Strategy(name="majority", make_units=make_sample_units, needs_prm=False)
