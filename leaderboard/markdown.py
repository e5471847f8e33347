"""``leaderboard.md``."""

from __future__ import annotations

import html
import re

from leaderboard.analyses import analysis_tables
from leaderboard.benchmarks import GRADE_NAMES
from leaderboard.difficulty import BUCKETS, accuracy_by_bucket, accuracy_by_level, grades
from leaderboard.formatting import DASH, percent, points, policy_label, with_interval
from leaderboard.headline import frontier_table, headline_blocks
from leaderboard.notes import COMPACT_TEXT, FRONTIER_TEXT, HEADLINE_TEXT, REST_TEXT, notes
from leaderboard.plots import HEADLINE_PLOT
from leaderboard.table import Table, difficulty_rows, row_table, row_title, shown_benchmarks, split_rows


def render_markdown(board, plots) -> str:
    """The answer first (headline, frontier), then the measured rows, difficulty, plots, the
    derived and published rows, and the notes; each section a list of lines."""
    lines = ["# Leaderboard", ""]
    for section in (_headline, _measured, _difficulty, _comparisons, _analyses, _plots, _rest, _notes):
        lines += section(board, plots)
    return "\n".join(lines)


def _headline(board, plots) -> list[str]:
    lines = ["## Headline", ""]
    frontier_plot = next((p for p in plots if p.name == HEADLINE_PLOT), None)
    for benchmark in shown_benchmarks(board.rows):
        blocks, best = headline_blocks(board.rows, benchmark), frontier_table(board.rows, benchmark)
        if not blocks and not best.rows:
            continue
        lines += [f"### {benchmark}", ""]
        for block in blocks:
            lines += [f"Best setup: **{_cell(block.lead)}**.", "", render_table(block.table), ""]
        if blocks:
            lines += [HEADLINE_TEXT, ""]
        if best.rows:
            lines += [f"Compute-optimal frontier: {FRONTIER_TEXT}", "", render_table(best), ""]
    if len(lines) == 2:
        return lines + [
            "No policy with a test-time-scaling run and no run with known FLOPs: nothing to compare yet.",
            "",
        ]
    if frontier_plot is not None:
        lines += [f"![{frontier_plot.title}]({frontier_plot.png})", ""]
    return lines


def _measured(board, plots) -> list[str]:
    compact, _ = split_rows(board.rows)
    return [
        "## Measured results",
        "",
        COMPACT_TEXT,
        "",
        render_table(row_table(compact, shown_benchmarks(board.rows))),
        "",
    ]


def _difficulty(board, plots) -> list[str]:
    return [line for benchmark in shown_benchmarks(board.rows) for line in _difficulty_sections(board, benchmark)]


def _comparisons(board, plots) -> list[str]:
    if not board.comparisons:
        return []
    return [
        "## Paired comparisons",
        "",
        "Setup minus baseline on the problems both have, in percentage points, with its 95% paired "
        'bootstrap interval; "beats" only when the interval lies above zero.',
        "",
        _table(COMPARISON_HEADER, [comparison_cells(c) for c in board.comparisons], COMPARISON_NUMERIC),
        "",
    ]


def _analyses(board, plots) -> list[str]:
    lines = []
    for table in analysis_tables(board.analyses):
        lines += [f"## {table.title}", "", table.description, "", _table(table.header, table.rows), ""]
    return lines


def _plots(board, plots) -> list[str]:
    lines = ["## Plots", ""]
    for plot in plots:
        if plot.name != HEADLINE_PLOT:
            lines += [f"### {plot.title}", "", plot.description, "", f"![{plot.title}]({plot.png})", ""]
    return lines


def _rest(board, plots) -> list[str]:
    _, rest = split_rows(board.rows)
    if not rest:
        return []
    return [
        "## Derived, other-voting and published rows",
        "",
        REST_TEXT,
        "",
        render_table(row_table(rest, shown_benchmarks(board.rows))),
        "",
    ]


def _notes(board, plots) -> list[str]:
    lines = ["## Notes", ""]
    lines += [f"- {note}" for note in notes(board.max_subsets)]
    token_notes = sorted({s.tokens_note for r in board.rows for s in r.scores.values() if s.tokens_note})
    lines += [f"- {note}" for note in token_notes]
    if board.grading_failures:
        lines.append(
            f"- {board.grading_failures} candidate answer(s) could not be graded (a comparison ran past its "
            "time limit or its checker process died) and count as wrong."
        )
    if board.reference_source:
        lines.append(f"- Published figures: {board.reference_source}.")
    lines.append("")
    return lines


