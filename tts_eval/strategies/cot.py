"""Chain of thought: one greedy solution (temperature 0 unless set), no PRM."""

from tts_eval.strategies.base import Strategy
from tts_eval.strategies.names import COT
from tts_eval.strategies.registry import register
from tts_eval.strategies.sampling import make_sample_units

STRATEGY = register(
    Strategy(
        name=COT,
        make_units=make_sample_units,
        needs_prm=False,
        label="CoT",
        order=0,
        greedy=True,
        single_sample=True,
        colour="#7f7f7f",
    )
)
