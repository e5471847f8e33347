"""The toy world's generator, step labels and training code: a miniature world is trained
through the same code as the shipped one, saved, and read back the way users read it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tts_eval.steps import split_steps
from tts_eval.toy.corruption import corrupted_steps, sloppy_solution
from tts_eval.toy.problems import (
    MAX_OPS,
    MIN_OPS,
    generate_problems,
    read_jsonl,
    step_labels,
    train_split,
)
from tts_eval.toy.problems import test_split as toy_test_split


def _evaluate(question: str) -> int:
    expression = question.removeprefix("Compute ").removesuffix(".")
    # Python evaluates the same precedence and left-to-right order; divisions are exact here.
    return int(eval(expression.replace("/", "//"), {"__builtins__": {}}))


def test_problems_are_seeded_graded_and_their_solutions_right():
    problems = generate_problems(seed=3, count=70)
    assert problems == generate_problems(seed=3, count=70)
    assert {p.difficulty for p in problems} == set(range(MIN_OPS, MAX_OPS + 1))
    for p in problems:
        steps = split_steps(p.solution)
        assert len(steps) == p.difficulty
        assert "\\boxed{" + p.answer + "}" in steps[-1] and "boxed" not in "".join(steps[:-1])
        assert _evaluate(p.question) == int(p.answer)
        assert step_labels(p, steps) == [True] * len(steps)


def test_shipped_test_split_is_the_generated_one_and_disjoint_from_train():
    from tts_eval.toy import TEST_FILE

    shipped = read_jsonl(TEST_FILE)
    assert shipped == toy_test_split()
    assert len(shipped) >= 500
    assert not {p.question for p in shipped} & {p.question for p in train_split(2000)}


def test_step_labels_mark_the_first_wrong_step_and_everything_after():
    p = generate_problems(seed=1, count=5)[4]  # six operations
    steps = p.steps
    wrong = steps[:2] + ["1 + 1 = 3"] + steps[3:]
    assert step_labels(p, wrong) == [True, True] + [False] * (len(steps) - 2)
    assert step_labels(p, steps + ["extra"]) == [True] * len(steps) + [False]
    assert step_labels(p, ["  " + steps[0] + "\n\n"]) == [True]


def test_corruptions_are_wrong_and_slips_keep_the_format():
    rng = random.Random(0)
    for p in generate_problems(seed=2, count=140):
        labels = step_labels(p, corrupted_steps(p, rng))
        assert not all(labels)
        sloppy = sloppy_solution(p, rng, slip_rate=1.0)
        assert len(split_steps(sloppy)) == p.difficulty and "\\boxed{" in sloppy


@pytest.fixture(scope="module")
def miniature_world(tmp_path_factory) -> Path:
    """``tts-eval toy train --miniature``: the shipped models' recipe and code, a few steps."""
    from typer.testing import CliRunner

    from tts_eval.cli import app

    out = tmp_path_factory.mktemp("toy")
    result = CliRunner().invoke(
        app, ["toy", "train", "--out", str(out), "--seed", "1", "--threads", "1", "--miniature"]
    )
    assert result.exit_code == 0, result.output
    return out


def test_miniature_world_trains_saves_and_loads_like_the_shipped_one(miniature_world):
    import json

    from prm_backends import load_prm
    from tts_eval.policies import load_policy
    from tts_eval.toy.modeling import PRM_ARCHITECTURE

    models = miniature_world / "models"
    command = f"tts-eval toy train --out {miniature_world} --seed 1 --threads 1 --miniature"
    for name in ("policy-small", "policy-large", "prm"):
        record = json.loads((models / name / "training.json").read_text())
        assert record["command"] == command and record["recipe"]["optimization"]["steps"] == 3
        assert record["world"]["seed"] == 1
        assert (models / name / "model.safetensors").is_file()
    assert json.loads((models / "prm" / "config.json").read_text())["architectures"] == [PRM_ARCHITECTURE]

    problems = read_jsonl(miniature_world / "data" / "test.jsonl")[:2]
    small = load_policy(str(models / "policy-small"), backend="hf")
    large = load_policy(str(models / "policy-large"), backend="hf")
    assert large.num_parameters >= 4 * small.num_parameters
    prompt = small.format_prompt(problems[0].question)
    assert prompt.endswith("<|im_start|>assistant\n") and problems[0].question in prompt
    completions = small.generate([prompt], n=2, temperature=1.0, top_p=1.0, max_tokens=8, stop=["\n\n"], seed=0)[0]
    assert len(completions) == 2 and all(0 < c.num_tokens <= 8 for c in completions)

    prm = load_prm("toy-prm", model=str(models / "prm"))
    scores = prm.score_batch([(p.question, p.steps) for p in problems])
    assert [len(s) for s in scores] == [p.difficulty for p in problems]
    assert all(0.0 <= x <= 1.0 for s in scores for x in s)


def test_prm_trained_alone_from_the_saved_policies_is_the_worlds_prm(miniature_world, tmp_path):
    """``build_prm`` replays the world's data and seeds from the saved policies: with the
    world's own recipe it writes the world's PRM byte for byte (so a PRM trained for fewer
    steps differs from the shipped one in its training length alone)."""
    import dataclasses
    import json

    import torch

    from tts_eval.toy.build import WorldRecipe, build_prm, miniature

    torch.set_num_threads(1)  # as the world was built (--threads 1)
    recipe = miniature(WorldRecipe(seed=1))
    models = miniature_world / "models"
    build_prm(models, tmp_path / "same", recipe, recipe.prm, command="same", log=lambda _: None)
    assert (tmp_path / "same" / "model.safetensors").read_bytes() == (models / "prm" / "model.safetensors").read_bytes()
    assert (tmp_path / "same" / "tokenizer.json").read_bytes() == (models / "prm" / "tokenizer.json").read_bytes()

    shorter = dataclasses.replace(recipe.prm, optimization=dataclasses.replace(recipe.prm.optimization, steps=1))
    build_prm(models, tmp_path / "shorter", recipe, shorter, command="shorter", log=lambda _: None)
    assert (tmp_path / "shorter" / "model.safetensors").read_bytes() != (
        models / "prm" / "model.safetensors"
    ).read_bytes()
    record = json.loads((tmp_path / "shorter" / "training.json").read_text())
    assert record["command"] == "shorter" and record["recipe"]["optimization"]["steps"] == 1


def test_auxiliary_targets_name_the_right_and_the_written_values():
    from tts_eval.toy.problems import parse_step
    from tts_eval.toy.training import AUXILIARY_TARGETS, IGNORE, auxiliary_targets

    written, expected = parse_step("58 / 2 = 27"), parse_step("58 / 2 = 29")
    targets = dict(zip(AUXILIARY_TARGETS, auxiliary_targets(written, expected)))
    assert (targets["right result, units"], targets["right result, tens"]) == (9, 2)
    assert (targets["written result, units"], targets["written result, tens"]) == (7, 2)
    assert targets["written operator"] == targets["expected operator"] == 3
    assert (targets["written box"], targets["expected box"]) == (0, 0)
    beyond = auxiliary_targets(parse_step("7 - 9 = \\boxed{-2}"), None)
    assert dict(zip(AUXILIARY_TARGETS, beyond))["written result, units"] == IGNORE  # -2 is outside 0..99
    assert dict(zip(AUXILIARY_TARGETS, beyond))["expected operator"] == IGNORE  # no step expected there
