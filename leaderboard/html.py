"""``leaderboard.html``: one self-contained page (no network). The answer first (headline
matchups and the compute-optimal frontier per task), then the sortable, filterable table of
measured rows with the derived, other-voting and published rows behind a toggle, the plots
embedded as SVG data, and the notes."""

from __future__ import annotations

import base64
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined, select_autoescape

from leaderboard.analyses import analysis_tables
from leaderboard.benchmarks import BENCHMARKS
from leaderboard.formatting import policy_label, strategy_label
from leaderboard.headline import frontier_table, headline_blocks
from leaderboard.markdown import COMPARISON_HEADER, comparison_cells
from leaderboard.notes import COMPACT_TEXT, FRONTIER_TEXT, HEADLINE_TEXT, REST_TEXT, notes
from leaderboard.plots import HEADLINE_PLOT
from leaderboard.table import Table, row_table, shown_benchmarks, split_rows

TEMPLATE = "leaderboard.html.j2"


def render_html(board, plots, folder: Path) -> str:
    environment = Environment(
        autoescape=select_autoescape(default=True), undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    template = environment.from_string(
        (resources.files("leaderboard") / "templates" / TEMPLATE).read_text(encoding="utf-8")
    )
    shown = shown_benchmarks(board.rows)
    compact, rest = split_rows(board.rows)
    ordered = compact + rest  # the compact rows first, as the Markdown shows them
    folded = {id(r) for r in rest}
    table = row_table(ordered, shown)
    rows: list[dict[str, Any]] = []
    for row, row_cells in zip(ordered, table.rows):
        rows.append(
            {
                "kind": row.kind,
                "folded": id(row) in folded,
                "policy": policy_label(row.setup.policy),
                "strategy": strategy_label(row.setup),
                # "|"-separated: benchmark names hold spaces ("Toy arithmetic")
                "benchmarks": "|".join(b for b in BENCHMARKS if row.accuracy(b) is not None),
                "cells": [
                    {
                        "text": row_cells[c.key].text,
                        "sort": _sort_value(row_cells[c.key].sort),
                        "benchmark": c.benchmark,
                    }
                    for c in table.columns
                ],
            }
        )
    images = {
        p.name: {
            "title": p.title,
            "description": p.description,
            "png": p.png,
            "svg": p.svg,
            "data": _svg_data(folder / p.svg),
        }
        for p in plots
    }
    headline = []
    for benchmark in shown:
        blocks, best = headline_blocks(board.rows, benchmark), frontier_table(board.rows, benchmark)
        if blocks or best.rows:
            headline.append(
                {
                    "benchmark": benchmark,
                    "blocks": [{"lead": b.lead, "table": _plain(b.table)} for b in blocks],
                    "frontier": _plain(best),
                }
            )
    return template.render(
        headline=headline,
        headline_text=HEADLINE_TEXT,
        frontier_text=FRONTIER_TEXT,
        frontier_plot=images.get(HEADLINE_PLOT),
        compact_text=COMPACT_TEXT,
        rest_text=REST_TEXT,
        columns=table.columns,
        rows=rows,
        folded_count=len(rest),
        benchmarks=[b for b in BENCHMARKS if any(b in r["benchmarks"].split("|") for r in rows)],
        strategies=sorted({r["strategy"] for r in rows}),
        policies=sorted({r["policy"] for r in rows}),
        comparison_header=COMPARISON_HEADER,
        comparisons=[comparison_cells(c) for c in board.comparisons],
        plots=[image for name, image in images.items() if name != HEADLINE_PLOT],
        analyses=analysis_tables(board.analyses),
        notes=notes(board.max_subsets),
        reference=board.reference_source,
    )


def _plain(table: Table) -> dict:
    """A table for the template: titles, numeric flags and cell texts."""
    return {
        "columns": [{"title": c.title, "numeric": c.numeric} for c in table.columns],
        "rows": [[row[c.key].text for c in table.columns] for row in table.rows],
    }


def _sort_value(value) -> str:
    return "" if value is None else str(value)


def _svg_data(path: Path) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
