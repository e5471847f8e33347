"""``leaderboard.json``: every row with full-precision numbers and where they came from."""

from __future__ import annotations

import dataclasses
import json
import math

from leaderboard.analyses import analyses_json
from leaderboard.benchmarks import BENCHMARKS
from leaderboard.difficulty import accuracy_by_bucket, accuracy_by_level
from leaderboard.headline import frontier, matchups
from leaderboard.notes import notes
from leaderboard.table import row_title, shown_benchmarks

FORMAT_VERSION = 1


def render_json(board, plots) -> str:
    data = {
        "format_version": FORMAT_VERSION,
        "runs": board.runs,
        "reference": board.reference_source,
        "estimator": {"max_subsets": board.max_subsets, "seed": board.seed},
        "grading_failures": board.grading_failures,
        "notes": notes(board.max_subsets),
        "plots": [{"name": p.name, "title": p.title, "png": p.png, "svg": p.svg} for p in plots],
        "headline": [_matchup(m) for b in shown_benchmarks(board.rows) for m in matchups(board.rows, b)],
        "frontier": {b: [_frontier_point(r, b) for r in frontier(board.rows, b)] for b in shown_benchmarks(board.rows)},
        "rows": [_row(board, row) for row in board.rows],
        "comparisons": [_comparison(c) for c in board.comparisons],
        "analyses": analyses_json(board.analyses),
    }
    return json.dumps(_finite(data), indent=2, ensure_ascii=False) + "\n"


def _row(board, row) -> dict:
    benchmarks = {}
    for benchmark in BENCHMARKS:
        accuracy = row.accuracy(benchmark)
        if accuracy is None:
            continue
        entry = {"accuracy": accuracy}
        score = row.scores.get(benchmark)
        if score is not None:
            entry.update(_interval(score.interval))
            pass1 = board.pass1.get((row.setup.policy, benchmark))
            entry.update(
                problems=score.problems,
                benchmark_size=score.benchmark_size,
                kind=score.kind,
                method=score.method,
                source_n=score.source_n,
                source=score.source,
                policy_tokens=score.policy_tokens,
                prm_tokens=score.prm_tokens,
                prm_scored_tokens=score.prm_scored_tokens,
                tokens=row.tokens(benchmark),
                flops=row.flops(benchmark),
                tokens_note=score.tokens_note,
                by_level={
                    str(k): {"accuracy": a, "problems": n} for k, (a, n) in accuracy_by_level(row, benchmark).items()
                },
                by_difficulty={
                    k: {"accuracy": a, "problems": n}
                    for k, (a, n) in accuracy_by_bucket(row, benchmark, pass1 or {}).items()
                },
            )
        benchmarks[benchmark] = entry
    return {
        "title": row_title(row),
        "setup": dataclasses.asdict(row.setup),
        "kind": row.kind,
        "method": row.method,
        "model_source": row.model_source,
        "policy_params": row.policy_params,
        "prm_params": row.prm_params,
        "pretraining_flops": row.pretraining_flops,
        "average": row.average(),
        "average_ci": _interval(row.average_interval()),
        "tokens": row.tokens(),
        "flops": row.flops(),
        "benchmarks": benchmarks,
    }


def _interval(interval) -> dict:
    """``ci_low`` / ``ci_high``: the 95% bootstrap interval (null with fewer than 2 problems)."""
    return {
        "ci_low": None if interval is None else interval.low,
        "ci_high": None if interval is None else interval.high,
    }


def _comparison(comparison) -> dict:
    return {
        "benchmark": comparison.benchmark,
        "kind": comparison.kind,
        "setup": row_title(comparison.setup),
        "baseline": row_title(comparison.baseline),
        "problems": comparison.problems,
        "setup_accuracy": comparison.setup.scores[comparison.benchmark].accuracy,
        "baseline_accuracy": comparison.baseline.scores[comparison.benchmark].accuracy,
        "difference": comparison.difference.estimate,
        **_interval(comparison.difference),
        "verdict": comparison.verdict,
    }


def _matchup(m) -> dict:
    b = m.benchmark
    return {
        "benchmark": b,
        "setup": row_title(m.small),
        "setup_accuracy": m.small.accuracy(b),
        "baseline": row_title(m.large),
        "baseline_kind": m.large.kind,
        "baseline_accuracy": m.large.accuracy(b),
        "flops_ratio": m.flops_ratio,
    }


def _frontier_point(row, benchmark: str) -> dict:
    return {
        "title": row_title(row),
        "kind": row.kind,
        "flops": row.flops(benchmark),
        "accuracy": row.accuracy(benchmark),
    }


def _finite(value):
    """NaN/inf are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
