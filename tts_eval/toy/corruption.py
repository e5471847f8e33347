"""Wrong steps, made on purpose: the slips the policies are trained to make now and then, and
the wrong steps (hard negatives) the PRM is trained to catch."""

from __future__ import annotations

import random

from tts_eval.steps import STEP_SEPARATOR
from tts_eval.toy.problems import MAX_VALUE, ToyProblem, _apply, parse_step, step_text


def parse_chain(problem: ToyProblem) -> tuple[int, list[tuple[str, int]]]:
    """The start value and the (operator, operand) list of a problem, read off its solution."""
    ops = []
    start: int | None = None
    for step in problem.steps:
        parsed = parse_step(step)
        assert parsed is not None, f"a generated solution step does not parse: {step!r}"
        start = parsed.a if start is None else start
        ops.append((parsed.op, parsed.b))
    assert start is not None, "a problem has at least one step"
    return start, ops


def _valid(a: int, op: str, b: int) -> bool:
    if op == "/":
        return b != 0 and a % b == 0
    return True


def _nearby_wrong(rng: random.Random, value: int, spread: str) -> int:
    """A wrong value of the kind a hurried calculation gives."""
    if spread == "slip":  # the policy's slips: last digit off a little, or a carry dropped
        delta = rng.choice([1, -1, 1, -1, 2, -2, 10, -10])
        return value + delta
    kind = rng.random()
    if kind < 0.35:
        return value + rng.choice([1, -1, 2, -2, 3, -3])
    if kind < 0.65:
        return value + rng.choice([10, -10, 9, -9, 11, -11, 20, -20])
    if kind < 0.8 and value >= 10:
        digits = str(value)
        return int(digits[::-1]) if digits[::-1] != digits else value + 10
    return rng.randint(0, MAX_VALUE)


def _render(start: int, ops: list[tuple[str, int]], results: list[int]) -> list[str]:
    steps, value = [], start
    for i, ((op, b), r) in enumerate(zip(ops, results)):
        shown = f"\\boxed{{{r}}}" if i == len(ops) - 1 else str(r)
        steps.append(step_text(value, op, b, shown))
        value = r
    return steps


def sloppy_solution(problem: ToyProblem, rng: random.Random, slip_rate: float) -> str:
    """The problem's solution where each step's result is, with probability ``slip_rate``,
    a little off; later steps carry on correctly from the wrong value."""
    start, ops = parse_chain(problem)
    value, results = start, []
    for i, (op, b) in enumerate(ops):
        result = _apply(value, op, b)
        if rng.random() < slip_rate:
            wrong = _nearby_wrong(rng, result, "slip")
            if wrong != result and 0 <= wrong <= MAX_VALUE and _continues(wrong, ops[i + 1 :]):
                result = wrong
        results.append(result)
        value = result
    return STEP_SEPARATOR.join(_render(start, ops, results))


def _continues(value: int, rest: list[tuple[str, int]]) -> bool:
    """Whether the remaining operations stay whole numbers starting from ``value``."""
    for op, b in rest:
        if not _valid(value, op, b):
            return False
        value = _apply(value, op, b)
        if value < 0:
            return False
    return True


def corrupted_steps(problem: ToyProblem, rng: random.Random) -> list[str]:
    """The canonical steps with one wrong step at a random position, after which the solution
    carries on from the wrong state (or stops there). Kinds of error: a wrong result, a wrong
    first operand, a wrong operator or second operand, a skipped operation, an early or a
    missing box."""
    start, ops = parse_chain(problem)
    steps = problem.steps
    k = rng.randrange(len(ops))
    values = [start]
    for op, b in ops:
        values.append(_apply(values[-1], op, b))
    a, (op, b) = values[k], ops[k]
    kind = rng.random()
    if kind < 0.55:  # wrong result
        wrong = _nearby_wrong(rng, values[k + 1], "hard")
        if wrong == values[k + 1]:
            wrong += 1
        new_ops, new_start, new_results = ops[k:], a, [wrong]
    elif kind < 0.67:  # wrong first operand, right arithmetic on it
        a2 = _nearby_wrong(rng, a, "hard")
        a2 = a2 if a2 != a and a2 >= 0 else a + 1
        if not _valid(a2, op, b):
            op, b = "+", b
        new_ops, new_start, new_results = [(op, b)] + ops[k + 1 :], a2, [_apply(a2, op, b)]
    elif kind < 0.8:  # wrong operator or second operand, right arithmetic on it
        if rng.random() < 0.5:
            op2 = rng.choice([o for o in "+-*" if o != op])
            b2 = b
        else:
            op2, b2 = op, b + rng.choice([1, -1, 10, -10, 2]) if op in "+-" else b + 1
            b2 = b2 if b2 > 0 else b + 1
            if not _valid(a, op2, b2):
                op2 = "+"
        new_ops, new_start, new_results = [(op2, b2)] + ops[k + 1 :], a, [_apply(a, op2, b2)]
    elif kind < 0.9 and k + 1 < len(ops):  # skips an operation
        new_ops = ops[k + 1 :]
        new_start = a
        if not _valid(a, *new_ops[0]):
            return steps[:k] + [step_text(a, "+", new_ops[0][1], str(a + new_ops[0][1]))]
        new_results = [_apply(a, *new_ops[0])]
    else:  # box too early, or never box at the end
        if k + 1 < len(ops):
            return steps[:k] + [step_text(a, op, b, f"\\boxed{{{values[k + 1]}}}")]
        return steps[:k] + [step_text(a, op, b, str(values[k + 1]))]
    # Carry on from the wrong state, computing correctly, until the chain ends.
    value, out = new_start, steps[:k]
    results = list(new_results)
    for op2, b2 in new_ops[1:]:
        last = results[-1]
        if not _valid(last, op2, b2) or rng.random() < 0.15:
            break
        results.append(_apply(last, op2, b2))
    for i, r in enumerate(results):
        op2, b2 = new_ops[i]
        is_last = i == len(results) - 1 and i == len(new_ops) - 1
        out.append(step_text(value, op2, b2, f"\\boxed{{{r}}}" if is_last else str(r)))
        value = r
    return out
