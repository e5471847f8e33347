"""The strategy registry: every package asks it for a strategy's traits instead of naming
strategies. A strategy registers itself once, in its own module."""

from __future__ import annotations

from tts_eval.strategies.base import Strategy

# name -> strategy, in table order (``Strategy.order``, then registration).
STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Add ``strategy`` to the registry (a module calls this once, at import); returns it."""
    held = STRATEGIES.get(strategy.name)
    if held is not None and held is not strategy:
        raise ValueError(f"a strategy named {strategy.name!r} is already registered; choose another name")
    STRATEGIES[strategy.name] = strategy
    ordered = sorted(STRATEGIES.values(), key=lambda s: s.order)  # stable: equal orders keep registration order
    STRATEGIES.clear()
    STRATEGIES.update((s.name, s) for s in ordered)
    return strategy


def unregister(name: str) -> None:
    """Remove a registered strategy (a test's or a plugin's)."""
    STRATEGIES.pop(name, None)


def get_strategy(name: str) -> Strategy:
    """The registered strategy ``name``; a ValueError lists the known ones."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}") from None


def traits(name: str) -> Strategy | None:
    """The registered strategy ``name``, or None for a name the registry does not know (a
    published row's, or a plugin's that is not imported): callers treat it as a plain one."""
    return STRATEGIES.get(name)


def is_baseline(name: str) -> bool:
    """A single-sample strategy (CoT): what TTS runs are compared against."""
    found = STRATEGIES.get(name)
    return found is not None and found.single_sample


def label(name: str) -> str:
    """How tables and plots name a strategy (an unknown one by its name)."""
    found = STRATEGIES.get(name)
    return found.label if found is not None else name


def table_order(name: str) -> int:
    """Sort key of a strategy in tables: registered ones by their order, unknown ones last."""
    found = STRATEGIES.get(name)
    return found.order if found is not None else len(STRATEGIES) + 1_000


def picks_strategies(name: str) -> bool:
    """A strategy that runs another strategy per problem (compute-optimal): compared with
    the single strategies it chooses from."""
    found = STRATEGIES.get(name)
    return found is not None and found.candidate == "choice"
