"""``tts-eval plan``: fit a compute-optimal policy table from sweeps and print its
cross-validated accuracy beside the best single strategy's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def plan(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Folders written by tts-eval sweep (one per policy, PRM and task).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The policy table (YAML) to write.")],
    name: Annotated[str | None, typer.Option(help="The table's name (default: the file's stem).")] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds over problems.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the fold split.")] = 0,
) -> None:
    """Fit a compute-optimal policy table from sweeps; print its cross-validated accuracy.

    Per difficulty bucket and budget it picks the best strategy (ties: fewer FLOPs), writes
    the table, and prints the accuracy it reaches on held-out problems beside the best
    single strategy's."""
    from tts_eval.planning.plan import PlanError, format_report, plan_table
    from tts_eval.planning.sweep import SweepError

    try:
        result = plan_table(run_dirs, name=name or out.stem, folds=folds, seed=seed)
    except (PlanError, SweepError) as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(code=2) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.table.to_yaml(), encoding="utf-8")
    typer.echo(format_report(result))
    typer.echo(f"wrote {out}; use it with strategy=compute_optimal,table={out}")
