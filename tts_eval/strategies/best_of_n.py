"""Best-of-N: N sampled solutions, each scored step by step by the PRM, then voted on."""

from tts_eval.strategies.base import Strategy
from tts_eval.strategies.sampling import make_sample_units

STRATEGY = Strategy(name="best_of_n", make_units=make_sample_units, needs_prm=True)
