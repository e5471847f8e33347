"""``tts-eval prm``: list the shipped PRMs, check a PRM spec (and optionally load and run it)."""

from __future__ import annotations

from typing import Annotated

import typer

prm_app = typer.Typer(
    help="Process reward models: list the shipped specs, check a YAML spec.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# A short solution scored by `check --load`: every PRM must give one score in [0, 1] per step.
GOLDEN_QUESTION = "What is $1 + 2 \\cdot 3$?"
GOLDEN_STEPS = [
    "Multiplication comes first: $2 \\cdot 3 = 6$.\n\n",
    "Then $1 + 6 = 7$.\n\n",
    "The answer is $\\boxed{7}$.",
]

# A two-step arithmetic solution (the toy world's format), right and with a wrong last step:
# a PRM that reads such solutions should score the wrong step clearly lower.
ARITHMETIC_QUESTION = "Compute 18 / 3 - 4."
ARITHMETIC_RIGHT = ["18 / 3 = 6\n\n", "6 - 4 = \\boxed{2}"]
ARITHMETIC_WRONG = ["18 / 3 = 6\n\n", "6 - 4 = \\boxed{3}"]


@prm_app.command("list")
def list_command() -> None:
    """Show the shipped PRMs: name (for load_prm / --prm), family, model, ProcessBench F1."""
    from rich.console import Console
    from rich.table import Table

    from prm_backends import PRMConfigError, list_prms, load_spec

    table = Table(title="PRMs (yaml_configs/prm)")
    for column in ("name", "family", "model", "ProcessBench F1"):
        table.add_column(column, justify="right" if column == "ProcessBench F1" else "left")
    broken = []
    for name in list_prms():
        try:
            spec = load_spec(name)
        except PRMConfigError as exc:
            broken.append(str(exc))
            table.add_row(name, "[red]invalid[/red]", "see below", "-")
            continue
        f1 = "-" if spec.processbench_f1 is None else f"{spec.processbench_f1:.1f}"
        table.add_row(name, spec.family, spec.model, f1)
    console = Console(width=200)
    console.print(table)
    for message in broken:
        console.print(f"invalid spec {message}", style="red", markup=False, highlight=False)
    if broken:
        raise typer.Exit(1)


@prm_app.command("check")
def check_command(
    file: Annotated[str, typer.Argument(help="A PRM spec: YAML path or shipped name.")],
    load: Annotated[bool, typer.Option("--load", help="Also load the weights and score a golden example.")] = False,
    model: Annotated[str | None, typer.Option(help="Override the spec's model (e.g. a local folder).")] = None,
    device: Annotated[str | None, typer.Option(help="Override the spec's device.")] = None,
    dtype: Annotated[str | None, typer.Option(help="Override the spec's dtype.")] = None,
) -> None:
    """Validate a PRM spec without weights; with --load, also load it and score one example."""
    from prm_backends import PRMConfigError, load_prm, load_spec

    overrides = {"model": model, "device": device, "dtype": dtype}
    try:
        spec = load_spec(file, **overrides)
        typer.echo(f"OK {spec.source}: {spec.name} (family {spec.family}, model {spec.model}, runtime {spec.runtime})")
        if not load:
            return
        prm = load_prm(file, **overrides)
    except PRMConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    scores = prm.score(GOLDEN_QUESTION, GOLDEN_STEPS)
    if len(scores) != len(GOLDEN_STEPS) or not all(0.0 <= s <= 1.0 for s in scores):
        typer.echo(f"error: expected {len(GOLDEN_STEPS)} scores in [0, 1], got {scores}", err=True)
        raise typer.Exit(1)
    right, wrong = prm.score_batch([(ARITHMETIC_QUESTION, ARITHMETIC_RIGHT), (ARITHMETIC_QUESTION, ARITHMETIC_WRONG)])
    from tts_eval.voting import PRM_DEFAULT_VOTING, resolve_vote_settings

    _, aggregation = resolve_vote_settings(True, voting=None, aggregation=None, recommended=spec.aggregation)
    typer.echo(f"loaded {prm.num_parameters:,} parameters; golden example step scores: " + _scores(scores))
    typer.echo(
        "  Each score is the PRM's probability that the step is correct (1: surely right, 0: surely wrong). The three "
        "golden steps are right: a PRM trained on competition math scores them high; one trained on other text may "
        "not (the toy PRM knows only chained arithmetic, like the next example). The check itself only requires one "
        "score in [0, 1] per step."
    )
    typer.echo(
        f"arithmetic example '{ARITHMETIC_QUESTION}' step scores: right solution {_scores(right)}; "
        f"last step wrong (6 - 4 = 3) {_scores(wrong)}"
    )
    typer.echo("  A PRM that reads such solutions scores the wrong last step clearly lower than the right one.")
    typer.echo(
        f"Searches read this PRM with voting {PRM_DEFAULT_VOTING} and aggregation {aggregation} unless told otherwise."
    )


def _scores(scores: list[float]) -> str:
    return ", ".join(f"{s:.4f}" for s in scores)
