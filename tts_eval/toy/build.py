"""Rebuilding the whole toy world from scratch: test split, tokenizer, two policies, the PRM.

``build_world(out_dir, RECIPE)`` is what ``tts-eval toy train`` runs; the shipped models in
``tts_eval/toy/models`` were made by it with the default recipe, and each model folder's
``training.json`` records the recipe and the command.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from tts_eval.toy.corruption import corrupted_steps, sloppy_solution
from tts_eval.toy.modeling import (
    ModelShape,
    new_policy,
    num_parameters,
    prm_from_language_model,
    write_training_record,
)
from tts_eval.toy.problems import step_labels, test_split, train_split, write_jsonl
from tts_eval.toy.tokenizer import SYSTEM_PROMPT, train_tokenizer
from tts_eval.toy.training import (
    Optimization,
    PRMWithAuxiliaryHeads,
    causal_lm_loss,
    policy_examples,
    prm_examples,
    prm_lm_examples,
    sample_solutions,
    sampled_items,
    step_classifier_loss,
    train,
)


@dataclass
class PolicyRecipe:
    shape: ModelShape
    optimization: Optimization
    slip_rate: float  # chance that a training step's result is a little off
    system_prompt_rate: float = 0.25  # share of prompts with the MATH system prompt


@dataclass
class PRMRecipe:
    init_from: str  # the policy whose trained weights start the PRM's backbone
    extra_layers: int  # new decoder layers on top of it (the PRM is deeper than any policy)
    auxiliary_weight: float  # weight of each auxiliary target's loss (training.AUXILIARY_TARGETS)
    pretraining: Optimization  # language modelling of clean solutions in the PRM's input format
    optimization: Optimization  # step classification
    corrupted_problems: int  # canonical solutions, most with one wrong step, as training data
    corrupted_rate: float  # share of those that get a wrong step
    rollout_problems: int  # problems each policy samples solutions for, labelled exactly
    rollouts_per_problem: int
    rollout_temperature: float
    rollout_max_tokens: int = 128  # longer than any solution of 8 operations


@dataclass
class WorldRecipe:
    seed: int = 0
    train_problems: int = 20000
    tokenizer_vocab_size: int = 320
    policies: dict[str, PolicyRecipe] = field(
        default_factory=lambda: {
            "policy-small": PolicyRecipe(
                ModelShape(64, 2, 2, 256, 0.1), Optimization(steps=1500, batch_size=32, lr=3e-3), slip_rate=0.2
            ),
            "policy-large": PolicyRecipe(
                ModelShape(128, 3, 4, 384, 0.07), Optimization(steps=1000, batch_size=32, lr=1.5e-3), slip_rate=0.2
            ),
        }
    )
    prm: PRMRecipe = field(
        default_factory=lambda: PRMRecipe(
            init_from="policy-large",
            extra_layers=2,
            auxiliary_weight=0.5,
            pretraining=Optimization(steps=100, batch_size=32, lr=1e-3, warmup=30),
            optimization=Optimization(steps=1600, batch_size=32, lr=1e-3),
            corrupted_problems=12000,
            corrupted_rate=0.6,
            rollout_problems=1000,
            rollouts_per_problem=4,
            rollout_temperature=1.0,
        )
    )


def miniature(recipe: WorldRecipe, steps: int = 3) -> WorldRecipe:
    """The same recipe shrunk to a few training steps on a little data (for tests)."""
    tiny = Optimization(steps=steps, batch_size=4, lr=1e-3, warmup=1)
    return replace(
        recipe,
        train_problems=64,
        policies={k: replace(v, optimization=tiny) for k, v in recipe.policies.items()},
        prm=replace(
            recipe.prm,
            pretraining=tiny,
            optimization=tiny,
            corrupted_problems=32,
            rollout_problems=4,
            rollouts_per_problem=2,
            rollout_max_tokens=16,
        ),
    )


def build_world(
    out_dir: Path, recipe: WorldRecipe, *, command: str, log: Callable[[str], None] = print
) -> dict[str, dict]:
    """Write ``data/test.jsonl`` and ``models/{policy-*,prm}`` under ``out_dir``; return a
    summary per model (parameters, training seconds)."""
    out_dir = Path(out_dir)
    started = time.time()
    write_jsonl(test_split(), out_dir / "data" / "test.jsonl")
    problems = train_split(recipe.train_problems)
    rng = random.Random(recipe.seed)

    corpus = [SYSTEM_PROMPT, "system user assistant"] * 20
    for p in problems[:3000]:
        corpus += [p.question, p.solution]
    tokenizer = train_tokenizer(corpus, vocab_size=recipe.tokenizer_vocab_size)
    log(f"tokenizer: {len(tokenizer)} tokens")

    summary: dict[str, dict] = {}
    policies = {}
    for index, (name, policy_recipe) in enumerate(recipe.policies.items()):
        pairs, with_system = _policy_data(problems, policy_recipe, rng)
        examples = policy_examples(tokenizer, pairs, with_system)
        model = new_policy(policy_recipe.shape, tokenizer, seed=recipe.seed + index)
        log(f"{name}: {num_parameters(model):,} parameters, {policy_recipe.optimization.steps} steps")
        stats = train(
            model,
            examples,
            replace(policy_recipe.optimization, seed=recipe.seed + index),
            causal_lm_loss,
            tokenizer.pad_token_id,
            log=log,
        )
        target = out_dir / "models" / name
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
        record = {"recipe": asdict(policy_recipe), "world": _world_fields(recipe), "command": command, **stats}
        write_training_record(target, record)
        summary[name] = {"parameters": num_parameters(model), **stats}
        policies[name] = model

    summary["prm"] = _build_prm(
        out_dir / "models" / "prm", recipe, recipe.prm, tokenizer, problems, policies, rng, command=command, log=log
    )
    summary["total_seconds"] = {"seconds": round(time.time() - started, 1)}
    (out_dir / "models" / "build.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _policy_data(problems, policy_recipe: PolicyRecipe, rng: random.Random) -> tuple[list[tuple[str, str]], list[bool]]:
    """A policy's training pairs (question, sloppy solution) and which prompts get the system
    prompt; draws from ``rng`` in a fixed order (``build_prm`` replays the draws)."""
    pairs = [(p.question, sloppy_solution(p, rng, policy_recipe.slip_rate)) for p in problems]
    with_system = [rng.random() < policy_recipe.system_prompt_rate for _ in pairs]
    return pairs, with_system


def _build_prm(
    target: Path,
    recipe: WorldRecipe,
    prm_recipe: PRMRecipe,
    tokenizer,
    problems,
    policies: dict,
    rng: random.Random,
    *,
    command: str,
    log: Callable[[str], None],
) -> dict:
    """Train the PRM on the policies' rollouts and corrupted solutions; save it to ``target``."""
    items = []
    rollout_problems = problems[-prm_recipe.rollout_problems :] if prm_recipe.rollout_problems else []
    t0 = time.time()
    for index, model in enumerate(policies.values()):
        samples = sample_solutions(
            model,
            tokenizer,
            [p.question for p in rollout_problems],
            n=prm_recipe.rollouts_per_problem,
            temperature=prm_recipe.rollout_temperature,
            max_new_tokens=prm_recipe.rollout_max_tokens,
            seed=recipe.seed + 100 + index,
        )
        items += sampled_items(rollout_problems, samples)
    rollout_seconds = round(time.time() - t0, 1)
    for p in problems[: prm_recipe.corrupted_problems]:
        steps = corrupted_steps(p, rng) if rng.random() < prm_recipe.corrupted_rate else p.steps
        items.append((p, steps))
    labels = [ok for p, steps in items for ok in step_labels(p, steps)]
    log(
        f"prm data: {len(items)} solutions, {len(labels)} steps, {sum(labels) / len(labels):.0%} right "
        f"({rollout_seconds}s of rollouts)"
    )
    # Like Qwen2.5-Math-PRM, the PRM starts from a math language model: the chosen policy,
    # trained further on clean solutions written in the PRM's own input format.
    base = copy.deepcopy(policies[prm_recipe.init_from])
    clean = [(p.question, p.steps) for p in problems]
    log(f"prm: language modelling from {prm_recipe.init_from}, {prm_recipe.pretraining.steps} steps")
    pretraining = train(
        base,
        prm_lm_examples(tokenizer, clean),
        replace(prm_recipe.pretraining, seed=recipe.seed + 10),
        causal_lm_loss,
        tokenizer.pad_token_id,
        log=log,
    )
    prm = prm_from_language_model(base, seed=recipe.seed + 11, extra_layers=prm_recipe.extra_layers)
    log(f"prm: {num_parameters(prm):,} parameters, step classification, {prm_recipe.optimization.steps} steps")
    trainee = PRMWithAuxiliaryHeads(prm, prm_recipe.auxiliary_weight)
    stats = train(
        trainee,
        prm_examples(tokenizer, items),
        replace(prm_recipe.optimization, seed=recipe.seed + 11),
        step_classifier_loss,
        tokenizer.pad_token_id,
        log=log,
    )
    stats["pretraining_seconds"] = pretraining["seconds"]
    target = Path(target)
    prm.save(target, tokenizer)
    stats["rollout_seconds"] = rollout_seconds
    record = {
        "recipe": asdict(prm_recipe),
        "world": _world_fields(recipe),
        "command": command,
        "training_steps_labelled": len(labels),
        **stats,
    }
    write_training_record(target, record)
    return {"parameters": num_parameters(prm), **stats}


