"""The search strategies, one module each."""

from tts_eval.strategies import beam_search, best_of_n, compute_optimal, cot, dvts, majority, particle_filtering
from tts_eval.strategies.base import SearchSettings, SearchUnit, Strategy

STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        cot.STRATEGY, majority.STRATEGY, best_of_n.STRATEGY, beam_search.STRATEGY, dvts.STRATEGY, particle_filtering.STRATEGY,
        compute_optimal.STRATEGY,
    )
}

__all__ = ["STRATEGIES", "SearchSettings", "SearchUnit", "Strategy"]
