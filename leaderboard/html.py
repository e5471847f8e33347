"""``leaderboard.html``: one self-contained page (no network): the sortable, filterable
table, the plots embedded as SVG data, the notes."""

from __future__ import annotations

import base64
from importlib import resources
from pathlib import Path

from jinja2 import Environment, StrictUndefined, select_autoescape

from leaderboard.benchmarks import BENCHMARKS
from leaderboard.formatting import policy_label, strategy_label
from leaderboard.markdown import COMPARISON_HEADER, comparison_cells
from leaderboard.notes import notes
from leaderboard.table import cells, columns_for, shown_benchmarks

TEMPLATE = "leaderboard.html.j2"


def render_html(board, plots, folder: Path) -> str:
    environment = Environment(autoescape=select_autoescape(default=True), undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    template = environment.from_string((resources.files("leaderboard") / "templates" / TEMPLATE).read_text(encoding="utf-8"))
    columns, shown = columns_for(board.rows), shown_benchmarks(board.rows)
    rows = []
    for row in board.rows:
        row_cells = cells(row, shown)
        rows.append(
            {
                "kind": row.kind,
                "policy": policy_label(row.setup.policy),
                "strategy": strategy_label(row.setup),
                # "|"-separated: benchmark names hold spaces ("Toy arithmetic")
                "benchmarks": "|".join(b for b in BENCHMARKS if row.accuracy(b) is not None),
                "cells": [
                    {"text": row_cells[c.key].text, "sort": _sort_value(row_cells[c.key].sort), "benchmark": c.benchmark}
                    for c in columns
                ],
            }
        )
    images = [
        {"title": p.title, "description": p.description, "png": p.png, "svg": p.svg, "data": _svg_data(folder / p.svg)}
        for p in plots
    ]
    return template.render(
        columns=columns,
        rows=rows,
        benchmarks=[b for b in BENCHMARKS if any(b in r["benchmarks"].split("|") for r in rows)],
        strategies=sorted({r["strategy"] for r in rows}),
        policies=sorted({r["policy"] for r in rows}),
        comparison_header=COMPARISON_HEADER,
        comparisons=[comparison_cells(c) for c in board.comparisons],
        plots=images,
        notes=notes(board.max_subsets),
        reference=board.reference_source,
    )


def _sort_value(value) -> str:
    return "" if value is None else str(value)


def _svg_data(path: Path) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
