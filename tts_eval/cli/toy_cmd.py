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
    out: Annotated[Path, typer.Option("--out", help="Folder to write data/test.jsonl and models/{policy-small,policy-large,prm} into.")],
    seed: Annotated[int, typer.Option(help="Seed of the data order, corruptions and initial weights.")] = 0,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads for torch.")] = 2,
    miniature: Annotated[
        bool, typer.Option("--miniature", help="A few training steps on a little data: checks the whole pipeline in seconds.")
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
