"""Chain of thought: one greedy solution (temperature 0 unless set), no PRM."""

from tts_eval.strategies.base import Strategy
from tts_eval.strategies.sampling import make_sample_units

STRATEGY = Strategy(name="cot", make_units=make_sample_units, needs_prm=False, greedy=True)
