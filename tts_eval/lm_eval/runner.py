"""``tts-eval run``: an lm-eval evaluation of the ``tts`` model through lm-eval's Python API.

It indexes only tts-eval's tasks (and ``include_path``), not lm-eval's ~14,700 built-in ones
that the stock CLI reads at every start, then runs ``lm_eval.simple_evaluate`` and saves
through lm-eval's ``EvaluationTracker``: the output folder looks exactly like
``lm_eval --output_path``'s (``<output_path>/<policy>/results_<date>.json`` and
``samples_<task>_<date>.jsonl``), plus the resume checkpoint in ``tts_checkpoints/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tts_eval.lm_eval.settings import parse_model_args


class RunError(ValueError):
    """A ``tts-eval run`` argument is unusable; the message says which and what to do."""


def parse_model_args_text(text: str) -> dict[str, Any]:
    """``key=value,key=value`` (lm-eval's syntax, values typed as lm-eval types them) or a
    JSON object."""
    from lm_eval.utils import simple_parse_args_string

    text = text.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as err:
            raise RunError(f"--model_args is not valid JSON ({err.msg})") from None
        if not isinstance(parsed, dict):
            raise RunError("--model_args JSON must be an object of key: value pairs")
        return parsed
    for part in filter(None, text.split(",")):
        if "=" not in part:
            raise RunError(f"--model_args: {part!r} is not key=value (separate pairs with commas)")
    return simple_parse_args_string(text)


def run_evaluation(
    model_args: dict[str, Any],
    tasks: list[str],
    *,
    output_path: str | Path | None = None,
    log_samples: bool = False,
    limit: float | None = None,
    include_path: list[str] | None = None,
    builtin_tasks: bool = False,
    apply_chat_template: bool | str = False,
    system_instruction: str | None = None,
    gen_kwargs: dict[str, Any] | None = None,
    bootstrap_iters: int = 100000,
) -> dict[str, Any]:
    """Evaluate the ``tts`` model on ``tasks`` and save like ``lm_eval`` does; return lm-eval's
    results dict (without the samples)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if log_samples and not output_path:
        raise RunError("--log_samples needs --output_path (where the samples files go)")
    parse_model_args(model_args)  # every model_args mistake, before anything loads
    if output_path is not None:
        from tts_eval.lm_eval.settings import ModelArgsError, _check_output_path

        try:
            _check_output_path(Path(output_path).expanduser())
        except ModelArgsError as err:
            raise RunError(str(err)) from None

    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from tts_eval.lm_eval import registration

    registration.register()  # also when the interpreter started without the .pth hook
    for path in include_path or []:
        if not Path(path).is_dir():
            raise RunError(f"--include_path {path}: no such folder")
    # The tracker comes first, as in lm-eval's CLI: the model finds the output path there.
    tracker = EvaluationTracker(output_path=None if output_path is None else str(output_path))
    manager = TaskManager(include_path=include_path or None, include_defaults=builtin_tasks, metadata=dict(model_args))
    task_names = _resolve_tasks(manager, tasks, builtin_tasks)

    results = lm_eval.simple_evaluate(
        model=registration.MODEL_NAME,
        model_args=dict(model_args),
        tasks=task_names,
        limit=limit,
        log_samples=log_samples,
        evaluation_tracker=tracker,
        task_manager=manager,
        apply_chat_template=apply_chat_template,
        fewshot_as_multiturn=bool(apply_chat_template),
        system_instruction=system_instruction,
        gen_kwargs=gen_kwargs,
        bootstrap_iters=bootstrap_iters,
    )
    samples = results.pop("samples", None) if log_samples else None
    tracker.save_results_aggregated(results=results, samples=samples)
    if log_samples:
        assert samples is not None, "lm-eval returns the samples when asked to log them"
        for task_name in results["configs"]:
            tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    return results


def _resolve_tasks(manager, tasks: list[str], builtin_tasks: bool) -> list[str]:
    names = [t for item in tasks for t in item.split(",") if t]
    if not names:
        raise RunError("--tasks is empty; give e.g. --tasks math500_tts,aime24_tts")
    resolved: list[str] = []
    for name in names:
        matches = manager.match_tasks([name])
        if not matches:
            hint = "" if builtin_tasks else " (lm-eval's built-in tasks need --builtin_tasks, or the lm_eval CLI)"
            known = ", ".join(manager.all_tasks)
            raise RunError(f"--tasks: unknown task {name!r}; known here: {known}{hint}")
        resolved += [m for m in matches if m not in resolved]
    return resolved


def results_table(results: dict[str, Any]) -> str:
    from lm_eval.utils import make_table

    table = make_table(results)
    if "groups" in results:
        table += "\n" + make_table(results, "groups")
    return table
