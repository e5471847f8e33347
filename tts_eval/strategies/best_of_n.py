"""Best-of-N: N sampled solutions, each scored step by step by the PRM, then voted on."""

from tts_eval.strategies.base import Strategy
from tts_eval.strategies.names import BEST_OF_N
from tts_eval.strategies.registry import register
from tts_eval.strategies.sampling import make_sample_units

STRATEGY = register(
    Strategy(name=BEST_OF_N, make_units=make_sample_units, needs_prm=True, label="Best-of-N", order=2, colour="#2ca02c")
)
