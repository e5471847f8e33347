"""Training the toy world's policies and PRM from scratch, seeded, on a CPU.

Policies learn from the canonical solutions with slips injected at ``slip_rate`` per step, so
they make the small, locally checkable mistakes a careful verifier catches. The PRM learns
exact step labels (a step is right when it and every step before it match the canonical
solution) on the policies' own samples plus corrupted canonical solutions (a correct prefix,
then a wrong step), about half of them wrong.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from tts_eval.toy.problems import ParsedStep, ToyProblem, apply_operation, parse_step, step_labels
from tts_eval.toy.tokenizer import STEP_TAG

IGNORE = -100


@dataclass
class Optimization:
    steps: int
    batch_size: int
    lr: float
    warmup: int = 100
    weight_decay: float = 0.01
    seed: int = 0


def policy_prompt(tokenizer, question: str, system_prompt: str | None = None) -> str:
    """The question in the chat template, as ``load_policy(..., system_prompt=...)`` formats it."""
    messages = [{"role": "user", "content": question}]
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def prm_input(tokenizer, question: str, steps: list[str]) -> str:
    """The Qwen2.5-Math-PRM input: system prompt, question, steps each followed by the tag."""
    from tts_eval.steps import step_content
    from tts_eval.toy.tokenizer import SYSTEM_PROMPT

    assistant = "".join(step_content(s) + STEP_TAG for s in steps)
    return tokenizer.apply_chat_template(
        [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": question},
            {"role": "assistant", "content": assistant},
        ],
        tokenize=False,
    )


def policy_examples(
    tokenizer, pairs: list[tuple[str, str]], with_system: list[bool] | None = None
) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) for (question, solution) pairs: the loss covers the solution and
    the end-of-turn token only. ``with_system`` marks the prompts that get the MATH system
    prompt (so the policy works with and without one)."""
    from tts_eval.toy.tokenizer import SYSTEM_PROMPT

    examples = []
    for i, (question, solution) in enumerate(pairs):
        system = SYSTEM_PROMPT if with_system and with_system[i] else None
        prompt = tokenizer(policy_prompt(tokenizer, question, system), add_special_tokens=False)["input_ids"]
        target = tokenizer(solution, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        examples.append((prompt + target, [IGNORE] * len(prompt) + target))
    return examples


# What the PRM is taught to read off each step tag while it learns to judge the step (training
# only; the shipped checkpoint keeps just the 2-class head). Telling right from wrong is an
# equality test (is the written result the right one?), which gradient descent barely learns
# from the verdict alone; naming the right result, the written one, and what the question
# asks for at each tag is ordinary prediction, which it learns quickly, and with those at the
# tag the verdict follows.
AUXILIARY_TARGETS = {  # name -> number of classes
    "right result, units": 10,
    "right result, tens": 10,
    "written result, units": 10,
    "written result, tens": 10,
    "written first operand, units": 10,
    "written first operand, tens": 10,
    "expected first operand, units": 10,
    "expected first operand, tens": 10,
    "written operator": 4,
    "expected operator": 4,
    "written second operand": 10,
    "expected second operand": 10,
    "written box": 2,
    "expected box": 2,
}
_OPERATOR_CLASS = {op: i for i, op in enumerate("+-*/")}


def _digits(value: int | None) -> tuple[int, int]:
    if value is None or not 0 <= value <= 99:
        return IGNORE, IGNORE
    return value % 10, value // 10


def auxiliary_targets(written: ParsedStep | None, expected: ParsedStep | None) -> list[int]:
    """One class (or IGNORE) per entry of AUXILIARY_TARGETS for a step as written and as the
    canonical solution has it at that position."""
    right = apply_operation(written.a, written.op, written.b) if written else None
    out = [
        *_digits(right),
        *_digits(written.result if written else None),
        *_digits(written.a if written else None),
        *_digits(expected.a if expected else None),
    ]
    out += [_OPERATOR_CLASS[written.op] if written else IGNORE, _OPERATOR_CLASS[expected.op] if expected else IGNORE]
    out += [written.b if written and written.b <= 9 else IGNORE, expected.b if expected and expected.b <= 9 else IGNORE]
    out += [int(written.boxed) if written else IGNORE, int(expected.boxed) if expected else IGNORE]
    return out


def prm_examples(
    tokenizer, items: list[tuple[ToyProblem, list[str]]]
) -> list[tuple[list[int], list[int], list[list[int]]]]:
    """(input ids, labels, auxiliary targets) for (problem, steps) in the PRM's input format:
    each step tag is labelled with the step's exact label (:func:`step_labels`) and carries the
    AUXILIARY_TARGETS of its step, one row per tag."""
    tag = tokenizer.convert_tokens_to_ids(STEP_TAG)
    examples = []
    for problem, steps in items:
        labels = step_labels(problem, steps)
        ids = tokenizer(prm_input(tokenizer, problem.question, steps), add_special_tokens=False)["input_ids"]
        positions = [i for i, t in enumerate(ids) if t == tag]
        if len(positions) != len(labels):
            raise ValueError(f"{len(positions)} step tags for {len(labels)} steps in {problem.question!r}")
        target = [IGNORE] * len(ids)
        for pos, ok in zip(positions, labels):
            target[pos] = int(ok)
        canonical = [parse_step(c) for c in problem.steps]
        aux = [
            auxiliary_targets(parse_step(s), canonical[k] if k < len(canonical) else None) for k, s in enumerate(steps)
        ]
        examples.append((ids, target, aux))
    return examples


def prm_lm_examples(tokenizer, items: list[tuple[str, list[str]]]) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) for language modelling of (question, right steps) in the PRM's input
    format: the loss covers every token."""
    examples = []
    for question, steps in items:
        ids = tokenizer(prm_input(tokenizer, question, steps), add_special_tokens=False)["input_ids"]
        examples.append((ids, list(ids)))
    return examples


def _batch(examples, pad_id: int):
    width = max(len(example[0]) for example in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (ids, target, *_) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(ids)] = torch.tensor(target)
        mask[row, : len(ids)] = 1
    return input_ids, labels, mask


def _length_grouped_batches(examples, batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of batches in random order, each of examples of similar length (less padding)."""
    shuffled = list(range(len(examples)))
    rng.shuffle(shuffled)
    batches = []
    window = batch_size * 32
    for start in range(0, len(shuffled), window):
        chunk = sorted(shuffled[start : start + window], key=lambda i: len(examples[i][0]))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


