"""Test-time scaling works in the shipped toy world, and ``tts-eval demo`` shows it.

Through the real search path (``load_policy`` and ``load_prm`` on the shipped ``pkg://``
models, ``tts_eval.search``), seed 0, N = 16: on the first 105 test problems (15 per
difficulty) majority voting beats single samples and PRM Best-of-N beats majority voting; on
the first 350 the small policy with DVTS beats the large policy's greedy CoT (see
docs/toy-world.md for the full table)."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from typer.testing import CliRunner

from tts_eval import search
from tts_eval.toy import load_test_problems
from tts_eval.toy.evaluate import as_problems, is_right, load_toy_policy, load_toy_prm, mean, sample_stats

pytestmark = pytest.mark.slow

N = 16
SEED = 0
NUM_PROBLEMS = 105


@pytest.fixture(scope="module")
def measured():
    toy = load_test_problems()[:NUM_PROBLEMS]
    assert Counter(p.difficulty for p in toy) == {d: 15 for d in range(2, 9)}
    small, large = load_toy_policy("small"), load_toy_policy("large")
    prm = load_toy_prm()
    large_cot = search(as_problems(large, toy), large, strategy="cot", seed=SEED)
    small_problems = as_problems(small, toy)
    # The defaults: prm_vote, aggregated as the toy PRM's spec recommends (min).
    best_of_n = search(small_problems, small, prm, strategy="best_of_n", n=N, seed=SEED)
    stats = [sample_stats(p, r) for p, r in zip(toy, best_of_n)]
    return {
        "pass@1": mean([s.pass_at_1 for s in stats]),
        "maj": mean([s.majority for s in stats]),
        "prm": mean([is_right(p, r.answer) for p, r in zip(toy, best_of_n)]),
        "large_cot": mean([is_right(p, r.answer) for p, r in zip(toy, large_cot)]),
        "pass@n": mean([s.any_right for s in stats]),
    }


def test_majority_beats_a_single_sample(measured):
    assert measured["maj"] > measured["pass@1"], measured


def test_prm_guided_choice_beats_majority(measured):
    assert measured["prm"] > measured["maj"], measured
    assert measured["prm"] <= measured["pass@n"], measured  # never better than an oracle verifier


def test_small_policy_with_tts_beats_large_policy_cot():
    # DVTS, the small policy's best strategy at N = 16, on the 350 problems of bench/toy.py:
    # its lead over the large policy's CoT (about 4 points) is within the noise of 105 problems.
    toy = load_test_problems()[:350]
    small, large = load_toy_policy("small"), load_toy_policy("large")
    large_cot = search(as_problems(large, toy), large, strategy="cot", seed=SEED)
    dvts = search(as_problems(small, toy), small, load_toy_prm(), strategy="dvts", n=N, seed=SEED)
    accuracy = {name: mean([is_right(p, r.answer) for p, r in zip(toy, runs)])
                for name, runs in (("dvts", dvts), ("large_cot", large_cot))}
    assert accuracy["dvts"] > accuracy["large_cot"], accuracy


# --- tts-eval demo ------------------------------------------------------------------------------

DEMO_RUNS = [("large", "cot", 1), ("small", "cot", 1), ("small", "majority", 4), ("small", "best_of_n", 4),
             ("small", "beam_search", 4), ("small", "dvts", 4)]


TABLE_COLUMNS = ("policy", "strategy", "N", "accuracy", "Pass@1", "pass@N", "final-candidate accuracy",
                 "any final candidate correct", "majority", "tokens", "FLOPs", "seconds")


def test_demo_runs_every_strategy_through_lm_eval_and_writes_the_leaderboard(tmp_path):
    from tts_eval.cli import app

    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--limit", "3", "--n", "4"])
    assert result.exit_code == 0, result.output

    accuracy = {}
    for size, strategy, n in DEMO_RUNS:
        (results_file,) = (out / "runs" / f"{size}-{strategy}-n{n}").glob("*/results_*.json")
        results = json.loads(results_file.read_text())
        assert (results["config"]["tts"]["strategy"], results["config"]["tts"]["n"]) == (strategy, n)
        assert results["config"]["tts"]["policy"] == f"pkg://tts_eval.toy/models/policy-{size}"
        assert results["n-samples"]["arith_tts"]["effective"] == 3
        # The table prints what lm-eval measured, row by row.
        metrics = results["results"]["arith_tts"]
        accuracy[size, strategy, n] = metrics["acc,none"]
        line = next(line for line in result.output.splitlines() if re.search(rf"{size} \(\d+k\)\s*│\s*{strategy}\s*│", line))
        cell = dict(zip(TABLE_COLUMNS, (c.strip() for c in line.strip("│ ").split("│"))))
        assert cell["accuracy"] == f"{100 * metrics['acc,none']:.1f}%"
        # A tree search's candidates are its final beams: no Pass@1 / pass@N of its own.
        share, any_right = f"{100 * metrics['candidate_acc,none']:.1f}%", f"{100 * metrics['pass_at_n,none']:.1f}%"
        tree = strategy in ("beam_search", "dvts")
        assert (cell["Pass@1"], cell["pass@N"]) == (("—", "—") if tree else (share, any_right))
        assert (cell["final-candidate accuracy"], cell["any final candidate correct"]) == ((share, any_right) if tree else ("—", "—"))
        # The PRM runs used the defaults, and the results record them.
        tts = results["config"]["tts"]
        assert (tts["voting"], tts["aggregation"]) == (("prm_vote", "min") if tts["prm"] else ("majority", "min"))
        (samples_file,) = results_file.parent.glob("samples_arith_tts_*.jsonl")
        docs = [json.loads(line)["doc"] for line in samples_file.read_text().splitlines()]
        assert [d["difficulty"] for d in docs] == [2, 3, 4]  # kept for per-difficulty breakdowns
    best = max(DEMO_RUNS[2:], key=lambda run: accuracy[run])  # the first of equals, in the demo's order
    large = accuracy[DEMO_RUNS[0]]
    relation = "beats" if accuracy[best] > large else "does not beat"
    assert (f"best small-policy TTS run, {best[1]} at N=4: {100 * accuracy[best]:.1f}%, {relation} the large "
            f"policy's CoT: {100 * large:.1f}%") in result.output

    board = json.loads((out / "leaderboard" / "leaderboard.json").read_text())
    measured_rows = {(r["setup"]["policy"].rsplit("-", 1)[-1], r["setup"]["strategy"], r["setup"]["n"])
                     for r in board["rows"] if r["kind"] == "measured"}
    assert measured_rows == set(DEMO_RUNS)
    assert all(set(r["benchmarks"]) == {"Toy arithmetic"} for r in board["rows"])  # no published MATH-500 rows
    assert (out / "leaderboard" / "leaderboard.md").is_file() and (out / "leaderboard" / "leaderboard.html").is_file()
    # Difficulty by operations for every row, and Pass@1 buckets from the small policy's sampled runs.
    dvts = next(r for r in board["rows"] if r["setup"]["strategy"] == "dvts" and r["kind"] == "measured")
    assert set(dvts["benchmarks"]["Toy arithmetic"]["by_level"]) == {"2", "3", "4"}
    assert sum(b["problems"] for b in dvts["benchmarks"]["Toy arithmetic"]["by_difficulty"].values()) == 3

    # The printed command rebuilds the same board from the demo's output folder.
    command = re.search(r"rebuild it: (tts-eval leaderboard .*)", result.output).group(1)
    assert command == f"tts-eval leaderboard {out} --out {out / 'leaderboard'}"
    rebuilt = CliRunner().invoke(app, ["leaderboard", str(out), "--out", str(tmp_path / "again")])
    assert rebuilt.exit_code == 0, rebuilt.output
    again = json.loads((tmp_path / "again" / "leaderboard.json").read_text())
    assert [r["title"] for r in again["rows"]] == [r["title"] for r in board["rows"]]


def test_demo_refuses_a_folder_it_did_not_write(tmp_path):
    from tts_eval.cli import app

    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--limit", "1"])
    assert result.exit_code == 2 and "holds other files and no earlier demo" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