def build_prm(
    models_dir: Path,
    target: Path,
    recipe: WorldRecipe,
    prm_recipe: PRMRecipe,
    *,
    command: str,
    log: Callable[[str], None] = print,
) -> dict:
    """Train only a PRM, with ``prm_recipe``, from the trained policies and tokenizer in
    ``models_dir`` (a ``models`` folder of ``build_world``, e.g. the shipped one): the same data
    and seeds as ``build_world`` with ``recipe`` would use, so a PRM of the world's own recipe
    comes out as ``build_world`` made it, and a changed ``prm_recipe`` (fewer steps, say)
    differs from it in that alone. Writes ``target`` and returns the PRM's summary."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    models_dir = Path(models_dir)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(models_dir / prm_recipe.init_from)
    problems = train_split(recipe.train_problems)
    rng = random.Random(recipe.seed)
    policies = {}
    for name, policy_recipe in recipe.policies.items():
        _policy_data(problems, policy_recipe, rng)  # replay the draws build_world makes here
        policies[name] = AutoModelForCausalLM.from_pretrained(models_dir / name, dtype=torch.float32).eval()
    return _build_prm(Path(target), recipe, prm_recipe, tokenizer, problems, policies, rng, command=command, log=log)


def _world_fields(recipe: WorldRecipe) -> dict:
    return {
        "seed": recipe.seed,
        "train_problems": recipe.train_problems,
        "tokenizer_vocab_size": recipe.tokenizer_vocab_size,
        "torch_threads": torch.get_num_threads(),
    }
