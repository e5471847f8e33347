"""The ``tts-eval`` command line. Each command group lives in a module of its own and
imports its heavy dependencies lazily, so ``tts-eval --help`` stays fast."""

from __future__ import annotations

import typer

from tts_eval.cli import demo_cmd, leaderboard_cmd, plan_cmd, run_cmd, search_cmd, sweep_cmd
from tts_eval.cli.prm_cmd import prm_app
from tts_eval.cli.toy_cmd import toy_app
from tts_eval.lm_eval.benchmarks import pin_data_dir

pin_data_dir()  # a relative data folder means the one beside where the command was typed

app = typer.Typer(
    help="Test-time scaling for language models on competition math.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo_cmd.demo)
app.command("search")(search_cmd.search)
app.command("run")(run_cmd.run)
app.command("leaderboard")(leaderboard_cmd.leaderboard)
app.command("sweep")(sweep_cmd.sweep)
app.command("plan")(plan_cmd.plan)
app.add_typer(prm_app, name="prm")
app.add_typer(toy_app, name="toy")
