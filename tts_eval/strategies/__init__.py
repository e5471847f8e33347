"""The search strategies, one module each; each registers itself in the registry."""

# Importing a strategy's module registers it.
from tts_eval.strategies import (  # noqa: F401
    beam_search,
    best_of_n,
    compute_optimal,
    cot,
    dvts,
    majority,
    particle_filtering,
)
from tts_eval.strategies.base import SearchSettings, SearchUnit, Strategy
from tts_eval.strategies.registry import (
    STRATEGIES,
    get_strategy,
    is_baseline,
    label,
    picks_strategies,
    register,
    table_order,
    traits,
    unregister,
)

__all__ = [
    "STRATEGIES",
    "SearchSettings",
    "SearchUnit",
    "Strategy",
    "get_strategy",
    "is_baseline",
    "label",
    "picks_strategies",
    "register",
    "table_order",
    "traits",
    "unregister",
]
