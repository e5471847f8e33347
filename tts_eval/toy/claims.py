"""The toy world's claims (docs/toy-world.md) as paired comparisons with intervals and
verdicts, recomputed from every problem's measured outcome per setup.

``bench/toy_heldout.py`` measures the setups on the held-out half of the test split and
stores the outcomes (``bench/toy_heldout.json``, with the command that made it); the docs'
claims table is :func:`report` of that file, and ``tests/test_toy_world.py`` recomputes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from tts_eval.statistics import Interval, Verdict, accuracy_interval, paired_difference, verdict

# The setups of the claims, fixed before the held-out half was read: majority voting and the
# PRM's Best-of-N over the same N samples, and DVTS, the small policy's best strategy on the
# development half.
PASS_AT_1, LARGE_COT = "Pass@1", "large CoT"


class MeasuredSetups(BaseModel):
    """Per-problem outcomes of several setups on the same problems, and how they were made."""

    command: str
    problems: list[int]  # indices into the test split
    difficulty: list[int]  # operations per problem
    outcomes: dict[str, list[float]]  # setup -> per-problem outcome (0/1, or a share for Pass@1)
    seconds: dict[str, float]


@dataclass(frozen=True)
class Claim:
    """``setup`` against ``baseline`` on some problems: the docs expect one of ``expected``
    (none: a comparison reported, not claimed)."""

    statement: str
    setup: str
    baseline: str
    subset: str  # "all", or a difficulty bucket
    problems: int
    setup_accuracy: Interval
    baseline_accuracy: Interval
    difference: Interval
    expected: tuple[Verdict, ...]

    @property
    def verdict(self) -> Verdict:
        return verdict(self.difference)

    @property
    def holds(self) -> bool:
        return not self.expected or self.verdict in self.expected


def buckets(measured: MeasuredSetups) -> list[str]:
    """The paper's difficulty buckets from each problem's Pass@1 over the small policy's
    samples: easy [0.5, 1], medium [0.1, 0.5), hard [0, 0.1)."""
    from tts_eval.toy.evaluate import difficulty_buckets

    return difficulty_buckets(measured.outcomes[PASS_AT_1])


def compare(
    measured: MeasuredSetups,
    statement: str,
    setup: str,
    baseline: str,
    expected: tuple[Verdict, ...],
    subset: str = "all",
) -> Claim:
    """``setup`` against ``baseline`` on every problem, or on one difficulty bucket."""
    a, b = _subset(measured, setup, subset), _subset(measured, baseline, subset)
    return Claim(
        statement,
        setup,
        baseline,
        subset,
        len(a),
        accuracy_interval(a),
        accuracy_interval(b),
        paired_difference(a, b),
        expected,
    )


def _subset(measured: MeasuredSetups, setup: str, subset: str) -> list[float]:
    keep = [True] * len(measured.problems) if subset == "all" else [b == subset for b in buckets(measured)]
    return [v for v, k in zip(measured.outcomes[setup], keep) if k]


def claims(measured: MeasuredSetups, n: int = 16, large_n: int = 64) -> list[Claim]:
    """The docs' claims (and the N = 16 comparison with the large policy, reported)."""
    majority, best_of_n, dvts = f"majority@{n}", f"best_of_n@{n}", f"dvts@{n}"
    if not {PASS_AT_1, LARGE_COT, majority, best_of_n, dvts, f"dvts@{large_n}"} <= set(measured.outcomes):
        raise ValueError(f"the measurement lacks setups the claims need; it has {', '.join(measured.outcomes)}")
    return [
        compare(measured, "majority voting beats a single sample", majority, PASS_AT_1, ("beats",)),
        compare(measured, "the PRM's Best-of-N beats majority voting", best_of_n, majority, ("beats",)),
        compare(
            measured, f"small policy + DVTS at N={n} against the large policy's CoT", dvts, LARGE_COT, ()
        ),  # reported, not claimed: see the next one
        compare(
            measured,
            f"small policy + DVTS at N={large_n} beats the large policy's CoT",
            f"dvts@{large_n}",
            LARGE_COT,
            ("beats",),
        ),
        compare(measured, "on hard problems, DVTS beats majority voting", dvts, majority, ("beats",), subset="hard"),
        compare(
            measured,
            "on easy problems, DVTS does not beat majority voting",
            dvts,
            majority,
            ("ties", "trails"),
            subset="easy",
        ),
    ]


def report(measured: MeasuredSetups, n: int = 16, large_n: int = 64) -> str:
    """The claims as a Markdown table: accuracies and the paired difference in percentage
    points, each with its 95% interval, the verdict and whether the claim holds."""
    lines = [
        f"Measured by `{measured.command}` on test problems {measured.problems[0]}-{measured.problems[-1]} "
        f"({len(measured.problems)} problems).",
        "",
        "| claim | problems | setup | accuracy (%) | baseline | accuracy (%) | difference (points) | verdict | holds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for claim in claims(measured, n, large_n):
        lines.append(
            f"| {claim.statement} | {claim.problems}{'' if claim.subset == 'all' else f' ({claim.subset})'} | {claim.setup} | "
            f"{_percent(claim.setup_accuracy)} | {claim.baseline} | {_percent(claim.baseline_accuracy)} | "
            f"{_points(claim.difference)} | {claim.verdict} | {_holds(claim)} |"
        )
    lines += ["", ranking(measured)]
    return "\n".join(lines)


def ranking(measured: MeasuredSetups) -> str:
    """Every setup's accuracy (%) with its 95% interval, on all problems and per difficulty
    bucket, as a Markdown table."""
    groups = ["all", "easy", "medium", "hard"]
    labels = buckets(measured)
    counts = {g: len(labels) if g == "all" else labels.count(g) for g in groups}
    lines = ["| setup | " + " | ".join(f"{g} ({counts[g]})" for g in groups) + " |", "|---" * (len(groups) + 1) + "|"]
    for setup in measured.outcomes:
        cells = [_percent(accuracy_interval(_subset(measured, setup, g))) if counts[g] >= 2 else "—" for g in groups]
        lines.append(f"| {setup} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _holds(claim: Claim) -> str:
    if not claim.expected:
        return "reported, not claimed"
    return "yes" if claim.holds else "NO"


def _percent(interval: Interval) -> str:
    return f"{100 * interval.estimate:.1f} [{100 * interval.low:.1f}, {100 * interval.high:.1f}]"


def _points(interval: Interval) -> str:
    return f"{100 * interval.estimate:+.1f} [{100 * interval.low:+.1f}, {100 * interval.high:+.1f}]"
