"""How numbers and setups are written in the tables (Markdown and HTML alike)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from leaderboard.rows import MEASURED, ORACLES, PUBLISHED, Row, Setup
from tts_eval.strategies import label as strategy_name

DASH = "—"


def policy_label(policy: str) -> str:
    """A local folder or a package path (``pkg://``) by its last part; a Hub id or served name as it is."""
    if policy.startswith(("/", "./", "../", "~", "pkg://")):
        return policy.rstrip("/").rsplit("/", 1)[-1]
    return policy


def strategy_label(setup: Setup) -> str:
    name = strategy_name(setup.strategy)
    if setup.beam_size is not None:
        name += f" (M={setup.beam_size})"
    return name


def voting_label(setup: Setup) -> str:
    if setup.voting is None:
        return DASH
    if setup.aggregation is not None:
        return f"{setup.voting} ({setup.aggregation})"
    return setup.voting


def source_label(row: Row) -> str:
    if row.kind == PUBLISHED:
        return f"published ({row.method})"
    parts = []
    for benchmark, score in row.scores.items():
        if score.kind == MEASURED:
            text = "measured"
        else:
            text = f"{score.method.replace('@k', f'@{row.setup.n}')} of N={score.source_n} run"
        parts.append((benchmark, text))
    texts = {t for _, t in parts}
    if len(texts) == 1:
        return texts.pop()
    return "; ".join(f"{b}: {t}" for b, t in parts)


def percent(value: float | None) -> str:
    """One decimal, halves rounded up as printed tables do (41.45 -> 41.5)."""
    if value is None:
        return DASH
    exact = Decimal(repr(round(100.0 * value, 9)))
    return str(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def with_interval(value: float | None, interval) -> str:
    """An accuracy in percent with its 95% interval: ``61.1 [56.0, 66.3]``."""
    if value is None or interval is None:
        return percent(value)
    return f"{percent(value)} [{percent(interval.low)}, {percent(interval.high)}]"


def points(interval) -> str:
    """A difference of accuracies in percentage points with its 95% interval: ``+4.2 [-0.9, +9.1]``."""
    return f"{signed(interval.estimate)} [{signed(interval.low)}, {signed(interval.high)}]"


def signed(value: float) -> str:
    text = percent(abs(value))
    return "0.0" if text == "0.0" else ("+" if value > 0 else "−") + text


def count(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def flops(value: float | None) -> str:
    """Three significant digits, always in powers of ten (``4.79e7``), so a column reads alike."""
    if value is None:
        return DASH
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def ratio(value: float | None) -> str:
    """A ratio of compute: ``0.41×``, ``12.3×``."""
    if value is None:
        return DASH
    return f"{value:.2f}×" if value < 10 else f"{value:.1f}×" if value < 100 else f"{value:.0f}×"


def parameters(value: float | None) -> str:
    if value is None:
        return DASH
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.0f}"


def n_label(setup: Setup) -> str:
    return DASH if setup.n is None else str(setup.n)


def prm_label(setup: Setup) -> str:
    return DASH if setup.prm is None else policy_label(setup.prm)


def is_oracle(row: Row) -> bool:
    return row.setup.voting in ORACLES
