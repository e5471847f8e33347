"""The toy world's problems: chained arithmetic on small whole numbers, solved one operation
per step in the MATH format.

A problem applies 2 to 8 operations, each with a one-digit operand, left to right to a
start value of one or two digits, written with the fewest parentheses that keep that order
(``(12 + 7) * 3 - 5``). Every intermediate value stays in 0..99, so each step ``a op b = c``
is one small operation whose operands are visible in the step: a verifier checks it locally,
without redoing a long computation. The canonical
solution has one step per operation; the last one boxes the answer:

    12 + 7 = 19

    19 * 3 = 57

    57 - 5 = \\boxed{52}

The number of operations is the problem's difficulty.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Set
from dataclasses import asdict, dataclass
from pathlib import Path

from tts_eval.steps import STEP_SEPARATOR, split_steps, step_content

MIN_OPS, MAX_OPS = 2, 8
MAX_VALUE = 99
MAX_OPERAND = 9  # the second operand of every operation is one digit
OPERATORS = ("+", "-", "*", "/")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
QUESTION_TEMPLATE = "Compute {expression}."


@dataclass(frozen=True)
class ToyProblem:
    """One problem with its canonical solution."""

    question: str
    solution: str
    answer: str
    difficulty: int  # number of operations

    @property
    def steps(self) -> list[str]:
        return [step_content(s) for s in split_steps(self.solution)]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def _apply(a: int, op: str, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a // b


def _choose_operation(rng: random.Random, value: int) -> tuple[str, int]:
    """An operator and operand that keep the result a whole number in 0..MAX_VALUE."""
    while True:
        op = rng.choice(OPERATORS)
        if op == "+" and value < MAX_VALUE:
            return op, rng.randint(1, min(MAX_OPERAND, MAX_VALUE - value))
        if op == "-" and value > 1:
            return op, rng.randint(1, min(MAX_OPERAND, value - 1))
        if op == "*" and 2 <= value <= MAX_VALUE // 2:
            return op, rng.randint(2, min(MAX_OPERAND, MAX_VALUE // value))
        if op == "/" and value >= 4:
            divisors = [d for d in range(2, MAX_OPERAND + 1) if value % d == 0 and value // d > 1]
            if divisors:
                return op, rng.choice(divisors)


def step_text(a: int, op: str, b: int, result: str) -> str:
    return f"{a} {op} {b} = {result}"


def make_problem(rng: random.Random, num_ops: int) -> ToyProblem:
    value = rng.randint(2, MAX_VALUE)
    expression, top = str(value), 3  # precedence of the expression's outermost operator
    steps = []
    for i in range(num_ops):
        op, b = _choose_operation(rng, value)
        if top < _PRECEDENCE[op]:
            expression = f"({expression})"
        expression, top = f"{expression} {op} {b}", _PRECEDENCE[op]
        result = _apply(value, op, b)
        shown = f"\\boxed{{{result}}}" if i == num_ops - 1 else str(result)
        steps.append(step_text(value, op, b, shown))
        value = result
    return ToyProblem(
        question=QUESTION_TEMPLATE.format(expression=expression),
        solution=STEP_SEPARATOR.join(steps),
        answer=str(value),
        difficulty=num_ops,
    )


def generate_problems(seed: int, count: int, exclude: Set[str] = frozenset()) -> list[ToyProblem]:
    """``count`` distinct problems, difficulties cycling through MIN_OPS..MAX_OPS, none of
    whose questions is in ``exclude``."""
    rng = random.Random(seed)
    seen = set(exclude)
    problems: list[ToyProblem] = []
    while len(problems) < count:
        num_ops = MIN_OPS + len(problems) % (MAX_OPS - MIN_OPS + 1)
        problem = make_problem(rng, num_ops)
        if problem.question not in seen:
            seen.add(problem.question)
            problems.append(problem)
    return problems


# The fixed splits: the test split is generated first, and the train split never repeats it.
TEST_SEED, TRAIN_SEED = 20250206, 7
TEST_SIZE = 700


def test_split() -> list[ToyProblem]:
    return generate_problems(TEST_SEED, TEST_SIZE)


def train_split(count: int, seed: int = TRAIN_SEED) -> list[ToyProblem]:
    return generate_problems(seed, count, exclude={p.question for p in test_split()})


def write_jsonl(problems: list[ToyProblem], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for p in problems:
            f.write(p.to_json() + "\n")


def read_jsonl(path: Path) -> list[ToyProblem]:
    with open(path, encoding="utf-8") as f:
        return [ToyProblem(**json.loads(line)) for line in f if line.strip()]


_STEP = re.compile(r"^(\d+) ([-+*/]) (\d+) = (\\boxed\{)?(-?\d+)(\})?$")


@dataclass(frozen=True)
class ParsedStep:
    a: int
    op: str
    b: int
    result: int
    boxed: bool


def parse_step(step: str) -> ParsedStep | None:
    """``a op b = c`` (or ``= \\boxed{c}``) read off a step's content; None if it has another form."""
    match = _STEP.match(" ".join(step_content(step).split()))
    if not match or bool(match.group(4)) != bool(match.group(6)):
        return None
    a, op, b, boxed, result, _ = match.groups()
    return ParsedStep(int(a), op, int(b), int(result), bool(boxed))


def apply_operation(a: int, op: str, b: int) -> int | None:
    """``a op b`` as a whole number, or None when a division is not exact."""
    if op == "/":
        return a // b if b and a % b == 0 else None
    return _apply(a, op, b)


def step_labels(problem: ToyProblem, steps: list[str]) -> list[bool]:
    """Whether each step keeps the solution correct: a step is right when it equals the
    canonical step at its position and every step before it is right (the first wrong step
    and everything after it are wrong). White space around a step is ignored."""
    canonical = problem.steps
    labels, ok = [], True
    for i, step in enumerate(steps):
        ok = ok and i < len(canonical) and " ".join(step_content(step).split()) == canonical[i]
        labels.append(ok)
    return labels
