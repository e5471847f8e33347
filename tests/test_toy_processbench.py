"""The toy ProcessBench: exact labels, development problems only, reproducible from its command."""

from __future__ import annotations

import json

import pytest

from tts_eval.toy import DEVELOPMENT_PROBLEMS, PROCESSBENCH_FILE, load_test_problems


def shipped_rows() -> list[dict]:
    return [json.loads(line) for line in PROCESSBENCH_FILE.read_text(encoding="utf-8").splitlines()]


def test_shipped_toy_processbench_has_exact_labels_of_development_problems():
    rows, test = shipped_rows(), load_test_problems()
    assert 300 <= len(rows) <= DEVELOPMENT_PROBLEMS
    indices = [r["problem_index"] for r in rows]
    assert indices == sorted(set(indices)) and max(indices) < DEVELOPMENT_PROBLEMS  # the held-out half untouched
    for row in rows:
        problem = test[row["problem_index"]]
        assert row["problem"] == problem.question and row["difficulty"] == problem.difficulty
        canonical = problem.solution.split("\n\n")
        # Independently: the first step that differs from the canonical one (or runs past it).
        first_wrong = next(
            (i for i, step in enumerate(row["steps"]) if i >= len(canonical) or step != canonical[i]), -1
        )
        assert row["label"] == first_wrong
        if first_wrong == -1:
            assert row["steps"] == canonical and row["final_answer_correct"]
        assert row["generator"] in ("policy-small", "policy-large")
    labels = [r["label"] for r in rows]
    assert labels.count(-1) >= 100 and sum(label >= 0 for label in labels) >= 150
    assert len({label for label in labels if label >= 0}) >= 5  # errors at many positions, not only the first step


@pytest.mark.slow
def test_toy_processbench_command_reproduces_the_shipped_rows(tmp_path):
    from typer.testing import CliRunner

    from tts_eval.cli import app

    out = tmp_path / "pb.jsonl"
    result = CliRunner().invoke(app, ["toy", "processbench", "--out", str(out), "--problems", "6"])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == PROCESSBENCH_FILE.read_text().splitlines()[:6]

    result = CliRunner().invoke(
        app, ["toy", "processbench", "--out", str(out), "--problems", str(DEVELOPMENT_PROBLEMS + 1)]
    )
    assert result.exit_code == 2 and "held out" in result.output


@pytest.mark.parametrize(
    "steps,label",
    [
        (["18 / 3 = 6", "6 - 4 = \\boxed{2}"], -1),
        (["18 / 3 = 4", "4 - 4 = \\boxed{0}"], 0),
        (["18 / 3 = 6", "6 - 4 = 2"], 1),  # the answer is not boxed
        (["18 / 3 = 6"], None),  # every step right, but cut off: left out
        (["18 / 3 = 6", "6 - 4 = \\boxed{2}", "2 + 1 = 3"], 2),
    ],
)
def test_first_wrong_step(steps, label):
    from tts_eval.toy.problems import ToyProblem
    from tts_eval.toy.processbench import first_wrong_step

    problem = ToyProblem("Compute 18 / 3 - 4.", "18 / 3 = 6\n\n6 - 4 = \\boxed{2}", "2", 2)
    assert first_wrong_step(problem, steps) == label
