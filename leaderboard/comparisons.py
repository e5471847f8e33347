"""Paired comparisons between leaderboard rows measured on the same problems.

Three kinds, per benchmark:

- ``small TTS vs large CoT``: each policy's best TTS row against the CoT row of every larger
  (or unknown-size) policy, the paper's Figure 1;
- ``strategy vs strategy``: at each policy and budget N, the best row of the leading strategy
  against the best row of every other strategy;
- ``compute-optimal vs best strategy``: each compute-optimal row against the best single
  strategy of the same policy at the same N.

pass@k rows (an oracle) and published figures (no per-problem outcomes) take no part. Each
comparison is a paired bootstrap over the problems both rows have (``tts_eval.statistics``).
"""

from __future__ import annotations

from dataclasses import dataclass

from leaderboard import formatting as fmt
from leaderboard.benchmarks import BENCHMARKS
from leaderboard.rows import PUBLISHED, Row
from leaderboard.table import best_tts_rows
from tts_eval.statistics import Interval, Verdict, paired_difference, verdict
from tts_eval.strategies import is_baseline, picks_strategies

SMALL_VS_LARGE = "small TTS vs large CoT"
STRATEGY_VS_STRATEGY = "strategy vs strategy"
COMPUTE_OPTIMAL_VS_BEST = "compute-optimal vs best strategy"


@dataclass(frozen=True)
class Comparison:
    benchmark: str
    kind: str
    setup: Row
    baseline: Row
    problems: int  # problems both rows have
    difference: Interval  # setup minus baseline, as a fraction

    @property
    def verdict(self) -> Verdict:
        return verdict(self.difference)


def comparisons(rows: list[Row]) -> list[Comparison]:
    found: list[Comparison] = []
    for benchmark in BENCHMARKS:
        scored = [r for r in rows if r.kind != PUBLISHED and not fmt.is_oracle(r) and benchmark in r.scores]
        pairs = [(SMALL_VS_LARGE, a, b) for a, b in _small_vs_large(scored, benchmark)]
        pairs += [(STRATEGY_VS_STRATEGY, a, b) for a, b in _strategy_vs_strategy(scored, benchmark)]
        pairs += [(COMPUTE_OPTIMAL_VS_BEST, a, b) for a, b in _compute_optimal_vs_best(scored, benchmark)]
        for kind, setup, baseline in pairs:
            compared = compare(setup, baseline, benchmark, kind)
            if compared is not None:
                found.append(compared)
    return found


def compare(setup: Row, baseline: Row, benchmark: str, kind: str) -> Comparison | None:
    """The paired difference on the problems both rows have; None with fewer than two."""
    a, b = setup.scores[benchmark].per_problem, baseline.scores[benchmark].per_problem
    shared = [p for p in a if p in b]
    if len(shared) < 2:
        return None
    difference = paired_difference([a[p] for p in shared], [b[p] for p in shared])
    return Comparison(benchmark, kind, setup, baseline, len(shared), difference)


def _best(rows: list[Row], benchmark: str) -> Row:
    return max(rows, key=lambda r: r.scores[benchmark].accuracy)  # the first of equals


def _small_vs_large(rows: list[Row], benchmark: str) -> list[tuple[Row, Row]]:
    pairs = []
    for policy, best in best_tts_rows(rows, benchmark).items():  # the headline's choice
        for cot in rows:
            larger = cot.policy_params is None or best.policy_params is None or cot.policy_params > best.policy_params
            if is_baseline(cot.setup.strategy) and cot.setup.policy != policy and larger:
                pairs.append((best, cot))
    return pairs


def _strategy_vs_strategy(rows: list[Row], benchmark: str) -> list[tuple[Row, Row]]:
    groups: dict[tuple[str, int | None], dict[str, list[Row]]] = {}
    for row in rows:
        if not is_baseline(row.setup.strategy) and not picks_strategies(row.setup.strategy):
            groups.setdefault((row.setup.policy, row.setup.n), {}).setdefault(row.setup.strategy, []).append(row)
    pairs = []
    for by_strategy in groups.values():
        bests = [_best(candidates, benchmark) for candidates in by_strategy.values()]
        leader = _best(bests, benchmark)
        pairs += [(leader, other) for other in bests if other is not leader]
    return pairs


def _compute_optimal_vs_best(rows: list[Row], benchmark: str) -> list[tuple[Row, Row]]:
    pairs = []
    for row in rows:
        if not picks_strategies(row.setup.strategy):
            continue
        singles = [
            r
            for r in rows
            if r.setup.policy == row.setup.policy
            and r.setup.n == row.setup.n
            and not is_baseline(r.setup.strategy)
            and not picks_strategies(r.setup.strategy)
        ]
        if singles:
            pairs.append((row, _best(singles, benchmark)))
    return pairs
