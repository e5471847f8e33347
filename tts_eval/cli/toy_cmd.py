"""``tts-eval toy``: the offline toy world (tiny trained policies and PRM on chained arithmetic)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

toy_app = typer.Typer(
    help="The offline toy world: chained arithmetic, tiny trained policies and PRM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@toy_app.callback()
def toy() -> None:
    """The offline toy world: chained arithmetic, tiny trained policies and PRM."""


@toy_app.command("train")
def train_command(
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder to write data/test.jsonl and models/{policy-small,policy-large,prm} into."),
    ],
    seed: Annotated[int, typer.Option(help="Seed of the data order, corruptions and initial weights.")] = 0,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads for torch.")] = 2,
    miniature: Annotated[
        bool,
        typer.Option(
            "--miniature", help="A few training steps on a little data: checks the whole pipeline in seconds."
        ),
    ] = False,
) -> None:
    """Rebuild the toy world from scratch, seeded: the test split, the tokenizer, both policies
    and the PRM (about 13 minutes on 2 idle cores).

    The shipped models (tts_eval/toy/models) were made with the defaults; each model folder's
    training.json records the recipe and this command. Use a rebuilt model with
    load_policy("DIR/models/policy-small") or load_prm("toy-prm", model="DIR/models/prm")."""
    import torch

    from tts_eval.toy.build import WorldRecipe, build_world
    from tts_eval.toy.build import miniature as shrink

    torch.set_num_threads(threads)
    command = f"tts-eval toy train --out {shlex.quote(str(out))} --seed {seed} --threads {threads}"
    recipe = WorldRecipe(seed=seed)
    if miniature:
        command += " --miniature"
        recipe = shrink(recipe)
    summary = build_world(out, recipe, command=command, log=typer.echo)
    for name, stats in summary.items():
        typer.echo(f"{name}: {stats}")
    typer.echo(f"wrote {out / 'data' / 'test.jsonl'} and {out / 'models'}")


@toy_app.command("train-prm")
def train_prm_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the PRM checkpoint into.")],
    steps: Annotated[
        int, typer.Option("--steps", min=1, help="Steps of step classification (the world's recipe: 1600).")
    ],
    models: Annotated[
        Path | None,
        typer.Option(
            "--models",
            help="The models folder whose policies and tokenizer the PRM learns from (default: the shipped one).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="The world's seed (the models folder was built with it).")] = 0,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads for torch.")] = 2,
) -> None:
    """Train only a toy PRM, with the world's recipe but STEPS steps of step classification,
    from the trained policies in MODELS (same data and seeds as `tts-eval toy train`): toy PRMs
    of different quality for measuring TTS against PRM quality (docs/toy-world.md)."""
    import dataclasses

    import torch

    from tts_eval.toy import PACKAGE_DIR
    from tts_eval.toy.build import WorldRecipe, build_prm

    torch.set_num_threads(threads)
    recipe = WorldRecipe(seed=seed)
    prm_recipe = dataclasses.replace(recipe.prm, optimization=dataclasses.replace(recipe.prm.optimization, steps=steps))
    command = f"tts-eval toy train-prm --out {shlex.quote(str(out))} --steps {steps} --seed {seed} --threads {threads}"
    if models is not None:
        command += f" --models {shlex.quote(str(models))}"
    summary = build_prm(models or PACKAGE_DIR / "models", out, recipe, prm_recipe, command=command, log=typer.echo)
    typer.echo(f"prm: {summary}")
    typer.echo(f"wrote {out}")


@toy_app.command("processbench")
def processbench_command(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="JSONL file to write (default: the shipped tts_eval/toy/data/processbench.jsonl)."),
    ] = None,
    problems: Annotated[
        int, typer.Option("--problems", help="First K test problems (development half: at most 350).")
    ] = 350,
    seed: Annotated[int, typer.Option(help="Sampling and selection seed.")] = 0,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads for torch.")] = 1,
) -> None:
    """Write the toy ProcessBench: one solution of the toy policies per development problem,
    labelled with its first wrong step (-1: none), about half of them erroneous. The
    processbench_toy task reads the shipped file."""
    import collections

    import torch

    from tts_eval.processbench import NO_ERROR
    from tts_eval.toy import PROCESSBENCH_FILE
    from tts_eval.toy.processbench import write_processbench

    torch.set_num_threads(threads)
    try:
        rows = write_processbench(out or PROCESSBENCH_FILE, problems=problems, seed=seed)
    except ValueError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(code=2) from None
    kinds = collections.Counter("correct" if r["label"] == NO_ERROR else "erroneous" for r in rows)
    typer.echo(
        f"wrote {out or PROCESSBENCH_FILE}: {len(rows)} solutions ({kinds['erroneous']} erroneous, {kinds['correct']} correct)"
    )
