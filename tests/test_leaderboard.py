"""The leaderboard's estimators, reader, rows, outputs and HTML page, on output folders
written by lm-eval's own ``EvaluationTracker`` from hand-made samples (fast; real runs are
in test_leaderboard_e2e.py)."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from itertools import combinations
from pathlib import Path

import pytest

from tts_eval.types import SearchResult, Trajectory, Usage

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"
MATH500_TITLE = "MATH-500 (%)"


# -- estimators ---------------------------------------------------------------------------


def _brute_force(candidates, correct, k, voting, aggregation="last") -> float:
    from tts_eval.voting import vote

    subsets = list(combinations(range(len(candidates)), k))
    return sum(correct[s[vote([candidates[i] for i in s], voting, aggregation)]] for s in subsets) / len(subsets)


def _random_candidates(rng: random.Random, n: int) -> tuple[list[Trajectory], list[bool]]:
    """Answers with several spellings of one value, missing answers, tied and NaN scores."""
    spellings = {"1/2": ["\\frac{1}{2}", "0.5", "\\frac12"], "3": ["3", "3.0"], "7": ["7"], None: [None]}
    candidates, correct = [], []
    for _ in range(n):
        value = rng.choice(list(spellings))
        answer = rng.choice(spellings[value])
        scores = [rng.choice([0.2, 0.5, 0.5, 0.9, math.nan]) for _ in range(rng.randint(1, 3))]
        candidates.append(Trajectory(steps=["s\n\n"] * len(scores), step_scores=scores, finished=True, answer=answer))
        correct.append(value == "1/2")
    return candidates, correct


def test_estimators_equal_the_mean_vote_over_every_subset():
    from tts_eval.estimators import canonical_candidates, pass_at_k, vote_accuracy

    rng = random.Random(7)
    for trial in range(6):
        candidates, correct = _random_candidates(rng, 6)
        canonical = canonical_candidates(candidates)
        assert [c.answer is None for c in canonical] == [c.answer is None for c in candidates]
        for k in range(1, 7):
            any_right = sum(any(correct[i] for i in s) for s in combinations(range(6), k)) / math.comb(6, k)
            assert pass_at_k(6, sum(correct), k) == pytest.approx(any_right)
            for voting in ("majority", "prm_max", "prm_vote"):
                for aggregation in ("last", "min"):
                    expected = _brute_force(candidates, correct, k, voting, aggregation)
                    got = vote_accuracy(canonical, correct, k, voting, aggregation, max_subsets=100)
                    assert got == pytest.approx(expected), (trial, k, voting, aggregation)


def test_monte_carlo_estimate_is_seeded_and_close_to_the_exact_mean():
    from tts_eval.estimators import canonical_candidates, vote_accuracy

    candidates, correct = _random_candidates(random.Random(3), 12)
    canonical = canonical_candidates(candidates)
    exact = vote_accuracy(canonical, correct, 6, "majority", max_subsets=math.comb(12, 6))
    sampled = [vote_accuracy(canonical, correct, 6, "majority", max_subsets=300, seed=s) for s in range(4)]
    assert sampled[0] == vote_accuracy(canonical, correct, 6, "majority", max_subsets=300, seed=0)
    assert len(set(sampled)) > 1  # really sampled, not enumerated
    assert sum(sampled) / len(sampled) == pytest.approx(exact, abs=0.04)


def test_budgets_and_bad_k():
    from tts_eval.estimators import budgets, pass_at_k

    assert budgets(1) == [1] and budgets(4) == [1, 2, 4] and budgets(6) == [1, 2, 4, 6] and budgets(16)[-1] == 16
    assert pass_at_k(4, 0, 4) == 0.0 and pass_at_k(4, 1, 4) == 1.0 and pass_at_k(4, 1, 1) == 0.25
    with pytest.raises(ValueError, match="k must be"):
        pass_at_k(4, 1, 5)


# -- hand-made runs in lm-eval's own layout ---------------------------------------------


def _trajectory(answer: str | None, score: float, tokens: int = 10) -> Trajectory:
    text = "Step.\n\n" + (f"\\boxed{{{answer}}}" if answer is not None else "no answer")
    return Trajectory(
        steps=["Step.\n\n", text[len("Step.\n\n") :]],
        step_scores=[0.5, score],
        finished=True,
        num_tokens=tokens,
        answer=answer,
    )


def _tts_sample(doc_id: int, doc: dict, candidates: list[Trajectory], voting: str, usage: Usage) -> dict:
    from lm_eval.utils import hash_string

    from tts_eval.grading import is_equivalent
    from tts_eval.serialization import result_to_dict
    from tts_eval.voting import vote

    chosen = vote(candidates, voting, "last")
    result = SearchResult(candidates[chosen].answer, candidates[chosen], candidates, usage)
    acc = float(candidates[chosen].answer is not None and is_equivalent(doc["answer"], candidates[chosen].answer))
    return {
        "doc_id": doc_id,
        "doc": doc,
        "target": doc["answer"],
        "arguments": [(doc["problem"], {"until": []})],
        "resps": [[candidates[chosen].text]],
        "filtered_resps": [json.dumps(result_to_dict(result))],
        "filter": "none",
        "metrics": ["acc"],
        "doc_hash": hash_string(json.dumps(doc)),
        "prompt_hash": hash_string(doc["problem"]),
        "target_hash": hash_string(doc["answer"]),
        "acc": acc,
    }


def _plain_sample(doc_id: int, doc: dict, response: str, metric: str, value: float) -> dict:
    from lm_eval.utils import hash_string

    return {
        "doc_id": doc_id,
        "doc": doc,
        "target": doc["answer"],
        "arguments": [(f"Problem: {doc['problem']}\nAnswer:", {"until": ["Problem:"]})],
        "resps": [[response]],
        "filtered_resps": [response],
        "filter": "none",
        "metrics": [metric],
        "doc_hash": hash_string(json.dumps(doc)),
        "prompt_hash": hash_string(doc["problem"]),
        "target_hash": hash_string(doc["answer"]),
        metric: value,
    }


def write_run(output_path: Path, model: str, model_args: dict, samples: dict[str, list[dict]], *, config: dict | None = None,
              lm_eval_version: str | None = "0.4.13", original: int = 500) -> Path:  # fmt: skip
    """Save a run as lm-eval's CLI does (``EvaluationTracker``); return the model folder."""
    from lm_eval.loggers import EvaluationTracker

    tracker = EvaluationTracker(output_path=str(output_path))
    tracker.general_config_tracker.log_experiment_args(
        model_source=model,
        model_args=model_args,
        system_instruction=None,
        chat_template=None,
        fewshot_as_multiturn=False,
    )
    metric = {t: next(m for m in ("acc", "exact_match", "math_verify") if m in rows[0]) for t, rows in samples.items()}
    results = {
        "results": {
            t: {"alias": t, f"{metric[t]},none": sum(r[metric[t]] for r in rows) / len(rows)}
            for t, rows in samples.items()
        },
        "group_subtasks": {t: [] for t in samples},
        "configs": {t: {"task": t, "output_type": "generate_until"} for t in samples},
        "versions": {t: 1.0 for t in samples},
        "n-shot": {t: 0 for t in samples},
        "higher_is_better": {t: {metric[t]: True} for t in samples},
        "n-samples": {t: {"original": original, "effective": len(rows)} for t, rows in samples.items()},
        "config": {"model": model, "model_args": model_args, **(config or {})},
        "git_hash": None,
        "date": 0.0,
    }
    if lm_eval_version is not None:
        results["lm_eval_version"] = lm_eval_version
    tracker.save_results_aggregated(results=results, samples=samples)
    for task, rows in samples.items():
        tracker.save_results_samples(task_name=task, samples=rows)
    (folder,) = [p for p in Path(output_path).iterdir() if p.is_dir()]
    return folder