def _difficulty_sections(board, benchmark: str) -> list[str]:
    """Accuracy by the task's own grade and by the policy's Pass@1 bucket, where known."""
    chosen = [r for r in difficulty_rows(board.rows) if benchmark in r.scores]
    lines: list[str] = []
    levels = grades(chosen, benchmark)
    if levels:
        grade = GRADE_NAMES.get(benchmark, "level")
        lines += [f"## {benchmark} accuracy by {grade} (%)", ""]
        header = ["Setup", *(f"{grade} {lv}" for lv in levels)]
        body = []
        for r in chosen:
            by_level = accuracy_by_level(r, benchmark)
            if by_level:
                body.append([row_title(r), *(_with_count(by_level.get(lv)) for lv in levels)])
        lines += [_table(header, body, [False] + [True] * (len(header) - 1)), ""]
    by_bucket, missing = [], []
    for r in chosen:
        pass1 = board.pass1.get((r.setup.policy, benchmark))
        buckets = accuracy_by_bucket(r, benchmark, pass1) if pass1 else {}
        if buckets:
            by_bucket.append((r, buckets))
        elif r.setup.policy not in missing:
            missing.append(r.setup.policy)
    if by_bucket or missing:
        lines += [f"## {benchmark} accuracy by the policy's Pass@1 bucket (%)", ""]
        lines += [
            "Buckets by the policy's own Pass@1 on each problem (the share of right samples in its sampled Best-of-N "
            "or majority runs on the same problems): easy [50%, 100%], medium [10%, 50%), hard [0%, 10%).",
            "",
        ]
    if by_bucket:
        header = ["Setup", *(b.capitalize() for b in BUCKETS)]
        body = [[row_title(r), *(_with_count(buckets.get(b)) for b in BUCKETS)] for r, buckets in by_bucket]
        lines += [_table(header, body, [False] + [True] * (len(header) - 1)), ""]
    if missing:
        names = ", ".join(policy_label(p) for p in missing)
        lines += [
            f"No Pass@1 per problem for {names}: add a sampled (temperature > 0) Best-of-N or majority run of "
            f"that policy on {benchmark}.",
            "",
        ]
    return lines


COMPARISON_HEADER = [
    "Benchmark",
    "Comparison",
    "Setup",
    "Baseline",
    "Problems",
    "Setup (%)",
    "Baseline (%)",
    "Difference (points)",
    "Verdict",
]
COMPARISON_NUMERIC = [False, False, False, False, True, True, True, True, False]


def comparison_cells(comparison) -> list[str]:
    """One paired comparison as table cells (Markdown and HTML)."""
    benchmark = comparison.benchmark
    setup, baseline = comparison.setup, comparison.baseline
    return [
        benchmark,
        comparison.kind,
        row_title(setup),
        row_title(baseline),
        str(comparison.problems),
        with_interval(setup.accuracy(benchmark), setup.interval(benchmark)),
        with_interval(baseline.accuracy(benchmark), baseline.interval(benchmark)),
        points(comparison.difference),
        comparison.verdict,
    ]


def _with_count(value) -> str:
    if value is None:
        return DASH
    accuracy, problems = value
    return f"{percent(accuracy)} ({problems})"


def _table(header: list[str], body: list[list[str]], numeric: list[bool] | None = None) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(_cell(c) for c in cells) + " |"

    rule = ["---:" if right else "---" for right in (numeric or [False] * len(header))]
    return "\n".join([line(header), line(rule), *(line(r) for r in body)])


def render_table(table: Table) -> str:
    """A :class:`Table` in Markdown, numbers right-aligned."""
    return _table([c.title for c in table.columns], table.texts(), [c.numeric for c in table.columns])


def _cell(text: str) -> str:
    """Text as one Markdown table cell: model names and answers come from users' runs, so
    HTML is escaped (a renderer would run it), pipes cannot end the cell, line breaks cannot
    end the row, and Markdown's link/emphasis/code characters show as themselves."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\g<0>", text)


_MARKDOWN_SPECIAL = re.compile(r"[\\|`*\[\]]")