ModelT = TypeVar("ModelT", bound=nn.Module)
ExampleT = TypeVar("ExampleT", bound=tuple)  # (input ids, targets, ...): what the loss function reads


def train(
    model: ModelT,
    examples: list[ExampleT],
    opt: Optimization,
    loss_fn: Callable[[ModelT, list[ExampleT], int], torch.Tensor],
    pad_id: int,
    log: Callable[[str], None] = print,
) -> dict:
    """AdamW with linear warm-up and cosine decay over shuffled batches of ``examples``."""
    rng = random.Random(opt.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=opt.lr, weight_decay=opt.weight_decay, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < opt.warmup:
            return (step + 1) / opt.warmup
        progress = (step - opt.warmup) / max(1, opt.steps - opt.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    order: list[list[int]] = []
    model.train()
    start, recent = time.time(), []
    for step in range(opt.steps):
        if not order:
            order = _length_grouped_batches(examples, opt.batch_size, rng)
        batch = [examples[i] for i in order.pop()]
        loss = loss_fn(model, batch, pad_id)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        recent.append(loss.item())
        if (step + 1) % max(1, opt.steps // 10) == 0 or step + 1 == opt.steps:
            log(f"  step {step + 1}/{opt.steps}  loss {sum(recent) / len(recent):.4f}  {time.time() - start:.0f}s")
            recent = []
    model.eval()
    return {"seconds": round(time.time() - start, 1)}


def causal_lm_loss(model, examples, pad_id: int) -> torch.Tensor:
    input_ids, labels, mask = _batch(examples, pad_id)
    return model(input_ids=input_ids, attention_mask=mask, labels=labels).loss


class PRMWithAuxiliaryHeads(nn.Module):
    """The PRM plus, for training only, one linear head per AUXILIARY_TARGETS entry, read at
    the step tags like the step head."""

    def __init__(self, prm, auxiliary_weight: float):
        super().__init__()
        self.prm = prm
        self.auxiliary_weight = auxiliary_weight
        h = prm.config.hidden_size
        self.heads = nn.ModuleList(nn.Linear(h, n) for n in AUXILIARY_TARGETS.values())


def step_classifier_loss(model: PRMWithAuxiliaryHeads, examples, pad_id: int) -> torch.Tensor:
    """Cross-entropy of the step head at the tags, plus the weighted auxiliary losses there."""
    input_ids, labels, mask = _batch(examples, pad_id)
    hidden = model.prm.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    at_tags = labels != IGNORE  # row-major, so the tags come in the order of the aux rows
    tags_hidden = hidden[at_tags]
    loss = nn.functional.cross_entropy(model.prm.score(tags_hidden), labels[at_tags])
    if model.auxiliary_weight:
        aux = torch.tensor([row for example in examples for row in example[2]], dtype=torch.long)
        for k, head in enumerate(model.heads):
            target = aux[:, k]
            if (target != IGNORE).any():
                loss = loss + model.auxiliary_weight * nn.functional.cross_entropy(
                    head(tags_hidden), target, ignore_index=IGNORE
                )
    return loss


@torch.no_grad()
def sample_solutions(
    model,
    tokenizer,
    questions: list[str],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int = 128,
    batch_size: int = 256,
    seed: int = 0,
) -> list[list[str]]:
    """``n`` sampled solutions per question (greedy when temperature is 0), with plain
    transformers ``generate``."""
    torch.manual_seed(seed)
    prompts = [policy_prompt(tokenizer, q) for q in questions for _ in range(n)]
    tokenizer.padding_side = "left"
    texts = []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        kwargs = (
            {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
            if temperature > 0
            else {"do_sample": False}
        )
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **kwargs,
        )
        texts += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return [texts[i * n : (i + 1) * n] for i in range(len(questions))]


def sampled_items(problems: list[ToyProblem], samples: list[list[str]]) -> list[tuple[ToyProblem, list[str]]]:
    """(problem, steps) for every non-empty sampled solution."""
    from tts_eval.steps import split_steps

    return [(p, split_steps(text)) for p, texts in zip(problems, samples) for text in texts if text.strip()]