def _tts_config(
    policy: str, strategy: str, n: int, voting: str, *, beam_size: int = 4, prm: str | None = "tiny-prm"
) -> dict:
    return {
        "model_num_parameters": 1_000_000,
        "prm_num_parameters": 2_000_000 if prm else None,
        "tts": {
            "policy": policy, "strategy": strategy, "prm": prm, "prm_name": prm, "n": n, "beam_size": beam_size,
            "voting": voting, "aggregation": "last", "temperature": 0.0 if strategy == "cot" else 0.7,
        },
    }  # fmt: skip


# Per MATH-500 problem: the candidates' answers (None: no answer) and last-step scores.
BON_CANDIDATES = [
    [("\\left( 3, \\frac{\\pi}{2} \\right)", 0.9), ("0", 0.2), ("(3,\\frac{\\pi}{2})", 0.4), ("1", 0.8)],
    [("p - q", 0.3), ("p+q", 0.7), ("p+q", 0.6), (None, 0.9)],
    [("\\frac{14}{3}", 0.1), ("\\frac{14}{3}", 0.2), ("5", 0.95), ("4", 0.3)],
    [("9", 0.6), ("9", 0.5), ("9", 0.7), ("9", 0.4)],
]
AIME_CANDIDATES = [
    [("204", 0.2), ("12", 0.9), ("204", 0.3), ("13", 0.1)],
    [("1", 0.5), ("2", 0.5), ("3", 0.5), ("4", 0.5)],
]


