"""Test-time scaling works in the shipped toy world, on problems nobody tuned on, and
``tts-eval demo`` shows it with intervals.

The claims of docs/toy-world.md are asserted on the held-out half of the test split (problems
350-699) as paired comparisons whose 95% interval must exclude zero:

- a real run here, through the real search path (``load_policy`` and ``load_prm`` on the
  shipped ``pkg://`` models, ``tts_eval.search``; seed 0, N = 16) on the first 105 held-out
  problems: majority voting beats single samples, and the PRM's Best-of-N beats majority;
- the stored full measurement ``bench/toy_heldout.json`` (every held-out problem's outcome per
  setup, made by the command it records; the real run above must reproduce its first 105
  problems): every claim, DVTS at N = 64 beating the large policy's CoT among them, recomputed
  from the outcomes, and the docs' claims table is exactly that recomputation.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tts_eval import search
from tts_eval.statistics import accuracy_interval, paired_difference, verdict
from tts_eval.toy import SPLITS, load_test_problems
from tts_eval.toy.claims import MeasuredSetups, claims, report
from tts_eval.toy.evaluate import as_problems, is_right, load_toy_policy, load_toy_prm, sample_stats

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "bench" / "toy_heldout.json"
N = 16
SEED = 0
NUM_PROBLEMS = 105  # the first held-out problems, 15 per difficulty


@pytest.fixture(scope="module")
def stored() -> MeasuredSetups:
    return MeasuredSetups.model_validate_json(STORED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def measured() -> dict[str, list[float]]:
    """Per-problem outcomes of a real run on the first held-out problems, named as in the
    stored measurement."""
    toy = load_test_problems("heldout")[:NUM_PROBLEMS]
    assert Counter(p.difficulty for p in toy) == {d: 15 for d in range(2, 9)}
    small, large = load_toy_policy("small"), load_toy_policy("large")
    large_cot = search(as_problems(large, toy), large, strategy="cot", seed=SEED)
    # The PRM read as bench/toy_heldout.py reads it: min aggregation, prm_vote.
    best_of_n = search(
        as_problems(small, toy),
        small,
        load_toy_prm(),
        strategy="best_of_n",
        n=N,
        aggregation="min",
        voting="prm_vote",
        seed=SEED,
    )
    stats = [sample_stats(p, r) for p, r in zip(toy, best_of_n)]
    return {
        "large CoT": [float(is_right(p, r.answer)) for p, r in zip(toy, large_cot)],
        "Pass@1": [s.pass_at_1 for s in stats],
        f"majority@{N}": [float(s.majority) for s in stats],
        f"best_of_n@{N}": [float(is_right(p, r.answer)) for p, r in zip(toy, best_of_n)],
        f"pass@{N}": [float(s.any_right) for s in stats],
    }


def test_majority_beats_a_single_sample_on_held_out_problems(measured):
    difference = paired_difference(measured[f"majority@{N}"], measured["Pass@1"])
    assert verdict(difference) == "beats", difference


def test_prm_guided_choice_beats_majority_on_held_out_problems(measured):
    difference = paired_difference(measured[f"best_of_n@{N}"], measured[f"majority@{N}"])
    assert verdict(difference) == "beats", difference
    # Never better than an oracle verifier choosing among the same candidates.
    assert all(b <= o for b, o in zip(measured[f"best_of_n@{N}"], measured[f"pass@{N}"]))


def test_the_stored_measurement_is_what_the_shipped_models_give(stored, measured):
    assert stored.problems == list(SPLITS["heldout"])
    assert stored.difficulty == [p.difficulty for p in load_test_problems("heldout")]
    assert stored.command.startswith("python bench/toy_heldout.py --out bench/toy_heldout.json")
    for setup, values in measured.items():
        # Identical on this machine; a few sampling differences may come from another CPU's
        # floating-point kernels.
        same = sum(a == b for a, b in zip(values, stored.outcomes[setup][:NUM_PROBLEMS]))
        assert same >= 0.95 * NUM_PROBLEMS, (setup, same)


def test_every_claim_holds_on_the_held_out_half_with_its_interval(stored):
    found = {c.statement: c for c in claims(stored)}
    assert all(c.holds for c in found.values()), [c for c in found.values() if not c.holds]
    beats_large = found["small policy + DVTS at N=64 beats the large policy's CoT"]
    assert beats_large.verdict == "beats" and beats_large.difference.low > 0 and beats_large.problems == 350
    # The intervals are those of the stored per-problem outcomes.
    assert beats_large.setup_accuracy == accuracy_interval(stored.outcomes["dvts@64"])
    # The ranking of strategies differs by difficulty: DVTS leads majority voting on hard
    # problems, not on easy ones.
    assert found["on hard problems, DVTS beats majority voting"].verdict == "beats"
    assert found["on easy problems, DVTS does not beat majority voting"].verdict != "beats"


def test_the_docs_show_the_measured_claims(stored):
    docs = (ROOT / "docs" / "toy-world.md").read_text(encoding="utf-8")
    assert report(stored) in docs


# --- tts-eval demo ------------------------------------------------------------------------------

DEMO_RUNS = [
    ("large", "cot", 1),
    ("small", "cot", 1),
    ("small", "majority", 4),
    ("small", "best_of_n", 4),
    ("small", "beam_search", 4),
    ("small", "dvts", 4),
]


TABLE_COLUMNS = (
    "policy",
    "strategy",
    "N",
    "accuracy",
    "vs large CoT",
    "Pass@1",
    "pass@N",
    "final-candidate accuracy",
    "any final candidate correct",
    "majority",
    "tokens",
    "FLOPs",
    "seconds",
)


def test_demo_runs_every_strategy_through_lm_eval_and_writes_the_leaderboard(tmp_path):
    from tts_eval.cli import app

    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--limit", "3", "--n", "4"])
    assert result.exit_code == 0, result.output

    accuracy, outcomes = {}, {}
    lines = result.output.splitlines()
    for size, strategy, n in DEMO_RUNS:
        (results_file,) = (out / "runs" / f"{size}-{strategy}-n{n}").glob("*/results_*.json")
        results = json.loads(results_file.read_text())
        assert (results["config"]["tts"]["strategy"], results["config"]["tts"]["n"]) == (strategy, n)
        assert results["config"]["tts"]["policy"] == f"pkg://tts_eval.toy/models/policy-{size}"
        assert results["n-samples"]["arith_tts_heldout"]["effective"] == 3
        (samples_file,) = results_file.parent.glob("samples_arith_tts_heldout_*.jsonl")
        samples = sorted(
            (json.loads(line) for line in samples_file.read_text().splitlines()), key=lambda s: s["doc_id"]
        )
        # The held-out half: test problems 350, 351, 352 (difficulty kept for breakdowns).
        assert [s["doc"]["unique_id"] for s in samples] == ["arith/350", "arith/351", "arith/352"]
        assert [s["doc"]["difficulty"] for s in samples] == [
            load_test_problems()[i].difficulty for i in (350, 351, 352)
        ]
        # lm-eval's standard error of every mean metric: the sample standard deviation / sqrt(n).
        metrics = results["results"]["arith_tts_heldout"]
        for metric in ("acc", "maj_acc", "pass_at_n", "candidate_acc"):
            values = [s[metric] for s in samples]
            assert metrics[f"{metric}_stderr,none"] == pytest.approx(statistics.stdev(values) / math.sqrt(3), abs=1e-12)
        # The table prints what lm-eval measured, row by row, each accuracy with its interval
        # on the row's second line, and the paired difference from the large policy's CoT.
        accuracy[size, strategy, n] = metrics["acc,none"]
        outcomes[size, strategy, n] = [s["acc"] for s in samples]
        index = next(i for i, line in enumerate(lines) if re.search(rf"{size} \(\d+k\)\s*│\s*{strategy}\s*│", line))
        line, below = lines[index], lines[index + 1]
        cell = dict(zip(TABLE_COLUMNS, (c.strip() for c in line.strip("│ ").split("│"))))
        interval = dict(
            zip(TABLE_COLUMNS, (c.strip() for c in below.strip()[1:-1].split("│")))
        )  # leading cells are empty
        low_high = accuracy_interval(outcomes[size, strategy, n])
        assert interval["accuracy"] == f"[{100 * low_high.low:.1f}, {100 * low_high.high:.1f}]"
        if size == "small":
            difference = paired_difference(outcomes[size, strategy, n], outcomes[DEMO_RUNS[0]])
            assert cell["vs large CoT"] == (
                f"{100 * difference.estimate:+.1f} [{100 * difference.low:+.1f}, {100 * difference.high:+.1f}]"
            )
            assert interval["vs large CoT"] == verdict(difference)
        assert cell["accuracy"] == f"{100 * metrics['acc,none']:.1f}%"
        # A tree search's candidates are its final beams: no Pass@1 / pass@N of its own.
        share, any_right = f"{100 * metrics['candidate_acc,none']:.1f}%", f"{100 * metrics['pass_at_n,none']:.1f}%"
        tree = strategy in ("beam_search", "dvts")
        assert (cell["Pass@1"], cell["pass@N"]) == (("—", "—") if tree else (share, any_right))
        assert (cell["final-candidate accuracy"], cell["any final candidate correct"]) == (
            (share, any_right) if tree else ("—", "—")
        )
        # The PRM runs used the defaults, and the results record them.
        tts = results["config"]["tts"]
        assert (tts["voting"], tts["aggregation"]) == (("prm_vote", "min") if tts["prm"] else ("majority", "min"))
    best = max(DEMO_RUNS[2:], key=lambda run: accuracy[run])  # the first of equals, in the demo's order
    large = accuracy[DEMO_RUNS[0]]
    relation = verdict(paired_difference(outcomes[best], outcomes[DEMO_RUNS[0]]))
    line = " ".join(result.output.split())
    assert f"best small-policy TTS run, {best[1]} at N=4: {100 * accuracy[best]:.1f}% [" in line
    assert f"{relation} the large policy's CoT: {100 * large:.1f}% [" in line
    assert "held-out test problems 350-352" in line

    board = json.loads((out / "leaderboard" / "leaderboard.json").read_text())
    measured_rows = {
        (r["setup"]["policy"].rsplit("-", 1)[-1], r["setup"]["strategy"], r["setup"]["n"])
        for r in board["rows"]
        if r["kind"] == "measured"
    }
    assert measured_rows == set(DEMO_RUNS)
    assert all(set(r["benchmarks"]) == {"Toy arithmetic (held-out)"} for r in board["rows"])  # no published rows
    assert all(e["ci_low"] <= e["accuracy"] <= e["ci_high"] for r in board["rows"] for e in r["benchmarks"].values())
    assert any(c["kind"] == "small TTS vs large CoT" for c in board["comparisons"])
    assert (out / "leaderboard" / "leaderboard.md").is_file() and (out / "leaderboard" / "leaderboard.html").is_file()
    # Difficulty by operations for every row, and Pass@1 buckets from the small policy's sampled runs.
    dvts = next(r for r in board["rows"] if r["setup"]["strategy"] == "dvts" and r["kind"] == "measured")
    assert set(dvts["benchmarks"]["Toy arithmetic (held-out)"]["by_level"]) == {
        str(load_test_problems()[i].difficulty) for i in (350, 351, 352)
    }
    assert sum(b["problems"] for b in dvts["benchmarks"]["Toy arithmetic (held-out)"]["by_difficulty"].values()) == 3

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
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--limit", "2"])
    assert result.exit_code == 2 and "holds other files and no earlier demo" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
