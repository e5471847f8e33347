"""``tts-eval run``: evaluate the ``tts`` lm-eval model, with lm-eval's arguments and output."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def run(
    model_args: Annotated[
        str,
        typer.Option(
            "--model_args",
            "--model-args",
            "-a",
            help="tts model settings as key=value,key=value or a JSON object (see docs/lm-eval.md).",
        ),
    ],
    tasks: Annotated[
        list[str],
        typer.Option("--tasks", "-t", help="Task names, comma-separated or repeated (e.g. math500_tts,aime24_tts)."),
    ],
    output_path: Annotated[
        Path | None,
        typer.Option(
            "--output_path", "--output-path", "-o", help="Folder for results, samples and the resume checkpoint."
        ),
    ] = None,
    log_samples: Annotated[
        bool, typer.Option("--log_samples", "--log-samples", "-s", help="Write every problem's search result.")
    ] = False,
    limit: Annotated[
        float | None,
        typer.Option("--limit", "-L", help="Only the first LIMIT problems per task (a count, or a fraction < 1)."),
    ] = None,
    include_path: Annotated[
        list[str] | None, typer.Option("--include_path", "--include-path", help="Another folder of task YAMLs.")
    ] = None,
    builtin_tasks: Annotated[
        bool,
        typer.Option(
            "--builtin_tasks", "--builtin-tasks", help="Also index lm-eval's built-in tasks (gsm8k, ...): slower start."
        ),
    ] = False,
    apply_chat_template: Annotated[
        bool,
        typer.Option(
            "--apply_chat_template",
            "--apply-chat-template",
            help="Let lm-eval build chat prompts with the policy's template.",
        ),
    ] = False,
    system_instruction: Annotated[
        str | None,
        typer.Option(
            "--system_instruction", "--system-instruction", help="System message lm-eval adds to each prompt."
        ),
    ] = None,
) -> None:
    """Evaluate a test-time-scaling setup on lm-eval tasks; a killed run resumes where it stopped."""
    from lm_eval.utils import setup_logging

    from tts_eval.lm_eval.runner import RunError, parse_model_args_text, results_table, run_evaluation
    from tts_eval.lm_eval.settings import ModelArgsError
    from tts_eval.memory_plan import MemoryPlanError

    setup_logging()
    try:
        results = run_evaluation(
            parse_model_args_text(model_args),
            tasks,
            output_path=output_path,
            log_samples=log_samples,
            limit=limit,
            include_path=include_path,
            builtin_tasks=builtin_tasks,
            apply_chat_template=apply_chat_template,
            system_instruction=system_instruction,
        )
    except (RunError, ModelArgsError, MemoryPlanError) as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(results_table(results))