@pytest.fixture(scope="module")
def handmade_runs(tmp_path_factory, math500_rows, data_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("handmade-runs")
    math = math500_rows(4)
    aime = [
        json.loads(line) for line in (data_dir / "aime24" / "test.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    ]
    for doc in aime:
        doc["answer"] = str(doc["answer"])
    usage = Usage(policy_input_tokens=100, policy_output_tokens=60, prm_tokens=300, flops=0.0, prm_scored_tokens=900)

    def samples(docs, table, voting):
        return [
            _tts_sample(i, doc, [_trajectory(a, s) for a, s in table[i]], voting, usage) for i, doc in enumerate(docs)
        ]

    folders = {}
    folders["bon"] = root / "bon"
    write_run(folders["bon"], "tts", {"policy": "org/Tiny-Policy", "prm": "tiny-prm"},
              {"math500_tts": samples(math, BON_CANDIDATES, "prm_vote"), "aime24_tts": samples(aime, AIME_CANDIDATES, "prm_vote")},
              config=_tts_config("org/Tiny-Policy", "best_of_n", 4, "prm_vote"))  # fmt: skip
    dvts_table = [[c[0], c[2]] for c in BON_CANDIDATES]  # two subtrees (N=4, M=2)
    folders["dvts"] = root / "dvts"
    write_run(folders["dvts"], "tts", {"policy": "org/Tiny-Policy", "prm": "tiny-prm"},
              {"math500_tts": samples(math, dvts_table, "prm_max")},
              config=_tts_config("org/Tiny-Policy", "dvts", 4, "prm_max", beam_size=2))  # fmt: skip
    folders["vllm"] = root / "vllm"
    responses = ["\\boxed{(3, \\pi/2)}", "\\boxed{p-q}", "\\boxed{5}", "\\boxed{9}"]
    write_run(folders["vllm"], "vllm", {"pretrained": "org/Big-Model-70B"},
              {"minerva_math500": [_plain_sample(i, d, r, "math_verify", float(i in (1, 3))) for i, (d, r) in enumerate(zip(math, responses))]})  # fmt: skip
    return folders


@pytest.fixture(scope="module")
def params_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text("models:\n  Big-Model-70B:\n    parameters: 70e9\n    training_tokens: 15e12\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def handmade_board(handmade_runs, params_file, tmp_path_factory):
    from leaderboard import build_leaderboard

    out = tmp_path_factory.mktemp("handmade-board") / "board"
    board = build_leaderboard(list(handmade_runs.values()), out, params=params_file)
    return board, out


def _row(board, **setup):
    found = [r for r in board.rows if all(getattr(r.setup, k) == v for k, v in setup.items()) and r.kind != "published"]
    assert len(found) == 1, (setup, [r.setup for r in found])
    return found[0]


def test_rows_from_runs_of_the_tts_model_and_another_model(handmade_board):
    board, _ = handmade_board
    bon = _row(board, strategy="best_of_n", voting="prm_vote", n=4)
    assert bon.kind == "measured" and bon.setup.policy == "org/Tiny-Policy" and bon.setup.prm == "tiny-prm"
    # prm_vote over all four: problem 0 groups (3, pi/2) twice (0.9 + 0.4) -> right; problem 1
    # p+q (0.7 + 0.6) beats p - q -> wrong; problem 2 14/3 (0.3) < 5 (0.95) -> wrong; 9 -> right.
    assert bon.scores["MATH-500"].per_problem == {
        "test/precalculus/807.json": 1.0,
        "test/intermediate_algebra/1994.json": 0.0,
        "test/algebra/2584.json": 0.0,
        "test/number_theory/572.json": 1.0,
    }
    assert bon.accuracy("MATH-500") == 0.5 and bon.accuracy("AIME24") == 0.0 and bon.average() == 0.25
    # Tokens and FLOPs per problem: 160 policy + 300 PRM tokens; 2 x (1e6 x 160 + 2e6 x 300).
    assert bon.tokens() == 460.0 and bon.flops() == 2 * (1e6 * 160 + 2e6 * 300)

    maj2 = _row(board, strategy="majority", voting="majority", n=2)
    assert maj2.kind == "derived" and maj2.setup.prm is None and maj2.scores["MATH-500"].source_n == 4
    # maj@2 = mean over the 6 pairs of the pair's vote (ties go to the first): problem 0: pairs
    # (0,1),(0,2),(0,3),(2,x)... right when the first candidate of the pair is (3, pi/2) or both are.
    assert maj2.scores["MATH-500"].per_problem["test/precalculus/807.json"] == pytest.approx(4 / 6)
    assert maj2.scores["MATH-500"].per_problem["test/number_theory/572.json"] == 1.0
    # A run at 2 sends the one prompt (100 tokens) once and generates half of the 60: 130 policy
    # tokens, no PRM (tts_eval.flops.at_budget).
    assert maj2.tokens() == 130.0 and maj2.flops() == 2 * 1e6 * 130
    prm_max1 = _row(board, strategy="best_of_n", voting="prm_max", n=1)
    assert prm_max1.scores["MATH-500"].per_problem["test/algebra/2584.json"] == pytest.approx(2 / 4)
    pass4 = _row(board, strategy="majority", voting="pass@k", n=4)
    assert pass4.accuracy("MATH-500") == 1.0 and pass4.accuracy("AIME24") == 0.5

    # DVTS: 2 subtrees of M=2; k=1 subtree is budget 2.
    dvts2 = _row(board, strategy="dvts", voting="prm_max", n=2)
    assert dvts2.setup.beam_size == 2 and dvts2.scores["MATH-500"].problems == 4
    assert dvts2.tokens() == (160 + 300) / 2

    # The vllm run: CoT, accuracy from math_verify, parameters from the params file, tokens
    # unknown (its tokenizer is not available offline), pre-training FLOPs = 6 x 70e9 x 15e12.
    big = _row(board, policy="org/Big-Model-70B")
    assert big.setup.strategy == "cot" and big.accuracy("MATH-500") == 0.5 and big.accuracy("AIME24") is None
    assert big.policy_params == 70e9 and big.tokens() is None and big.flops() is None
    assert big.pretraining_flops == pytest.approx(6 * 70e9 * 15e12)
    assert "not available locally" in big.scores["MATH-500"].tokens_note


def test_published_rows_are_marked_and_match_the_paper(handmade_board):
    from leaderboard.reference import load_reference

    board, out = handmade_board
    published = [r for r in board.rows if r.kind == "published"]
    assert published and all(not r.scores for r in published)
    by_name = {(r.setup.policy, r.setup.strategy, r.method): r for r in published}
    assert by_name[("GPT-4o", "cot", "Table 3")].published == pytest.approx({"MATH-500": 0.746, "AIME24": 0.093})
    assert by_name[("Llama-3.2-1B-Instruct", "majority", "Table 5")].published == pytest.approx({"MATH-500": 0.39})
    reference = load_reference()
    # Table 4 counts 6 x nominal parameters (3B, 7B) x training tokens: within 10% of the exact counts.
    for name in ("Llama-3.2-3B-Instruct", "Llama-3.1-405B-Instruct", "DeepSeek-R1", "DeepSeek-R1-Distill-Qwen-7B"):
        facts = reference.models[name]
        assert 6 * facts.parameters * facts.training_tokens == pytest.approx(facts.pretraining_flops, rel=0.1), name
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "| GPT-4o | — | — | CoT | — | — | 74.6 | 9.3 | 42.0 |" in md
    assert "| published (Table 3) |" in md and md.count("published (") == len(published)


def test_outputs_are_complete_and_self_contained(handmade_board):
    _, out = handmade_board
    names = sorted(p.name for p in out.iterdir())
    # The PRM analyses' plots too, but not TTS vs PRM quality: tiny-prm has no ProcessBench F1.
    plots = [
        "accuracy_by_difficulty",
        "accuracy_vs_flops",
        "accuracy_vs_n",
        "frontier",
        "small_vs_large",
        "length_bias",
        "voting_sensitivity",
    ]
    assert names == sorted(
        ["leaderboard.html", "leaderboard.json", "leaderboard.md", *(f"{p}.{e}" for p in plots for e in ("png", "svg"))]
    )
    data = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    bon = next(
        r
        for r in data["rows"]
        if r["setup"]["strategy"] == "best_of_n" and r["setup"]["voting"] == "prm_vote" and r["setup"]["n"] == 4
    )
    # The PRM computed 300 tokens per problem of the 900 its inputs held (it reused prefixes).
    assert (bon["benchmarks"]["MATH-500"]["prm_tokens"], bon["benchmarks"]["MATH-500"]["prm_scored_tokens"]) == (
        300,
        900,
    )
    assert bon["benchmarks"]["MATH-500"]["by_level"] == {
        "2": {"accuracy": 1.0, "problems": 1},
        "3": {"accuracy": 0.5, "problems": 2},
        "5": {"accuracy": 0.0, "problems": 1},
    }
    # Pass@1 from the Best-of-N run's candidates: 0.5, 0.25, 0.5, 1.0 -> easy, medium, easy, easy.
    assert bon["benchmarks"]["MATH-500"]["by_difficulty"] == {
        "easy": {"accuracy": 2 / 3, "problems": 3},
        "medium": {"accuracy": 0.0, "problems": 1},
    }
    html = (out / "leaderboard.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html


def test_every_measured_and_derived_accuracy_has_its_interval_and_comparisons_are_paired(handmade_board):
    from leaderboard.comparisons import SMALL_VS_LARGE, STRATEGY_VS_STRATEGY, compare
    from tts_eval.statistics import Interval

    board, out = handmade_board
    bon = _row(board, strategy="best_of_n", voting="prm_vote", n=4)
    # Right on problems 0 and 3 of 4: a resample misses both with probability 1/16 > 2.5%, so
    # the 95% percentile interval runs from 0 to 1.
    assert bon.interval("MATH-500") == Interval(0.5, 0.0, 1.0)
    data = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    for row in data["rows"]:
        for benchmark, entry in row["benchmarks"].items():
            if row["kind"] == "published":
                assert "ci_low" not in entry
            else:
                assert entry["ci_low"] <= entry["accuracy"] <= entry["ci_high"], (row["title"], benchmark)
    aime = next(
        r
        for r in data["rows"]
        if r["setup"]["strategy"] == "best_of_n" and r["setup"]["voting"] == "prm_vote" and r["setup"]["n"] == 4
    )["benchmarks"]["AIME24"]
    assert (aime["accuracy"], aime["ci_low"], aime["ci_high"]) == (0.0, 0.0, 0.0)  # every resample misses
    # The average over MATH-500 (1, 0, 0, 1) and AIME24 (0, 0): half of MATH-500's interval.
    assert bon.average_interval() == Interval(0.25, 0.0, 0.5)
    # Markdown cells escape brackets (a renderer shows them as written).
    assert "| 50.0 \\[0.0, 100.0\\] |" in (out / "leaderboard.md").read_text(encoding="utf-8")

    # The tiny policy's best TTS row against the 70B model's CoT, on the 4 problems both have.
    (versus,) = [c for c in data["comparisons"] if c["kind"] == SMALL_VS_LARGE and c["benchmark"] == "MATH-500"]
    assert versus["baseline"] == "org/Big-Model-70B · CoT" and versus["problems"] == 4
    assert versus["difference"] == pytest.approx(versus["setup_accuracy"] - versus["baseline_accuracy"])
    # Four problems cannot separate two setups: a resample of only tied problems has odds 1/16 at least.
    assert versus["verdict"] == "ties" and versus["ci_low"] <= 0 <= versus["ci_high"]
    assert any(c["kind"] == STRATEGY_VS_STRATEGY for c in data["comparisons"])
    itself = compare(bon, bon, "MATH-500", STRATEGY_VS_STRATEGY)
    assert itself.difference == Interval(0.0, 0.0, 0.0) and itself.verdict == "ties"
    html = (out / "leaderboard.html").read_text(encoding="utf-8")
    assert "Paired comparisons" in html and "50.0 [0.0, 100.0]" in html


# -- bad input ------------------------------------------------------------------------------


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(folder.parent, target)
    return target


def _edit_results(run: Path, edit) -> None:
    (path,) = run.glob("*/results_*.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _bad_inputs():
    def no_results(run):
        for p in run.glob("*/results_*.json"):
            p.unlink()

    def version(value):
        return lambda run: _edit_results(run, lambda d: d.update(lm_eval_version=value))

    def no_version(run):
        _edit_results(run, lambda d: d.pop("lm_eval_version"))

    def unknown_task(run):
        def edit(d):
            d["results"]["gsm8k"] = {"alias": "gsm8k"}

        _edit_results(run, edit)

    def two_math_tasks(run):
        def edit(d):
            d["results"]["minerva_math500"] = {"alias": "minerva_math500"}

        _edit_results(run, edit)

    def missing_samples(run):
        next(run.glob("*/samples_aime24_tts_*.jsonl")).unlink()

    def stray_samples(run):
        source = next(run.glob("*/samples_aime24_tts_*.jsonl"))
        shutil.copy(source, source.with_name(source.name.replace("aime24_tts", "gsm8k")))

    def truncated(run):
        path = next(run.glob("*/samples_math500_tts_*.jsonl"))
        path.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:-1]), encoding="utf-8")

    return [
        (no_results, "no lm-eval results"),
        (version("0.5.2"), "written by lm-eval 0.5.2"),
        (version("banana"), "written by lm-eval banana"),
        (no_version, "no 'lm_eval_version'"),
        (unknown_task, "gsm8k are not MATH-500, AIME24 or the toy world"),
        (two_math_tasks, "both measure MATH-500"),
        (missing_samples, "no samples file for task(s) aime24_tts"),
        (stray_samples, "samples for task(s) gsm8k"),
        (truncated, "3 problems, but the results file counts 4"),
    ]


@pytest.mark.parametrize(
    "damage, message", _bad_inputs(), ids=lambda v: getattr(v, "__name__", None) if callable(v) else None
)
def test_bad_input_gives_one_clear_error_and_leaves_out_untouched(
    handmade_runs, handmade_board, tmp_path, damage, message
):
    import typer
    from typer.testing import CliRunner

    from tts_eval.cli.leaderboard_cmd import leaderboard

    run = _copy(next(handmade_runs["bon"].iterdir()), tmp_path)
    damage(run)
    out = tmp_path / "published-board"
    shutil.copytree(handmade_board[1], out)  # an earlier leaderboard that must survive
    before = sorted((p.name, p.stat().st_size) for p in out.iterdir())
    app = typer.Typer()
    app.command()(leaderboard)
    result = CliRunner().invoke(app, [str(run), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert sorted((p.name, p.stat().st_size) for p in out.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["published-board", "run"]  # no staging folder left


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models:\n  A:\n    paramters: 7e9\n", "unknown field 'models.A.paramters'; remove it or fix its spelling"),
        ("models:\n  A:\n    parameters: -1\n", "field 'models.A.parameters': Input should be greater than 0 (got -1)"),
    ],
)
def test_a_bad_params_file_names_the_file_and_field(tmp_path, text, message):
    from leaderboard import LeaderboardError
    from leaderboard.reference import load_params

    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LeaderboardError) as err:
        load_params(path)
    assert str(err.value) == f"{path}: {message}"


def test_out_must_be_a_leaderboard_folder_or_new(handmade_runs, tmp_path):
    from leaderboard import LeaderboardError, build_leaderboard

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(LeaderboardError, match="holds other files"):
        build_leaderboard([handmade_runs["dvts"]], out, use_reference=False)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    fresh = tmp_path / "fresh"
    build_leaderboard([handmade_runs["dvts"]], fresh, use_reference=False)
    build_leaderboard([handmade_runs["dvts"]], fresh, use_reference=False)  # replacing an earlier one is fine
    assert (fresh / "leaderboard.json").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "out"]


def test_two_runs_of_one_setup_on_one_benchmark_are_refused(handmade_runs, tmp_path):
    from leaderboard import LeaderboardError, collect

    twin = tmp_path / "twin"
    shutil.copytree(handmade_runs["dvts"], twin)
    with pytest.raises(LeaderboardError, match="two runs measure the same setup on MATH-500"):
        collect([handmade_runs["dvts"], twin], use_reference=False)


# -- the HTML page in a real browser --------------------------------------------------------

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)  # fmt: skip


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def test_html_headline_fold_toggle_sorting_filters_and_narrow_screen_in_headless_chromium(handmade_board, tmp_path):
    found = _chromium()
    if found is None:
        message = "chromium and chromedriver are needed: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    browser, driver_path = found
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from leaderboard.table import split_rows

    board, out = handmade_board
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)

    def viewport(width: int, height: int) -> None:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def no_page_overflow() -> bool:
        return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")

    def shown_rows() -> list:
        return [r for r in driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr") if r.is_displayed()]

    ARTIFACTS.mkdir(exist_ok=True)
    try:
        viewport(1400, 900)
        driver.get((out / "leaderboard.html").as_uri())
        assert driver.execute_script("return [window.innerWidth, window.innerHeight]") == [1400, 900]
        # The answer is on the first screen: the headline heading and its first matchup.
        lead = driver.find_element(By.CSS_SELECTOR, "#headline p.lead")
        first = driver.find_element(By.CSS_SELECTOR, "#headline table tbody tr")
        assert "Tiny-Policy" in lead.text and "Big-Model-70B" in first.text
        assert driver.execute_script("return arguments[0].getBoundingClientRect().bottom", first) <= 900
        assert no_page_overflow()
        assert driver.save_screenshot(str(ARTIFACTS / "leaderboard-1400x900.png"))
        images = driver.find_elements(By.CSS_SELECTOR, "figure img")
        assert len(images) == 7  # five of the leaderboard, two of the PRM analyses
        assert len(driver.find_elements(By.CSS_SELECTOR, "table.analysis")) == 2  # length bias, voting sensitivity
        assert all(
            driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
            for img in images
        )

        # Derived, other-voting and published rows are folded until the toggle opens them.
        compact, rest = split_rows(board.rows)
        assert len(shown_rows()) == len(compact) and len(rest) > 20
        toggle = driver.find_element(By.ID, "show-folded")
        toggle.click()
        assert len(shown_rows()) == len(board.rows)
        assert no_page_overflow()

        header = driver.find_element(By.CSS_SELECTOR, 'th[data-key="math500"]')
        column = header.get_property("cellIndex")

        def column_values() -> list[float | None]:
            script = "return Array.from(document.querySelectorAll('#leaderboard tbody tr')).map(r => r.cells[arguments[0]].dataset.sort)"
            return [float(v) if v else None for v in driver.execute_script(script, column)]

        header.click()
        ascending = column_values()
        known = [v for v in ascending if v is not None]
        assert known == sorted(known) and len(set(known)) > 2 and ascending[: len(known)] == known
        assert header.get_attribute("aria-sort") == "ascending"
        header.click()
        descending = [v for v in column_values() if v is not None]
        assert descending == sorted(known, reverse=True)
        driver.execute_script("document.documentElement.style.height = 'auto'")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        viewport(1400, height)
        assert driver.save_screenshot(str(ARTIFACTS / "leaderboard-full-sorted.png"))
        viewport(1400, 900)

        strategy = driver.find_element(By.ID, "filter-strategy")
        strategy.find_element(By.CSS_SELECTOR, 'option[value="DVTS (M=2)"]').click()
        visible = shown_rows()
        assert visible and all("DVTS" in r.text for r in visible)
        toggle.click()  # folded again: only the measured DVTS row is left
        assert [r.text.count("DVTS") for r in shown_rows()] == [1]

        # A phone-sized screen: still no sideways page scroll (tables scroll in their boxes).
        viewport(420, 900)
        assert no_page_overflow()
        assert driver.save_screenshot(str(ARTIFACTS / "leaderboard-420px.png"))
        # Printing hides the controls.
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        assert driver.execute_script("return getComputedStyle(document.querySelector('.filters')).display") == "none"
        print(f"leaderboard screenshots: {ARTIFACTS}/leaderboard-*.png")
    finally:
        driver.quit()


# -- tree searches, difficulty, published rows, folders --------------------------------------


def test_tree_search_rows_have_no_pass_at_1_of_their_own_and_take_buckets_from_a_sampled_run(handmade_board):
    board, out = handmade_board
    tree_votings = {r.setup.voting for r in board.rows if r.setup.strategy in ("beam_search", "dvts")}
    assert "pass@k" not in tree_votings and "any final candidate correct" in tree_votings
    # Any of the 2 subtrees' final answers right: each problem's first subtree is.
    oracle = _row(board, strategy="dvts", voting="any final candidate correct", n=4)
    assert oracle.accuracy("MATH-500") == 1.0 and oracle.kind == "derived"
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "| DVTS (M=2) | any final candidate correct | 4 |" in md and "| DVTS (M=2) | pass@k" not in md
    # DVTS's buckets are the Best-of-N run's (same policy, same problems): 3 easy, 1 medium.
    data = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    dvts = next(
        r
        for r in data["rows"]
        if r["setup"]["strategy"] == "dvts" and r["setup"]["voting"] == "prm_max" and r["setup"]["n"] == 4
    )
    assert {b: v["problems"] for b, v in dvts["benchmarks"]["MATH-500"]["by_difficulty"].items()} == {
        "easy": 3,
        "medium": 1,
    }


# Gold answers 2, 37, 5, 64 (2 to 5 operations).
TOY_CANDIDATES = [
    [("2", 0.9), ("3", 0.2)],
    [("37", 0.8), ("37", 0.6)],
    [("4", 0.7), ("5", 0.3)],
    [("1", 0.1), ("1", 0.2)],
]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    from tts_eval.toy import load_test_problems

    root = tmp_path_factory.mktemp("toy-runs") / "runs"
    docs = [{"problem": p.question, "answer": p.answer, "difficulty": p.difficulty} for p in load_test_problems()[:4]]
    usage = Usage(policy_input_tokens=50, policy_output_tokens=30, prm_tokens=80, flops=0.0)
    rows = [
        _tts_sample(i, d, [_trajectory(a, s) for a, s in TOY_CANDIDATES[i]], "prm_vote", usage)
        for i, d in enumerate(docs)
    ]
    write_run(root / "nested" / "bon", "tts", {"policy": "toy"}, {"arith_tts": rows},
              config=_tts_config("toy", "best_of_n", 2, "prm_vote"), original=700)  # fmt: skip
    return root


def test_toy_board_shows_difficulty_in_percent_and_no_published_math_rows(toy_run, tmp_path):
    from leaderboard import build_leaderboard, collect
    from leaderboard.difficulty import accuracy_by_level
    from leaderboard.plots import _accuracy_by_difficulty
    from leaderboard.table import row_title

    # Found two folders down; the published figures are all MATH-500/AIME24, which no run measured.
    board = build_leaderboard([toy_run], tmp_path / "board")
    assert all(r.kind != "published" for r in board.rows) and board.reference_source is None
    assert len([r for r in collect([toy_run], all_reference=True).rows if r.kind == "published"]) > 40
    # Operations 2, 3, 4, 5; prm_vote (last step) right on problems 0 and 1; Pass@1 0.5, 1, 0.5, 0.
    bon = _row(board, strategy="best_of_n", voting="prm_vote", n=2)
    by_level = {lv: a for lv, (a, _) in accuracy_by_level(bon, "Toy arithmetic").items()}
    assert by_level == {2: 1.0, 3: 1.0, 4: 0.0, 5: 0.0}
    md = (tmp_path / "board" / "leaderboard.md").read_text(encoding="utf-8")
    assert "## Toy arithmetic accuracy by operations (%)" in md and "Pass@1 bucket" in md
    assert "| 100.0 (1) | 100.0 (1) | 0.0 (1) | 0.0 (1) |" in md
    html = (tmp_path / "board" / "leaderboard.html").read_text(encoding="utf-8")
    assert '<option value="Toy arithmetic">Toy arithmetic</option>' in html  # the task filter offers it
    figure = _accuracy_by_difficulty(board, ["Toy arithmetic"])
    level_ax, bucket_ax = figure.axes
    curve = next(line for line in level_ax.get_lines() if line.get_label() == row_title(bon))
    assert list(curve.get_xdata()) == [2, 3, 4, 5] and list(curve.get_ydata()) == [100.0, 100.0, 0.0, 0.0]
    # Easy (Pass@1 >= 50%): problems 0-2, two right; hard: problem 3, wrong.
    bars = next(c for c in bucket_ax.containers if c.get_label() == row_title(bon))
    assert [p.get_height() for p in bars] == pytest.approx([200 / 3, 0.0])
    for ax in (level_ax, bucket_ax):
        assert ax.get_ylim() == (0.0, 100.0) and ax.get_ylabel() == "Toy arithmetic accuracy (%)"


def test_leaderboard_folder_follows_the_umask(toy_run, tmp_path):
    from leaderboard import build_leaderboard

    previous = os.umask(0o022)
    try:
        build_leaderboard([toy_run], tmp_path / "board")
    finally:
        os.umask(previous)
    assert (tmp_path / "board").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "board" / "leaderboard.md").stat().st_mode & 0o777 == 0o644


