"""The leaderboard's answer, shown before the evidence.

- **Matchups**, per benchmark: each policy's best test-time-scaling setup (measured or derived,
  oracles left out; highest accuracy, then fewest FLOPs) against the CoT of every larger policy
  (or one of unknown size), measured here or published.
- **The compute-optimal frontier**, per benchmark: for each inference-FLOPs budget, the most
  accurate setup that fits it, i.e. the rows no other row beats at less or equal compute
  (the Pareto frontier of FLOPs per problem against accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass

from leaderboard import formatting as fmt
from leaderboard.comparisons import SMALL_VS_LARGE, compare
from leaderboard.rows import PUBLISHED, Row
from leaderboard.table import Cell, Column, Table, best_tts_rows, row_title, tts_candidates
from tts_eval.strategies import is_baseline


@dataclass(frozen=True)
class Matchup:
    benchmark: str
    small: Row  # the best TTS setup of a policy
    large: Row  # a larger policy's CoT, measured or published

    @property
    def flops_ratio(self) -> float | None:
        """The small setup's inference FLOPs per problem over the large CoT's."""
        small, large = self.small.flops(self.benchmark), self.large.flops(self.benchmark)
        return None if small is None or large is None else small / large


def _larger(cot: Row, small: Row) -> bool:
    return cot.policy_params is None or small.policy_params is None or cot.policy_params > small.policy_params


def matchups(rows: list[Row], benchmark: str) -> list[Matchup]:
    """Each policy's best TTS setup against the CoT of each larger policy: measured CoT
    first, then published, each by accuracy (highest first)."""
    found = []
    for policy, small in best_tts_rows(rows, benchmark).items():
        cots = [
            r
            for r in rows
            if is_baseline(r.setup.strategy)
            and r.setup.policy != policy
            and r.accuracy(benchmark) is not None
            and _larger(r, small)
        ]
        cots.sort(key=lambda r: (r.kind == PUBLISHED, -r.known_accuracy(benchmark)))
        found += [Matchup(benchmark, small, cot) for cot in cots]
    return found


def frontier(rows: list[Row], benchmark: str) -> list[Row]:
    """The Pareto frontier on ``benchmark``: measured and derived rows (oracles left out) with
    known FLOPs, by FLOPs ascending, each more accurate than every cheaper one."""
    known = [r for r in tts_candidates(rows, benchmark) if r.flops(benchmark) is not None]
    known.sort(key=lambda r: (r.flops(benchmark), -r.scores[benchmark].accuracy))
    best: list[Row] = []
    for row in known:
        if not best or row.scores[benchmark].accuracy > best[-1].scores[benchmark].accuracy:
            best.append(row)
    return best


# -- as tables ----------------------------------------------------------------------------

HEADLINE_COLUMNS = [
    Column("baseline", "Larger policy + CoT", False),
    Column("baseline_params", "Params", True),
    Column("baseline_accuracy", "CoT accuracy (%)", True),
    Column("setup_accuracy", "TTS accuracy (%)", True),
    Column("difference", "TTS − CoT (points)", True),
    Column("verdict", "Verdict", False),
    Column("flops_ratio", "FLOPs (TTS ÷ CoT)", True),
]
FRONTIER_COLUMNS = [
    Column("flops", "FLOPs/problem", True),
    Column("setup", "Best setup within this budget", False),
    Column("source", "Source", False),
    Column("accuracy", "Accuracy (%)", True),
]


@dataclass
class HeadlineBlock:
    """One policy's best TTS setup and its matchups against larger policies' CoT."""

    benchmark: str
    small: Row
    table: Table

    @property
    def lead(self) -> str:
        """The setup in one line: ``policy-small · Majority · majority · N=4 (152K parameters):
        42.9 [17.5, 71.4] % on 14 problems (measured)``."""
        params = fmt.parameters(self.small.policy_params)
        size = "" if params == fmt.DASH else f" ({params} parameters)"
        return (
            f"{row_title(self.small)}{size}: {_accuracy_cell(self.small, self.benchmark).text} % on "
            f"{self.small.scores[self.benchmark].problems} problems ({fmt.source_label(self.small)})"
        )


def _accuracy_cell(row: Row, benchmark: str) -> Cell:
    value = row.known_accuracy(benchmark)
    return Cell(fmt.with_interval(value, row.interval(benchmark)), 100.0 * value)


def headline_blocks(rows: list[Row], benchmark: str) -> list[HeadlineBlock]:
    """Per policy with TTS rows: a line per larger policy's CoT with both accuracies, the
    paired difference and verdict (measured CoT only: published figures have no per-problem
    outcomes), and the compute ratio."""
    blocks: dict[int, HeadlineBlock] = {}
    for m in matchups(rows, benchmark):
        block = blocks.setdefault(id(m.small), HeadlineBlock(benchmark, m.small, Table(list(HEADLINE_COLUMNS))))
        published = m.large.kind == PUBLISHED
        compared = None if published else compare(m.small, m.large, benchmark, SMALL_VS_LARGE)
        block.table.rows.append(
            {
                "baseline": Cell(row_title(m.large), row_title(m.large)),
                "baseline_params": Cell(fmt.parameters(m.large.policy_params), m.large.policy_params),
                "baseline_accuracy": _accuracy_cell(m.large, benchmark),
                "setup_accuracy": _accuracy_cell(m.small, benchmark),
                "difference": Cell(fmt.DASH, None)
                if compared is None
                else Cell(fmt.points(compared.difference), 100.0 * compared.difference.estimate),
                "verdict": Cell(
                    fmt.DASH if compared is None else compared.verdict, None if compared is None else compared.verdict
                ),
                "flops_ratio": Cell(fmt.ratio(m.flops_ratio), m.flops_ratio),
            }
        )
    return list(blocks.values())


def frontier_table(rows: list[Row], benchmark: str) -> Table:
    table = Table(list(FRONTIER_COLUMNS))
    for row in frontier(rows, benchmark):
        flops = row.flops(benchmark)
        table.rows.append(
            {
                "flops": Cell(fmt.flops(flops), flops),
                "setup": Cell(row_title(row), row_title(row)),
                "source": Cell(fmt.source_label(row), fmt.source_label(row)),
                "accuracy": _accuracy_cell(row, benchmark),
            }
        )
    return table
