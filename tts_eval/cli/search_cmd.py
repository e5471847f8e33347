"""``tts-eval search``: a JSONL of problems in, a JSONL of search results out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tts_eval.policies import BACKENDS
from tts_eval.search_options import DEFAULT_MAX_TOKENS, default, help_text
from tts_eval.strategies import STRATEGIES
from tts_eval.strategies.names import BEST_OF_N


def search(
    problems: Annotated[
        Path, typer.Argument(help="JSONL; each line has 'problem' or 'question' (and optionally 'answer').")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL to write, one result per problem.")],
    policy: Annotated[str, typer.Option(help="Policy model: Hub id or local folder.")],
    strategy: Annotated[str, typer.Option(help=" | ".join(STRATEGIES))] = BEST_OF_N,  # search's own defaults follow
    prm: Annotated[str | None, typer.Option(help="PRM name (see 'tts-eval prm list') or YAML path.")] = None,
    prm_model: Annotated[str | None, typer.Option(help="Override the PRM's model (e.g. a local folder).")] = None,
    n: Annotated[int, typer.Option(help=help_text("n"))] = 4,
    beam_size: Annotated[int, typer.Option(help=help_text("beam_size"))] = default("beam_size"),
    aggregation: Annotated[str | None, typer.Option(help=help_text("aggregation"))] = None,
    voting: Annotated[str | None, typer.Option(help=help_text("voting"))] = None,
    backend: Annotated[str, typer.Option(help=f"Policy backend: {' | '.join(BACKENDS)}")] = "hf",
    temperature: Annotated[float | None, typer.Option(help=help_text("temperature"))] = None,
    max_tokens: Annotated[int, typer.Option(help=help_text("max_tokens"))] = DEFAULT_MAX_TOKENS,
    max_step_tokens: Annotated[int, typer.Option(help=help_text("max_step_tokens"))] = default("max_step_tokens"),
    system_prompt: Annotated[str | None, typer.Option(help="System prompt for the policy's chat template.")] = None,
    seed: Annotated[int, typer.Option(help=help_text("seed"))] = default("seed"),
    limit: Annotated[int | None, typer.Option(help="Only the first LIMIT problems.")] = None,
    table: Annotated[str | None, typer.Option(help=help_text("table"))] = None,
    task: Annotated[str | None, typer.Option(help="compute_optimal: the task name the table's rules match.")] = None,
    pf_temperature: Annotated[float | None, typer.Option(help=help_text("pf_temperature"))] = None,
    resampling: Annotated[str | None, typer.Option(help=help_text("resampling"))] = None,
) -> None:
    """Search every problem of a JSONL file and write one result per line."""
    from tts_eval import Problem
    from tts_eval import search as run_search
    from tts_eval.cli.loading import load_models
    from tts_eval.grading import is_equivalent
    from tts_eval.serialization import result_to_dict

    rows = _read_problems(problems, limit)
    voting, aggregation = _check_settings(
        strategy,
        prm,
        prm_model,
        n=n,
        beam_size=beam_size,
        voting=voting,
        aggregation=aggregation,
        pf_temperature=pf_temperature,
        resampling=resampling,
    )
    options = {} if system_prompt is None else {"system_prompt": system_prompt}
    pol, reward_model = load_models(policy, backend, options, prm, prm_model)
    batch = [Problem(question=q, prompt=pol.format_prompt(q)) for q, _ in rows]
    results = run_search(
        batch,
        pol,
        reward_model,
        strategy=strategy,
        n=n,
        beam_size=beam_size,
        aggregation=aggregation,
        voting=voting,
        temperature=temperature,
        max_tokens=max_tokens,
        max_step_tokens=max_step_tokens,
        seed=seed,
        table=table,
        task=task,
        pf_temperature=pf_temperature,
        resampling=resampling,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    correct = 0
    with open(output, "w", encoding="utf-8") as f:
        for (question, gold), result in zip(rows, results):
            record = {
                "question": question,
                **result_to_dict(result),
                "strategy": strategy,
                "voting": voting,
                "aggregation": aggregation,
            }
            if gold is not None:
                record["gold"] = gold
                record["correct"] = result.answer is not None and is_equivalent(gold, result.answer)
                correct += record["correct"]
            f.write(json.dumps(record) + "\n")
    graded = sum(gold is not None for _, gold in rows)
    summary = f"wrote {len(results)} results to {output} ({strategy}, voting {voting}, aggregation {aggregation})"
    if graded:
        summary += f"; accuracy {correct}/{graded} = {correct / graded:.3f}"
    typer.echo(summary)


def _check_settings(
    strategy: str,
    prm: str | None,
    prm_model: str | None,
    *,
    n: int,
    beam_size: int,
    voting: str | None,
    aggregation: str | None,
    pf_temperature: float | None = None,
    resampling: str | None = None,
) -> tuple[str, str]:
    """The voting and aggregation to use, after checking every setting before a model loads;
    a mistake ends the command with one line naming the flag."""
    from tts_eval.cli.loading import fail
    from tts_eval.search import checked_vote_settings

    recommended = None
    if prm is not None:
        from prm_backends.registry import load_spec

        try:
            recommended = load_spec(prm, **({} if prm_model is None else {"model": prm_model})).aggregation
        except ValueError as err:  # names the YAML file, the field and the fix
            fail(f"--prm {prm}: {err}")
    try:
        return checked_vote_settings(
            strategy,
            n=n,
            beam_size=beam_size,
            voting=voting,
            aggregation=aggregation,
            recommended=recommended,
            has_prm=prm is not None,
            cli=True,
            pf_temperature=pf_temperature,
            resampling=resampling,
        )
    except ValueError as err:
        fail(str(err))


def _read_problems(path: Path, limit: int | None) -> list[tuple[str, str | None]]:
    if not path.is_file():
        raise typer.BadParameter(f"{path} does not exist", param_hint="PROBLEMS")
    from tts_eval.jsonl import iter_jsonl

    rows = []
    for line_no, row in iter_jsonl(path, typer.BadParameter):
        question = row.get("problem", row.get("question"))
        if not isinstance(question, str):
            raise typer.BadParameter(f"{path}:{line_no} has no 'problem' or 'question' string", param_hint="PROBLEMS")
        answer = row.get("answer")
        rows.append((question, None if answer is None else str(answer)))
        if limit is not None and len(rows) >= limit:
            break
    return rows
