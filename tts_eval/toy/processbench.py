"""The toy world's ProcessBench: the toy policies' own solutions, each with the index of its
first wrong step, known exactly (``step_labels``).

For each development problem of the test split (the first ``DEVELOPMENT_PROBLEMS``; the rest
is held out for final reports) both policies sample solutions as a search would (the
``hf`` policy, temperature 0.7, one seed per problem); one of them becomes a sample: an
erroneous one for even problems and a correct one for odd ones when there is such a
solution, else one of the other kind, so the set is about balanced, as ProcessBench is.
Solutions that stop early with every step right (cut off: no wrong step, no answer) are left
out, since ProcessBench's ``-1`` means a complete, correct solution.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tts_eval.grading import extract_answer, is_equivalent
from tts_eval.processbench import NO_ERROR
from tts_eval.steps import split_steps, step_content
from tts_eval.toy.problems import ToyProblem, step_labels

if TYPE_CHECKING:
    from tts_eval.policies import Policy

GENERATORS = ("policy-small", "policy-large")
SAMPLES_PER_POLICY = 4
TEMPERATURE = 0.7
MAX_TOKENS = 128  # longer than any solution of 8 operations


def first_wrong_step(problem: ToyProblem, steps: Sequence[str]) -> int | None:
    """ProcessBench's label of a solution: the index of its first wrong step, ``NO_ERROR``
    when it is the canonical solution, None when it stops early with every step right."""
    labels = step_labels(problem, list(steps))
    if all(labels):
        return NO_ERROR if len(labels) == len(problem.steps) else None
    return labels.index(False)


def sample_row(index: int, problem: ToyProblem, generator: str, sample: int, text: str) -> dict | None:
    """One ProcessBench row for a sampled solution ``text`` (None when it has no label)."""
    steps = [step_content(s) for s in split_steps(text)]
    steps = [s for s in steps if s]
    if not steps:
        return None
    label = first_wrong_step(problem, steps)
    if label is None:
        return None
    answer = extract_answer(text)
    return {
        "id": f"toy/{index}/{generator}/{sample}",
        "generator": generator,
        "problem": problem.question,
        "steps": steps,
        "final_answer_correct": answer is not None and is_equivalent(problem.answer, answer),
        "label": label,
        "difficulty": problem.difficulty,
        "problem_index": index,
    }


def build_processbench(
    problems: Sequence[ToyProblem],
    policies: dict[str, Policy],
    *,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[dict]:
    """One row per problem (where any solution has a label), from ``policies`` (name ->
    ``load_policy`` result) sampling ``SAMPLES_PER_POLICY`` solutions each."""
    rng = random.Random(seed)
    pools: list[list[dict]] = [[] for _ in problems]
    for g, (name, policy) in enumerate(policies.items()):
        prompts = [policy.format_prompt(p.question) for p in problems]
        seeds = [seed * 1_000_003 + 7919 * g + i for i in range(len(problems))]
        completions = policy.generate(
            prompts,
            n=SAMPLES_PER_POLICY,
            temperature=TEMPERATURE,
            top_p=1.0,
            max_tokens=MAX_TOKENS,
            stop=[],
            seed=seeds,
        )
        for i, (problem, sampled) in enumerate(zip(problems, completions)):
            for j, completion in enumerate(sampled):
                row = sample_row(i, problem, name, j, completion.text)
                if row is not None:
                    pools[i].append(row)
        if progress is not None:
            progress(g + 1)
    rows = []
    for i, pool in enumerate(pools):
        wanted_error = i % 2 == 0
        preferred = [r for r in pool if (r["label"] != NO_ERROR) == wanted_error]
        chosen = preferred or pool
        if chosen:
            rows.append(rng.choice(chosen))
    return rows


def write_processbench(out: Path, *, problems: int, seed: int, models_dir: Path | None = None) -> list[dict]:
    """Sample, label and write the toy ProcessBench for the first ``problems`` test problems."""
    import json

    from tts_eval.toy import DEVELOPMENT_PROBLEMS, load_test_problems
    from tts_eval.toy.evaluate import load_toy_policy

    if not 1 <= problems <= DEVELOPMENT_PROBLEMS:
        raise ValueError(
            f"--problems {problems}: the toy ProcessBench is drawn from the development problems 0-{DEVELOPMENT_PROBLEMS - 1} "
            f"of the test split only (the rest is held out); give 1 to {DEVELOPMENT_PROBLEMS}"
        )
    toy = load_test_problems()[:problems]
    policies = {name: load_toy_policy(name.removeprefix("policy-"), models_dir) for name in GENERATORS}
    rows = build_processbench(toy, policies, seed=seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return rows
