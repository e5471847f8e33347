"""The leaderboard's PRM analyses (TTS vs PRM quality, length bias, voting sensitivity) on
real runs of the toy world: Best-of-N with two shipped toy PRMs of different quality, the
policy's CoT and majority runs (``tts-eval run``'s evaluation code, task ``arith_tts``), and
ProcessBench runs of the ``prm`` model on ``processbench_toy`` (lm-eval's Python API). Every
number is recomputed here from the samples files alone."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

PROBLEMS, PB_SAMPLES, N = 7, 40, 4
PRMS = ("toy-prm", "toy-prm-200")
SMALL = "pkg://tts_eval.toy/models/policy-small"
AGGREGATIONS = ("min", "last", "avg", "prod")


def _evaluate_prm(prm: str, out: Path) -> None:
    """``lm_eval --model prm --tasks processbench_toy --limit PB_SAMPLES --log_samples``, in process."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    tracker = EvaluationTracker(output_path=str(out))
    results = lm_eval.simple_evaluate(
        model="prm",
        model_args={"prm": prm},
        tasks=["processbench_toy"],
        limit=PB_SAMPLES,
        log_samples=True,
        evaluation_tracker=tracker,
        task_manager=TaskManager(include_defaults=False),
    )
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    tracker.save_results_samples(task_name="processbench_toy", samples=samples["processbench_toy"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    from tts_eval.lm_eval.runner import run_evaluation

    root = tmp_path_factory.mktemp("toy-runs")
    settings = {
        "cot": {"strategy": "cot"},
        "majority": {"strategy": "majority", "n": N},
        **{
            f"bon-{prm}": {"strategy": "best_of_n", "n": N, "prm": prm, "aggregation": "min", "voting": "prm_vote"}
            for prm in PRMS
        },
    }
    folders = {}
    for name, args in settings.items():
        folders[name] = root / name
        run_evaluation(
            {"policy": SMALL, "seed": 0, **args},
            ["arith_tts"],
            output_path=folders[name],
            log_samples=True,
            limit=PROBLEMS,
        )
    for prm in PRMS:
        _evaluate_prm(prm, root / "processbench" / prm)
    folders["processbench"] = root / "processbench"
    return folders


@pytest.fixture(scope="module")
def board(runs, tmp_path_factory) -> dict:
    from leaderboard import build_leaderboard

    out = tmp_path_factory.mktemp("board") / "lb"
    tts_runs = [runs[k] for k in runs if k != "processbench"]
    build_leaderboard(tts_runs, out, use_reference=False, processbench=[runs["processbench"] / prm for prm in PRMS])
    return {"out": out, "json": json.loads((out / "leaderboard.json").read_text())}


def _samples(folder: Path, task: str) -> list[dict]:
    (file,) = folder.glob(f"*/samples_{task}_*.jsonl")
    return sorted((json.loads(line) for line in file.read_text().splitlines()), key=lambda s: s["doc_id"])


def _results(folder: Path) -> dict:
    (file,) = folder.glob("*/results_*.json")
    return json.loads(file.read_text())


def _searches(folder: Path) -> list[tuple[dict, dict]]:
    return [(s["doc"], json.loads(s["filtered_resps"][0])) for s in _samples(folder, "arith_tts")]


def _same(a: str | None, b: str) -> bool:  # toy answers are whole numbers
    try:
        return a is not None and int(a.strip()) == int(b)
    except ValueError:
        return False


def _aggregate(scores: list[float], how: str) -> float:
    return {"min": min, "last": lambda s: s[-1], "avg": lambda s: sum(s) / len(s), "prod": math.prod}[how](scores)


def _vote(candidates: list[dict], voting: str, aggregation: str) -> int:
    """An independent vote for whole-number answers: ties go to the first candidate."""
    answered = [i for i, c in enumerate(candidates) if c["answer"] is not None] or list(range(len(candidates)))
    key = {i: None if candidates[i]["answer"] is None else int(candidates[i]["answer"]) for i in answered}
    score = {i: _aggregate(candidates[i]["step_scores"], aggregation) for i in answered}
    if voting == "prm_max":
        return max(answered, key=lambda i: (score[i], -i))
    totals: Counter = Counter()
    for i in answered:
        totals[key[i]] += 1 if voting == "majority" else score[i]
    best = max(totals.values())
    winner = next(key[i] for i in answered if totals[key[i]] == best)
    members = [i for i in answered if key[i] == winner]
    return members[0] if voting == "majority" else max(members, key=lambda i: (score[i], -i))


def _f1(folder: Path) -> float:
    from tts_eval.processbench import processbench_score

    pairs = [
        (s["doc"]["label"], json.loads(s["filtered_resps"][0])["prediction"])
        for s in _samples(folder, "processbench_toy")
    ]
    scores = [json.loads(s["filtered_resps"][0])["step_scores"] for s in _samples(folder, "processbench_toy")]
    assert all(p == next((i for i, x in enumerate(sc) if x < 0.5), -1) for (_, p), sc in zip(pairs, scores))
    return 100 * processbench_score(*zip(*pairs)).f1


@pytest.mark.slow
def test_tts_accuracy_against_measured_prm_f1_with_the_log_fit(runs, board):
    points = board["json"]["analyses"]["tts_vs_prm_quality"]
    assert len(points) == len(PRMS)
    expected = {}
    for prm in PRMS:
        f1 = _f1(runs["processbench"] / prm)
        assert _results(runs["processbench"] / prm)["results"]["processbench_toy"]["f1,none"] == pytest.approx(f1 / 100)
        searches = _searches(runs[f"bon-{prm}"])
        accuracy = 100 * np.mean([_same(r["answer"], doc["answer"]) for doc, r in searches])
        name = _results(runs[f"bon-{prm}"])["config"]["tts"]["prm_name"]
        expected[name] = (f1, accuracy)
    assert expected["Toy-PRM"][0] > expected["Toy-PRM-200"][0] + 20  # clearly different PRMs
    for point in points:
        f1, accuracy = expected[point["prm"]]
        assert point["f1"] == pytest.approx(f1) and point["accuracy"] == pytest.approx(accuracy)
        assert point["f1_source"] == "measured: processbench_toy" and point["benchmark"] == "Toy arithmetic"
    (fit,) = board["json"]["analyses"]["log_fits"]
    (x1, y1), (x2, y2) = expected.values()
    slope = (y2 - y1) / (math.log(x2) - math.log(x1))
    assert fit["a"] == pytest.approx(slope) and fit["b"] == pytest.approx(y1 - slope * math.log(x1))


@pytest.mark.slow
def test_length_bias_against_the_policys_own_solutions(runs, board):
    rows = {r["prm"]: r for r in board["json"]["analyses"]["length_bias"]}
    assert set(rows) == {"Toy-PRM", "Toy-PRM-200"}

    def chosen_tokens(folder):
        return np.mean([r["candidates"][r["prediction_index"]]["num_tokens"] for _, r in _searches(folder)])

    cot, majority = chosen_tokens(runs["cot"]), chosen_tokens(runs["majority"])
    for prm in PRMS:
        searches = _searches(runs[f"bon-{prm}"])
        chosen = [r["candidates"][r["prediction_index"]] for _, r in searches]
        row = rows[_results(runs[f"bon-{prm}"])["config"]["tts"]["prm_name"]]
        assert row["problems"] == PROBLEMS
        assert row["tokens"] == pytest.approx(np.mean([c["num_tokens"] for c in chosen]))
        assert row["steps"] == pytest.approx(np.mean([len(c["steps"]) for c in chosen]))
        assert row["tokens_per_step"] == pytest.approx(
            sum(c["num_tokens"] for c in chosen) / sum(len(c["steps"]) for c in chosen)
        )
        assert row["candidate_tokens"] == pytest.approx(
            np.mean([c["num_tokens"] for _, r in searches for c in r["candidates"]])
        )
        assert row["cot_tokens"] == pytest.approx(cot) and row["majority_tokens"] == pytest.approx(majority)


@pytest.mark.slow
def test_voting_sensitivity_from_the_stored_candidates(runs, board):
    rows = {r["prm"]: r for r in board["json"]["analyses"]["voting_sensitivity"]}
    for prm in PRMS:
        searches = _searches(runs[f"bon-{prm}"])
        row = rows[_results(runs[f"bon-{prm}"])["config"]["tts"]["prm_name"]]
        columns = [("majority", "last", "majority")] + [
            (f"{a}/{v}", a, v) for a in AGGREGATIONS for v in ("prm_max", "prm_vote")
        ]
        expected = {}
        for name, aggregation, voting in columns:
            right = [
                _same(r["candidates"][_vote(r["candidates"], voting, aggregation)]["answer"], doc["answer"])
                for doc, r in searches
            ]
            expected[name] = 100 * np.mean(right)
        assert row["accuracy"] == pytest.approx(expected)
        assert row["spread"] == pytest.approx(max(expected.values()) - min(expected.values()))
        # The run's own setting, re-voted, is the run's own accuracy.
        own = 100 * _results(runs[f"bon-{prm}"])["results"]["arith_tts"]["acc,none"]
        assert row["accuracy"]["min/prm_vote"] == pytest.approx(own)


@pytest.mark.slow
def test_analyses_appear_in_every_output(board):
    out = board["out"]
    markdown = (out / "leaderboard.md").read_text()
    html = (out / "leaderboard.html").read_text()
    for title in ("TTS accuracy vs PRM ProcessBench F1", "Length bias of the PRMs", "Voting sensitivity"):
        assert f"## {title}" in markdown and f"<h2>{title}</h2>" in html
    names = {p["name"] for p in board["json"]["plots"]}
    for plot in ("tts_vs_prm_quality", "length_bias", "voting_sensitivity"):
        assert plot in names and (out / f"{plot}.png").stat().st_size > 0 and (out / f"{plot}.svg").is_file()


def test_published_f1_stands_in_for_a_missing_measurement_on_real_benchmarks_only():
    from leaderboard.analyses import fit_log_curve
    from leaderboard.prm_quality import F1, f1_for, published_f1
    from tts_eval.benchmarks import leaderboard_benchmarks

    published = published_f1()
    assert published["Qwen2.5-Math-PRM-7B"] == published["qwen2.5-math-prm-7b"] == 73.5
    assert "Toy-PRM" not in published  # no published figure for the toy PRMs
    assert f1_for("Qwen2.5-Math-PRM-7B", "MATH-500", {}, published) == F1(73.5, "published")
    measured = {
        ("Qwen2.5-Math-PRM-7B", False): F1(70.0, "measured: processbench_gsm8k", "r.json"),
        ("Qwen2.5-Math-PRM-7B", True): F1(40.0, "measured: processbench_toy", "t.json"),
    }
    assert f1_for("Qwen2.5-Math-PRM-7B", "AIME24", measured, published).value == 70.0
    # The toy test split and its halves: the toy ProcessBench's F1, never a real one's.
    toy = ("Toy arithmetic", "Toy arithmetic (development)", "Toy arithmetic (held-out)")
    assert {b.title for b in leaderboard_benchmarks() if b.toy} == set(toy)
    for title in toy:
        assert f1_for("Qwen2.5-Math-PRM-7B", title, {}, published) is None, title
        assert f1_for("Qwen2.5-Math-PRM-7B", title, measured, published).value == 40.0, title

    f1 = [31.5, 42.1, 73.5, 78.3]  # the paper's curve recovered from points on it
    a, b = fit_log_curve(f1, [7.66 * math.log(x) + 44.31 for x in f1])
    assert (a, b) == (pytest.approx(7.66), pytest.approx(44.31))
