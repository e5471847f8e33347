"""``tts-eval leaderboard``: lm-eval output folders in, tables and plots out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def leaderboard(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Folders holding lm-eval output (lm_eval / tts-eval run --output_path with --log_samples) at any depth.",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write (new, empty, or an earlier leaderboard).")],
    params: Annotated[
        Path | None,
        typer.Option(
            "--params",
            help="YAML with parameter counts for runs that record none: models: {NAME: {parameters: 7.6e9}}.",
        ),
    ] = None,
    reference: Annotated[
        Path | None, typer.Option("--reference", help="YAML of published figures (default: the paper's Tables 3-5).")
    ] = None,
    no_reference: Annotated[bool, typer.Option("--no-reference", help="Leave the published figures out.")] = False,
    all_reference: Annotated[
        bool,
        typer.Option(
            "--all-reference",
            help="Add every published figure, also on benchmarks no run measured (default: only theirs).",
        ),
    ] = False,
    subsets: Annotated[
        int,
        typer.Option(
            "--subsets", help="Subsets drawn per problem and budget when there are more (Monte-Carlo estimate)."
        ),
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the Monte-Carlo subsets.")] = 0,
    processbench: Annotated[
        list[Path] | None,
        typer.Option(
            "--processbench",
            help="Folder of ProcessBench runs of the prm model (lm_eval --model prm): measured F1 for the PRM analyses. Repeatable.",
        ),
    ] = None,
) -> None:
    """Compare runs: accuracy per policy, PRM, strategy and budget N, with compute, curves and
    the paper's published figures (leaderboard.md, .json, .html and PNG/SVG plots)."""
    from leaderboard import LeaderboardError, build_leaderboard

    if no_reference and (reference is not None or all_reference):
        typer.echo(
            f"Error: {'--reference' if reference is not None else '--all-reference'} and --no-reference exclude each other",
            err=True,
        )
        raise typer.Exit(code=2)
    try:
        board = build_leaderboard(
            run_dirs,
            out,
            reference=reference,
            use_reference=not no_reference,
            all_reference=all_reference,
            params=params,
            max_subsets=subsets,
            seed=seed,
            processbench=processbench or (),
        )
    except LeaderboardError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(code=2) from None
    if board.grading_failures:
        typer.echo(
            f"Warning: {board.grading_failures} candidate answer(s) could not be graded and count as wrong", err=True
        )
    measured = sum(r.kind != "published" for r in board.rows)
    typer.echo(
        f"{out}: {measured} measured or derived rows from {len(board.runs)} runs, {len(board.rows) - measured} published"
    )