def test_grading_failures_are_counted_and_judged_wrong(monkeypatch):
    """Every checker killed as it starts (as by the OOM killer): the leaderboard still grades,
    counting each undecidable (gold, answer) pair once."""
    import os
    import signal
    from types import SimpleNamespace

    from leaderboard.grading import grade_candidates
    from tts_eval.grading import checkers

    original = checkers._Checker.__init__

    def killed(self, *args, **kwargs):
        original(self, *args, **kwargs)
        os.kill(self.process.pid, signal.SIGKILL)

    answers = ["\\frac{1}{2}", "1/2", "0.500001", "1/2", None]  # "1/2" twice: one pair
    problem = SimpleNamespace(
        gold="\\frac12", candidates=[SimpleNamespace(answer=a) for a in answers], candidate_correct=None
    )
    run = SimpleNamespace(tasks={"math500_tts": SimpleNamespace(problems=[problem])})
    checkers.shutdown()
    monkeypatch.setattr(checkers._Checker, "__init__", killed)
    try:
        failures = grade_candidates([run])
    finally:
        monkeypatch.undo()
        checkers.shutdown()
    assert failures == 2  # "1/2" and "0.500001" need the checker; "\frac{1}{2}" is the gold's normal form
    assert problem.candidate_correct == [True, False, False, False, False]
