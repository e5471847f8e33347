"""The leaderboard's headline and compute-optimal frontier on real toy-world runs (the shipped
policies and PRM through lm-eval, as ``tts-eval demo`` runs them), every number recomputed
from the samples files alone; and the plots' legends and labels placed where a reader sees
them whole (matplotlib's bounding boxes)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_leaderboard_e2e import _config, _expected_tts_rows, _samples, _subset_mean, _unescape

pytestmark = pytest.mark.slow

LIMIT = 12  # toy test problems per run (the split cycles through 2-8 operations)
STRATEGY_TITLES = {"best_of_n": "Best-of-N", "majority": "Majority", "cot": "CoT", "dvts": "DVTS"}
ORACLES = ("pass@k", "any final candidate correct")


@pytest.fixture(scope="module")
def toy_board(tmp_path_factory):
    """Large-policy CoT, small-policy CoT, Best-of-N and DVTS (N=4, M=2, the toy PRM), and
    the board built from their output folders."""
    from leaderboard import build_leaderboard
    from tts_eval.cli.demo_cmd import TASK, DemoRun, model_args
    from tts_eval.lm_eval.runner import run_evaluation

    root = tmp_path_factory.mktemp("toy-headline")
    folders = {}
    plan = (
        DemoRun("large", "cot", 1),
        DemoRun("small", "cot", 1),
        DemoRun("small", "best_of_n", 4),
        DemoRun("small", "dvts", 4),
    )
    for run in plan:
        folders[run.label] = root / "runs" / run.label
        run_evaluation(
            model_args(run, beam_size=2, seed=0), [TASK], output_path=folders[run.label], log_samples=True, limit=LIMIT
        )
    board = build_leaderboard([root / "runs"], root / "board")
    return folders, board, root / "board"


def _expected(folders: dict[str, Path]) -> tuple[str, dict[tuple, dict]]:
    """The benchmark, and (policy, strategy, voting, N) -> {accuracy %, flops, folder} of
    every measured and derived row, from the samples."""
    from leaderboard.benchmarks import KNOWN_TASKS
    from tts_eval.cli.demo_cmd import TASK

    benchmark = KNOWN_TASKS[TASK].benchmark
    rows = {}
    for label, folder in folders.items():
        policy = f"policy-{label.split('-')[0]}"
        for (strategy, voting, n), values in _expected_tts_rows(folder, {TASK: benchmark}).items():
            rows[(policy, strategy, voting, n)] = {
                "accuracy": values[benchmark],
                "flops": values["flops"],
                "folder": folder,
            }
    return benchmark, rows


def _per_problem(folder: Path, key: tuple) -> list[float]:
    """A row's outcome on each problem (by doc_id), from the samples: the run's own grade, or
    for a derived row the share of size-k subsets of the candidates whose vote is right."""
    from tts_eval.cli.demo_cmd import TASK
    from tts_eval.grading import is_equivalent

    tts = _config(folder)["tts"]
    samples = sorted(_samples(folder, TASK), key=lambda s: s["doc_id"])
    _, strategy, voting, n = key
    if (strategy, voting, n) == (tts["strategy"], None if tts["strategy"] == "cot" else tts["voting"], tts["n"]):
        return [float(s["acc"]) for s in samples]
    k = n // (tts["beam_size"] if tts["strategy"] == "dvts" else 1)
    values = []
    for s in samples:
        candidates = json.loads(s["filtered_resps"][0])["candidates"]
        correct = [c["answer"] is not None and is_equivalent(s["doc"]["answer"], c["answer"]) for c in candidates]
        values.append(_subset_mean(candidates, correct, k, voting, tts["aggregation"]))
    return values


def _title(key: tuple) -> tuple[str, ...]:
    """The parts a row title of ``key`` has, in order."""
    policy, strategy, voting, n = key
    if strategy == "cot":
        return (policy, "CoT")
    return (policy, STRATEGY_TITLES[strategy], voting, f"N={n}")


def _matches(title: str, key: tuple) -> bool:
    parts = [p.split(" (")[0] for p in title.split(" · ")]
    wanted = _title(key)
    return [p for p in parts if p != "Toy-PRM"] == list(wanted)


def _markdown_table(lines: list[str], start: int) -> list[dict[str, str]]:
    table = []
    for line in lines[start:]:
        if not line.startswith("| "):
            if table:
                break
            continue
        table.append(line)
    header = [c.strip() for c in table[0].strip("|").split(" | ")]
    return [dict(zip(header, (_unescape(c.strip()) for c in line.strip("|").split(" | ")))) for line in table[2:]]


def _percent(cell: str) -> float:
    return float(cell.split(" [")[0].rstrip("%"))


def test_headline_and_frontier_numbers_match_the_samples(toy_board):
    from leaderboard.formatting import percent, points, ratio, with_interval
    from tts_eval.statistics import accuracy_interval, paired_difference, verdict

    folders, _board, out = toy_board
    _benchmark, rows = _expected(folders)
    candidates = {k: v for k, v in rows.items() if k[2] not in ORACLES}
    small = {k: v for k, v in candidates.items() if k[0] == "policy-small" and k[1] != "cot"}
    # The best small-policy setup: most accurate, then cheapest (equal pairs are the same row).
    top = max(small.values(), key=lambda v: (round(v["accuracy"], 9), -v["flops"]))
    best_keys = [
        k
        for k, v in small.items()
        if math.isclose(v["accuracy"], top["accuracy"]) and math.isclose(v["flops"], top["flops"])
    ]
    large = rows[("policy-large", "cot", None, 1)]

    lines = (out / "leaderboard.md").read_text(encoding="utf-8").splitlines()
    headline = lines.index("## Headline")
    assert lines.index("## Measured results") > headline + 5  # the answer comes first
    (lead_at,) = [i for i, line in enumerate(lines) if line.startswith("Best setup: **")]
    # "Best setup: **<title> (<params> parameters): <accuracy>% on <problems> problems (<source>)**."
    title = lines[lead_at].removeprefix("Best setup: **").split("): ", 1)[0].rsplit(" (", 1)[0]
    assert any(_matches(title, k) for k in best_keys), (title, best_keys)
    assert f": {percent(top['accuracy'] / 100)}" in lines[lead_at] and f"on {LIMIT} problems" in lines[lead_at]
    (matchup,) = _markdown_table(lines, lead_at + 1)
    assert matchup["Larger policy + CoT"] == "policy-large · CoT"
    assert _percent(matchup["CoT accuracy (%)"]) == pytest.approx(large["accuracy"], abs=0.05)
    assert _percent(matchup["TTS accuracy (%)"]) == pytest.approx(top["accuracy"], abs=0.05)
    assert matchup["FLOPs (TTS ÷ CoT)"] == ratio(top["flops"] / large["flops"])
    config = _config(folders["large-cot-n1"])
    assert _percent(matchup["Params"].rstrip("K")) * 1e3 == pytest.approx(config["model_num_parameters"], rel=5e-3)
    # The intervals and the paired verdict, from the per-problem outcomes of both setups.
    (best_key,) = [k for k in best_keys if _matches(title, k)]
    small_outcomes = _per_problem(rows[best_key]["folder"], best_key)
    large_outcomes = _per_problem(folders["large-cot-n1"], ("policy-large", "cot", None, 1))
    assert 100 * sum(small_outcomes) / LIMIT == pytest.approx(top["accuracy"]) and len(large_outcomes) == LIMIT
    assert matchup["CoT accuracy (%)"] == with_interval(sum(large_outcomes) / LIMIT, accuracy_interval(large_outcomes))
    difference = paired_difference(small_outcomes, large_outcomes)
    assert matchup["TTS − CoT (points)"] == points(difference)
    assert matchup["Verdict"] == verdict(difference) in ("beats", "ties", "trails")
    # The paired comparisons of the JSON pick the same setup and reach the same verdict.
    data = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    (pair,) = [c for c in data["comparisons"] if c["kind"] == "small TTS vs large CoT"]
    assert (pair["setup"], pair["verdict"]) == (title, matchup["Verdict"])

    # The frontier: by FLOPs ascending, each strictly more accurate than every cheaper setup.
    ordered = sorted(candidates.items(), key=lambda kv: (kv[1]["flops"], -kv[1]["accuracy"]))
    expected = []
    for key, values in ordered:
        if not expected or values["accuracy"] > expected[-1][1]["accuracy"] + 1e-9:
            expected.append((key, values))
    (frontier_at,) = [i for i, line in enumerate(lines) if line.startswith("Compute-optimal frontier:")]
    table = _markdown_table(lines, frontier_at + 1)
    assert len(table) == len(expected) >= 2
    for row, (_key, values) in zip(table, expected):
        ties = [
            k
            for k, v in candidates.items()
            if math.isclose(v["flops"], values["flops"]) and math.isclose(v["accuracy"], values["accuracy"])
        ]
        assert any(_matches(row["Best setup within this budget"], k) for k in ties), (row, ties)
        assert float(row["FLOPs/problem"]) == pytest.approx(values["flops"], rel=5e-3)
        assert _percent(row["Accuracy (%)"]) == pytest.approx(values["accuracy"], abs=0.05)
        assert "[" in row["Accuracy (%)"]  # with its interval
    # The best setup of all is on the frontier, last, unless a cheaper one equals it.
    assert _percent(table[-1]["Accuracy (%)"]) == pytest.approx(
        max(v["accuracy"] for v in candidates.values()), abs=0.05
    )


def test_plot_legends_lie_outside_every_axes_and_nothing_is_cut(toy_board):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from leaderboard.plots import figures, strategy_colour

    _, board, _ = toy_board
    drawn = figures(board)
    assert set(drawn) == {"accuracy_vs_n", "accuracy_vs_flops", "accuracy_by_difficulty", "small_vs_large", "frontier"}
    for name, figure in drawn.items():
        canvas = FigureCanvasAgg(figure)
        canvas.draw()  # the layout engine places everything
        renderer = canvas.get_renderer()
        legends = list(figure.legends) + [ax.get_legend() for ax in figure.axes if ax.get_legend() is not None]
        assert legends, name
        page = figure.bbox
        for legend in legends:
            box = legend.get_window_extent(renderer)
            for ax in figure.axes:
                assert not box.overlaps(ax.get_window_extent(renderer)), (name, "legend over an axes")
            assert (
                page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1
            ), name
        for ax in figure.axes:  # tick labels, axis labels and titles stay inside the figure
            box = ax.get_tightbbox(renderer)
            assert (
                page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1
            ), name
    # One colour per strategy in every plot: Best-of-N's curve and its frontier points alike.
    colours = {
        tuple(line.get_color()) if not isinstance(line.get_color(), str) else line.get_color()
        for ax in drawn["accuracy_vs_n"].axes
        for line in ax.get_lines()
        if "Best-of-N" in line.get_label()
    }
    assert colours == {strategy_colour("best_of_n")}
