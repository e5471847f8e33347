"""``leaderboard.md``."""

from __future__ import annotations

from leaderboard.benchmarks import MATH500
from leaderboard.difficulty import BUCKETS, LEVELS, accuracy_by_bucket, accuracy_by_level
from leaderboard.formatting import DASH, percent
from leaderboard.notes import notes
from leaderboard.table import cells, columns_for, difficulty_rows, row_title, shown_benchmarks


def render_markdown(board, plots) -> str:
    columns, shown = columns_for(board.rows), shown_benchmarks(board.rows)
    lines = ["# Leaderboard", ""]
    lines += [
        "One row per policy × PRM × strategy × N. Accuracies in percent; tokens and FLOPs per problem.",
        "",
        _table([c.title for c in columns], [[cells(row, shown)[c.key].text for c in columns] for row in board.rows]),
        "",
    ]
    chosen = [r for r in difficulty_rows(board.rows) if MATH500 in r.scores]
    by_level = [(r, accuracy_by_level(r, MATH500)) for r in chosen]
    by_level = [(r, levels) for r, levels in by_level if levels]
    if by_level:
        lines += [f"## {MATH500} accuracy by MATH level (%)", ""]
        header = ["Setup", *(f"Level {lv}" for lv in LEVELS)]
        body = [[row_title(r), *(_with_count(levels.get(lv)) for lv in LEVELS)] for r, levels in by_level]
        lines += [_table(header, body), ""]
    by_bucket = []
    for r in chosen:
        pass1 = board.pass1.get((r.setup.policy, MATH500))
        buckets = accuracy_by_bucket(r, MATH500, pass1) if pass1 else {}
        if buckets:
            by_bucket.append((r, buckets))
    if by_bucket:
        lines += [
            f"## {MATH500} accuracy by difficulty (%)",
            "",
            "Buckets by the policy's Pass@1 on each problem: easy [50%, 100%], medium [10%, 50%), hard [0%, 10%).",
            "",
        ]
        header = ["Setup", *(b.capitalize() for b in BUCKETS)]
        body = [[row_title(r), *(_with_count(buckets.get(b)) for b in BUCKETS)] for r, buckets in by_bucket]
        lines += [_table(header, body), ""]
    lines += ["## Plots", ""]
    for plot in plots:
        lines += [f"### {plot.title}", "", plot.description, "", f"![{plot.title}]({plot.png})", ""]
    lines += ["## Notes", ""]
    lines += [f"- {note}" for note in notes(board.max_subsets)]
    token_notes = sorted({s.tokens_note for r in board.rows for s in r.scores.values() if s.tokens_note})
    lines += [f"- {note}" for note in token_notes]
    if board.reference_source:
        lines.append(f"- Published figures: {board.reference_source}.")
    lines.append("")
    return "\n".join(lines)


def _with_count(value) -> str:
    if value is None:
        return DASH
    accuracy, problems = value
    return f"{percent(accuracy)} ({problems})"


def _table(header: list[str], body: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in body)])
