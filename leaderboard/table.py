"""The leaderboard table as cells, shared by the Markdown and HTML writers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from leaderboard import formatting as fmt
from leaderboard.benchmarks import BENCHMARKS
from leaderboard.rows import MEASURED, PUBLISHED, Row, Setup
from tts_eval.benchmarks import leaderboard_benchmarks
from tts_eval.strategies import is_baseline


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    numeric: bool
    benchmark: str | None = None  # the column belongs to one benchmark


@dataclass(frozen=True)
class Cell:
    text: str
    sort: float | str | None  # None: unknown, sorted last


@dataclass
class Table:
    """A table any writer renders (Markdown, HTML): numeric columns right-aligned."""

    columns: list[Column]
    rows: list[dict[str, Cell]] = field(default_factory=list)

    def texts(self) -> list[list[str]]:
        return [[row[c.key].text for c in self.columns] for row in self.rows]


COLUMNS = (
    Column("policy", "Policy", False),
    Column("params", "Params", True),
    Column("prm", "PRM", False),
    Column("strategy", "Strategy", False),
    Column("voting", "Voting", False),
    Column("n", "N", True),
    *(Column(b.key, f"{b.title} (%)", True, b.title) for b in leaderboard_benchmarks()),
    Column("avg", "Avg. (%)", True),  # over the paper's benchmarks (MATH-500 and AIME24)
    Column("tokens", "Tokens/problem", True),
    Column("flops", "FLOPs/problem", True),
    Column("pretraining", "Pre-training FLOPs", True),
    Column("problems", "Problems", False),
    Column("source", "Source", False),
)


def shown_benchmarks(rows: list[Row]) -> list[str]:
    """The benchmarks some row has an accuracy for."""
    return [b for b in BENCHMARKS if any(r.accuracy(b) is not None for r in rows)]


def tts_candidates(rows: list[Row], benchmark: str) -> list[Row]:
    """Measured and derived rows with a score on ``benchmark``, oracles (pass@k) left out."""
    return [r for r in rows if r.kind != PUBLISHED and not fmt.is_oracle(r) and benchmark in r.scores]


def best_tts_rows(rows: list[Row], benchmark: str) -> dict[str, Row]:
    """Policy -> its most accurate non-CoT setup on ``benchmark`` (ties: fewer FLOPs, then the
    first in table order)."""
    best: dict[str, Row] = {}
    for row in tts_candidates(rows, benchmark):
        if is_baseline(row.setup.strategy):
            continue
        held = best.get(row.setup.policy)
        if held is None or _rank(row, benchmark) > _rank(held, benchmark):
            best[row.setup.policy] = row
    return best


def _rank(row: Row, benchmark: str) -> tuple[float, float]:
    flops = row.flops(benchmark)
    return (row.scores[benchmark].accuracy, -flops if flops is not None else float("-inf"))


def visible_columns(columns: list[Column], rows: list[dict[str, Cell]]) -> list[Column]:
    """The columns some row has a value in (an always-empty column is left out)."""
    return [c for c in columns if any(r[c.key].text != fmt.DASH for r in rows)]


def compact_key(row: Row) -> Setup:
    """Rows of one strategy at one budget that differ only in how they vote."""
    return replace(row.setup, voting=None, aggregation=None)


def split_rows(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """(the compact table, the rest): the compact table holds the measured rows, one per
    policy, PRM, strategy and N (the most accurate voting, over the benchmarks it has); the
    rest are derived estimates, other votings and published figures, in table order."""
    best: dict[Setup, Row] = {}
    for row in rows:
        if row.kind != MEASURED:
            continue
        key = compact_key(row)
        if key not in best or _mean_accuracy(row) > _mean_accuracy(best[key]):
            best[key] = row
    chosen = {id(r) for r in best.values()}
    return [r for r in rows if id(r) in chosen], [r for r in rows if id(r) not in chosen]


def _mean_accuracy(row: Row) -> float:
    return sum(s.accuracy for s in row.scores.values()) / len(row.scores)


def cells(row: Row, benchmarks: Sequence[str] = BENCHMARKS) -> dict[str, Cell]:
    """``benchmarks``: those the table shows, for the problem counts."""
    s = row.setup
    accuracy = {b: row.accuracy(b) for b in BENCHMARKS}
    problems = " / ".join(str(row.scores[b].problems) if b in row.scores else fmt.DASH for b in benchmarks)
    return {
        "policy": Cell(fmt.policy_label(s.policy), fmt.policy_label(s.policy)),
        "params": Cell(fmt.parameters(row.policy_params), row.policy_params),
        "prm": Cell(fmt.prm_label(s), fmt.prm_label(s)),
        "strategy": Cell(fmt.strategy_label(s), fmt.strategy_label(s)),
        "voting": Cell(fmt.voting_label(s), fmt.voting_label(s)),
        "n": Cell(fmt.n_label(s), s.n),
        **{
            c.key: Cell(
                fmt.with_interval(accuracy[c.benchmark], row.interval(c.benchmark)), _pct(accuracy[c.benchmark])
            )
            for c in COLUMNS
            if c.benchmark is not None
        },
        "avg": Cell(fmt.with_interval(row.average(), row.average_interval()), _pct(row.average())),
        "tokens": Cell(fmt.count(row.tokens()), row.tokens()),
        "flops": Cell(fmt.flops(row.flops()), row.flops()),
        "pretraining": Cell(fmt.flops(row.pretraining_flops), row.pretraining_flops),
        "problems": Cell(problems if row.kind != PUBLISHED else fmt.DASH, None),
        "source": Cell(fmt.source_label(row), fmt.source_label(row)),
    }


def row_table(rows: list[Row], benchmarks: list[str]) -> Table:
    """Leaderboard rows as a table of the columns they fill; ``benchmarks``: those the
    leaderboard shows (the problem counts follow them)."""
    body = [cells(row, benchmarks) for row in rows]
    columns = [c for c in COLUMNS if c.benchmark is None or c.benchmark in benchmarks]
    columns = [replace(c, title=f"Problems ({' / '.join(benchmarks)})") if c.key == "problems" else c for c in columns]
    return Table(visible_columns(columns, body), body)


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def series_key(setup: Setup) -> Setup:
    """A row's curve: its setup without the budget."""
    return replace(setup, n=None)


def difficulty_rows(rows: list[Row]) -> list[Row]:
    """For each measured or derived curve (pass@k left out), its row at the largest budget."""
    best: dict[Setup, Row] = {}
    for row in rows:
        if row.kind == PUBLISHED or fmt.is_oracle(row):
            continue
        key = series_key(row.setup)
        if key not in best or (row.setup.n or 0) > (best[key].setup.n or 0):
            best[key] = row
    return list(best.values())


def row_title(row: Row) -> str:
    """One line naming a row's setup, for plots and the difficulty tables."""
    s = row.setup
    parts = [fmt.policy_label(s.policy)]
    if s.prm is not None:
        parts.append(fmt.prm_label(s))
    parts.append(fmt.strategy_label(s))
    if s.voting is not None:
        parts.append(fmt.voting_label(s))
    if s.n is not None and not is_baseline(s.strategy):
        parts.append(f"N={s.n}")
    text = " · ".join(parts)
    return f"{text} (published, {row.method})" if row.kind == PUBLISHED else text
