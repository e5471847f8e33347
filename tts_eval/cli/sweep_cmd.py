"""``tts-eval sweep``: run a strategy x budget x aggregation x voting grid on one policy, PRM
and task, keeping every problem's outcome for ``tts-eval plan``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tts_eval.policies import BACKENDS
from tts_eval.scoring import AGGREGATIONS
from tts_eval.search_options import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_PF_TEMPERATURE,
    DEFAULT_RESAMPLING,
    DEFAULT_TEMPERATURE,
    default,
    help_text,
)
from tts_eval.voting import VOTINGS


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _budgets(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(b) for b in _csv(text))
    except ValueError:
        raise ValueError(f"--budgets {text!r}: give whole numbers separated by commas, e.g. 4,16,64") from None


def sweep(
    problems: Annotated[
        Path, typer.Argument(help="JSONL; each line has 'problem' (or 'question'), 'answer' and optionally 'id'.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write (new, empty, or this sweep's, to resume).")],
    policy: Annotated[str, typer.Option(help="Policy model: Hub id or local folder.")],
    prm: Annotated[str, typer.Option(help="PRM name (see 'tts-eval prm list') or YAML path.")],
    task: Annotated[
        str, typer.Option(help="Task name the table's rule will match, e.g. math500_tts (the lm-eval task).")
    ],
    prm_model: Annotated[str | None, typer.Option(help="Override the PRM's model (e.g. a local folder).")] = None,
    budgets: Annotated[str, typer.Option(help="Budgets N, comma-separated.")] = "4,16,64",
    strategies: Annotated[
        str,
        typer.Option(help="Strategies, comma-separated (majority, best_of_n, beam_search, dvts, particle_filtering)."),
    ] = "majority,best_of_n,beam_search,dvts",
    aggregations: Annotated[
        str, typer.Option(help=f"Aggregations, comma-separated ({', '.join(AGGREGATIONS)}).")
    ] = "min,last",
    votings: Annotated[str, typer.Option(help=f"Votings, comma-separated ({', '.join(VOTINGS)}).")] = ",".join(VOTINGS),
    beam_size: Annotated[int, typer.Option(help=help_text("beam_size"))] = default("beam_size"),
    probe_fraction: Annotated[float, typer.Option(help="Compute-optimal probe: this share of N ...")] = 0.25,
    probe_min: Annotated[int, typer.Option(help="... and at least this many solutions.")] = 2,
    backend: Annotated[str, typer.Option(help=f"Policy backend: {' | '.join(BACKENDS)}")] = "hf",
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = DEFAULT_TEMPERATURE,
    max_tokens: Annotated[int, typer.Option(help=help_text("max_tokens"))] = DEFAULT_MAX_TOKENS,
    max_step_tokens: Annotated[int, typer.Option(help=help_text("max_step_tokens"))] = default("max_step_tokens"),
    max_steps: Annotated[int, typer.Option(help=help_text("max_steps"))] = default("max_steps"),
    system_prompt: Annotated[str | None, typer.Option(help="System prompt for the policy's chat template.")] = None,
    seed: Annotated[int, typer.Option(help=help_text("seed"))] = default("seed"),
    subsets: Annotated[int, typer.Option(help="Subsets per problem and budget beyond which votes are sampled.")] = 200,
    limit: Annotated[int | None, typer.Option(help="Only the first LIMIT problems.")] = None,
    pf_temperature: Annotated[float, typer.Option(help=help_text("pf_temperature"))] = DEFAULT_PF_TEMPERATURE,
    resampling: Annotated[str, typer.Option(help=help_text("resampling"))] = DEFAULT_RESAMPLING,
) -> None:
    """Run every strategy, budget, aggregation and voting on one policy, PRM and task."""
    from pydantic import ValidationError

    from tts_eval.compute_optimal.table import Probe
    from tts_eval.planning.sweep import SweepError, SweepSettings, read_problems, run_sweep
    from tts_eval.validation import describe_errors

    try:
        settings = SweepSettings(
            budgets=_budgets(budgets),
            strategies=_csv(strategies),
            aggregations=_csv(aggregations),
            votings=_csv(votings),
            beam_size=beam_size,
            probe=Probe(fraction=probe_fraction, min=probe_min),
            temperature=temperature,
            max_tokens=max_tokens,
            max_step_tokens=max_step_tokens,
            max_steps=max_steps,
            seed=seed,
            max_subsets=subsets,
            pf_temperature=pf_temperature,
            resampling=resampling,
        )
        rows = read_problems(problems, limit)
    except ValidationError as err:  # the probe's options
        typer.echo(f"Error: {describe_errors(err, label='probe ')} (--probe-fraction, --probe-min)", err=True)
        raise typer.Exit(code=2) from None
    except (SweepError, ValueError) as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(code=2) from None
    from tts_eval.cli.loading import load_models

    options = {} if system_prompt is None else {"system_prompt": system_prompt}
    pol, reward_model = load_models(policy, backend, options, prm, prm_model)
    try:
        run_sweep(rows, pol, reward_model, settings, out, task=task, progress=True, log=typer.echo)
    except SweepError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(
        f"wrote the sweep of {len(rows)} problems to {out}; fit a table with: tts-eval plan {out} --out table.yaml"
    )
