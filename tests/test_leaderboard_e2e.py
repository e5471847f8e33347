"""The leaderboard on output folders of real runs: the ``tts`` model (Best-of-N, DVTS, CoT)
through ``tts-eval run``'s evaluation code, and lm-eval's own CLI with ``--model hf`` as the
large-model CoT baseline. Every number of the Markdown table is recomputed here from the
samples files alone.

The policies are tiny Llamas whose layers add nothing, so the next token depends on the
current one only: they answer every problem with ``\\boxed{...}`` and a number drawn from
a few (9, 42, 2, 25, 4, ...), so some answers to MATH-500's fourth and sixth problems (9, 42)
and AIME24's second (25) are right and others wrong, and votes over them matter.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EOS = "<|im_end|>"
BOXED_START = {"\\": {"b": 1.0}, "b": {"o": 1.0}, "o": {"x": 1.0}, "x": {"e": 1.0}, "e": {"d": 1.0}, "d": {"{": 1.0}}
# Greedy decoding writes \boxed{9}: right on MATH-500's fourth problem.
SMALL_ANSWERS = {
    "{": {"9": 0.36, "4": 0.34, "2": 0.30},
    "4": {"2": 0.8, "}": 0.2},
    "2": {"}": 0.8, "5": 0.2},
    "9": {"}": 1.0},
    "5": {"}": 1.0},
    "}": {EOS: 1.0},
}
# Greedy decoding writes \boxed{42}: right on MATH-500's sixth problem.
LARGE_ANSWERS = {
    "{": {"4": 0.6, "9": 0.4},
    "4": {"2": 0.7, "}": 0.3},
    "2": {"}": 1.0},
    "9": {"}": 1.0},
    "}": {EOS: 1.0},
}
LIMIT = 6
PRM_NAME = "qwen2.5-math-prm-7b"


def answer_writer(out_dir: Path, tokenizer, answers: dict[str, dict[str, float]], hidden_size: int) -> Path:
    """Save a Llama whose attention and MLP outputs are zero, so the residual stream is the
    current token's embedding: one-hot embeddings and an LM head holding log-probabilities
    make it a table of next-token distributions. Every token outside the table (the end of
    any prompt) starts ``\\boxed{``."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    table = {**BOXED_START, **answers}
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    scale = hidden_size**0.5  # a one-hot vector after RMS norm

    def token_id(token: str) -> int:
        found = tokenizer.convert_tokens_to_ids(token)
        assert found is not None and found != tokenizer.unk_token_id, token
        return found

    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.fill_(1.0 if "norm" in name else 0.0)
        embeddings = model.get_input_embeddings().weight
        head = model.get_output_embeddings().weight
        other = hidden_size - 1
        embeddings[:, other] = 1.0
        head[token_id("\\"), other] = 20.0 / scale
        for dim, (source, targets) in enumerate(table.items()):
            embeddings[token_id(source)] = 0.0
            embeddings[token_id(source), dim] = 1.0
            for target, p in targets.items():
                head[token_id(target), dim] = (20.0 + math.log(p)) / scale
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def run_folders(tmp_path_factory, data_dir: Path) -> dict[str, Path]:
    """Output folders of four real runs (written once per module)."""
    from prm_fixtures import tiny_prm_dir
    from tiny_models import char_tokenizer, corpus_from_data

    from tts_eval.lm_eval.runner import run_evaluation

    os.environ.setdefault("TTS_EVAL_DATA_DIR", str(data_dir))
    root = tmp_path_factory.mktemp("leaderboard-runs")
    tokenizer = char_tokenizer(corpus_from_data(data_dir))
    small = answer_writer(root / "small-policy", tokenizer, SMALL_ANSWERS, hidden_size=64)
    large = answer_writer(root / "large-policy", tokenizer, LARGE_ANSWERS, hidden_size=128)
    prm = tiny_prm_dir("token_classifier")
    base = {"policy": str(small), "device": "cpu", "max_tokens": 24, "seed": 0}
    with_prm = {**base, "prm": PRM_NAME, "prm_model": str(prm)}
    runs = {
        "best_of_n": (
            {**with_prm, "strategy": "best_of_n", "n": 4, "voting": "prm_vote"},
            ["math500_tts", "aime24_tts"],
        ),
        "dvts": ({**with_prm, "strategy": "dvts", "n": 4, "beam_size": 2, "voting": "prm_max"}, ["math500_tts"]),
        "cot": ({**base, "strategy": "cot"}, ["math500_tts", "aime24_tts"]),
    }
    folders = {}
    for name, (model_args, tasks) in runs.items():
        folders[name] = root / name
        run_evaluation(model_args, tasks, output_path=folders[name], log_samples=True, limit=LIMIT)
    folders["hf"] = root / "hf"
    command = [
        sys.executable, "-m", "lm_eval", "--model", "hf",
        "--model_args", f"pretrained={large},dtype=float32", "--device", "cpu",
        "--tasks", "math500_tts,aime24_tts", "--limit", str(LIMIT), "--apply_chat_template",
        "--output_path", str(folders["hf"]), "--log_samples",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return folders


@pytest.fixture(scope="module")
def board_dir(run_folders, tmp_path_factory) -> Path:
    from leaderboard import build_leaderboard

    out = tmp_path_factory.mktemp("board") / "leaderboard"
    build_leaderboard(list(run_folders.values()), out)
    return out


# -- an independent reading of the samples ----------------------------------------------


def _samples(folder: Path, task: str) -> list[dict]:
    (path,) = folder.glob(f"*/samples_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _config(folder: Path) -> dict:
    (path,) = folder.glob("*/results_*.json")
    return json.loads(path.read_text(encoding="utf-8"))["config"]


def _subset_mean(candidates, correct, k, voting, aggregation) -> float:
    from tts_eval.types import Trajectory
    from tts_eval.voting import vote

    subsets = list(combinations(range(len(candidates)), k))
    wins = 0
    for subset in subsets:
        trajectories = [
            Trajectory(
                steps=candidates[i]["steps"],
                step_scores=[math.nan if s is None else s for s in candidates[i]["step_scores"]],
                answer=candidates[i]["answer"],
            )
            for i in subset
        ]
        wins += correct[subset[vote(trajectories, voting, aggregation)]]
    return wins / len(subsets)


def _expected_tts_rows(folder: Path, tasks: dict[str, str]) -> dict[tuple, dict]:
    """Every measured and derived row a tts run gives, recomputed from its samples:
    (strategy, voting, N) -> {"MATH-500": %, "AIME24": %, "tokens", "flops", "problems"}."""
    from tts_eval.grading import is_equivalent

    config = _config(folder)
    tts = config["tts"]
    policy_params, prm_params = config["model_num_parameters"], config["prm_num_parameters"]
    unit = tts["beam_size"] if tts["strategy"] == "dvts" else 1
    count = tts["n"] // unit
    measured_key = (tts["strategy"], None if tts["strategy"] == "cot" else tts["voting"], tts["n"])
    values: dict[tuple, dict[str, list]] = {}  # key -> benchmark -> [(value, policy tokens, prm tokens, uses PRM)]

    def add(key, benchmark, value, policy_tokens, prm_tokens, uses_prm):
        values.setdefault(key, {}).setdefault(benchmark, []).append((value, policy_tokens, prm_tokens, uses_prm))

    for task, benchmark in tasks.items():
        for sample in _samples(folder, task):
            result = json.loads(sample["filtered_resps"][0])
            gold = sample["doc"]["answer"]
            candidates = result["candidates"]
            correct = [c["answer"] is not None and is_equivalent(gold, c["answer"]) for c in candidates]
            usage = result["usage"]
            policy_tokens = usage["policy_input_tokens"] + usage["policy_output_tokens"]
            prm_tokens = usage["prm_tokens"]
            add(measured_key, benchmark, sample["acc"], policy_tokens, prm_tokens, tts["prm"] is not None)
            if tts["strategy"] not in ("best_of_n", "dvts"):
                continue
            plain = "majority" if tts["strategy"] == "best_of_n" else "dvts"
            scored = "best_of_n" if tts["strategy"] == "best_of_n" else "dvts"
            for k in (1, 2, 4):
                if k > count:
                    continue
                share, n = k / count, k * unit
                # A run at k: Best-of-N asks for its k solutions in one request, so it sends the
                # prompt once whatever k; DVTS subtrees each send their own prompts.
                if tts["strategy"] == "best_of_n":
                    policy_at_k = usage["policy_input_tokens"] + share * usage["policy_output_tokens"]
                else:
                    policy_at_k = share * policy_tokens
                pass_k = sum(any(correct[i] for i in s) for s in combinations(range(count), k)) / math.comb(count, k)
                derived = [
                    (
                        (plain, "any final candidate correct" if plain == "dvts" else "pass@k", n),
                        pass_k,
                        plain == "dvts",
                    ),
                    (
                        (plain, "majority", n),
                        _subset_mean(candidates, correct, k, "majority", tts["aggregation"]),
                        plain == "dvts",
                    ),
                    *(
                        ((scored, v, n), _subset_mean(candidates, correct, k, v, tts["aggregation"]), True)
                        for v in ("prm_max", "prm_vote")
                    ),
                ]
                for key, value, uses_prm in derived:
                    if key == measured_key:
                        # The run's own answer is this vote over all its candidates.
                        assert value == sample["acc"], (key, sample["doc_id"])
                        continue
                    add(key, benchmark, value, policy_at_k, share * prm_tokens, uses_prm)
    rows = {}
    for key, benchmarks in values.items():
        every = [v for entries in benchmarks.values() for v in entries]
        uses_prm = every[0][3]
        rows[key] = {
            **{b: 100.0 * sum(v[0] for v in entries) / len(entries) for b, entries in benchmarks.items()},
            "tokens": sum(v[1] + (v[2] if uses_prm else 0) for v in every) / len(every),
            "flops": sum(2 * policy_params * v[1] + (2 * prm_params * v[2] if uses_prm else 0) for v in every)
            / len(every),
            "problems": {b: len(entries) for b, entries in benchmarks.items()},
        }
    return rows


def _markdown_rows(board_dir: Path) -> list[dict[str, str]]:
    """The rows of the measured table and of the derived and published one, each row keyed by
    its table's header (a table leaves out columns none of its rows fills)."""
    text = (board_dir / "leaderboard.md").read_text(encoding="utf-8")
    found = []
    for title in ("## Measured results", "## Derived, other-voting and published rows"):
        section = text.split(title, 1)[1].split("\n## ", 1)[0]
        table = [line for line in section.splitlines() if line.startswith("| ")]
        header = [c.strip() for c in table[0].strip("|").split(" | ")]
        found += [dict(zip(header, (_unescape(c.strip()) for c in line.strip("|").split(" | ")))) for line in table[2:]]
    return found


def _unescape(cell: str) -> str:
    """A Markdown cell's text: the writer escapes brackets, pipes and the like with a backslash."""
    return re.sub(r"\\(.)", r"\1", cell)


def _close(cell: str, expected: float, *, decimals: int = 1) -> bool:
    """``cell`` is a number, or an accuracy with its interval: ``50.0 [25.0, 75.0]``."""
    value, _, interval = cell.partition(" [")
    if interval:
        low, high = (float(v) for v in interval.rstrip("]").split(", "))
        assert low <= float(value) <= high, cell
    return abs(float(value) - expected) <= 0.5 * 10**-decimals + 1e-9


def _close_params(cell: str, expected: float) -> bool:
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}[cell[-1]]
    return math.isclose(float(cell[:-1]) * scale, expected, rel_tol=5e-3)


def _close_flops(cell: str, expected: float) -> bool:
    return math.isclose(float(cell), expected, rel_tol=5e-3)


STRATEGY_TITLES = {"best_of_n": "Best-of-N", "majority": "Majority", "dvts": "DVTS (M=2)", "cot": "CoT"}


def test_every_markdown_number_matches_the_samples(run_folders, board_dir):
    md_rows = _markdown_rows(board_dir)
    small = "small-policy"
    checked = 0
    expected_rows = {
        **_expected_tts_rows(run_folders["best_of_n"], {"math500_tts": "MATH-500", "aime24_tts": "AIME24"}),
        **_expected_tts_rows(run_folders["dvts"], {"math500_tts": "MATH-500"}),
        **_expected_tts_rows(run_folders["cot"], {"math500_tts": "MATH-500", "aime24_tts": "AIME24"}),
    }
    measured_keys = {("best_of_n", "prm_vote", 4), ("dvts", "prm_max", 4), ("cot", None, 1)}
    small_params = _config(run_folders["cot"])["model_num_parameters"]
    ours = [r for r in md_rows if r["Policy"] == small]
    assert len(ours) == len(expected_rows), (
        sorted(expected_rows),
        [(r["Strategy"], r["Voting"], r["N"]) for r in ours],
    )
    for (strategy, voting, n), expected in expected_rows.items():
        matches = [
            r for r in ours
            if r["Strategy"] == STRATEGY_TITLES[strategy] and r["N"] == str(n)
            and (r["Voting"].split(" (")[0] == voting if voting else r["Voting"] == "—")
        ]  # fmt: skip
        assert len(matches) == 1, (strategy, voting, n, matches)
        (row,) = matches
        for benchmark in ("MATH-500", "AIME24"):
            if benchmark in expected:
                assert _close(row[f"{benchmark} (%)"], expected[benchmark]), (
                    strategy,
                    voting,
                    n,
                    benchmark,
                    row,
                    expected,
                )
            else:
                assert row[f"{benchmark} (%)"] == "—"
        if "MATH-500" in expected and "AIME24" in expected:
            assert _close(row["Avg. (%)"], (expected["MATH-500"] + expected["AIME24"]) / 2)
        else:
            assert row["Avg. (%)"] == "—"
        assert _close_params(row["Params"], small_params) and row.get("Pre-training FLOPs", "—") == "—"
        measured = (strategy, voting, n) in measured_keys
        method = {"majority": "maj", "any final candidate correct": "any_final"}.get(
            voting, (voting or "").replace("@k", "")
        )
        assert row["Source"] == ("measured" if measured else f"{method}@{n} of N=4 run")
        assert _close(row["Tokens/problem"], expected["tokens"])
        assert _close_flops(row["FLOPs/problem"], expected["flops"])
        assert row["Problems (MATH-500 / AIME24)"] == " / ".join(
            str(expected["problems"].get(b, "—")) for b in ("MATH-500", "AIME24")
        )
        checked += 1
    assert checked >= 20
    # The answers vary: some problems are solved by some candidates, so the curves mean something.
    assert 0 < expected_rows[("majority", "pass@k", 4)]["MATH-500"] < 100


def test_the_hf_baseline_row(run_folders, board_dir):
    from transformers import AutoTokenizer

    (row,) = [r for r in _markdown_rows(board_dir) if r["Policy"] == "large-policy"]
    config = _config(run_folders["hf"])
    tokenizer = AutoTokenizer.from_pretrained(config["model_args"]["pretrained"])
    accuracy, tokens = {}, []
    for task, benchmark in (("math500_tts", "MATH-500"), ("aime24_tts", "AIME24")):
        samples = _samples(run_folders["hf"], task)
        accuracy[benchmark] = 100.0 * sum(s["acc"] for s in samples) / len(samples)
        for s in samples:
            prompt = s["arguments"]["gen_args_0"]["arg_0"]
            response = s["resps"][0][0]
            assert response.startswith("\\boxed{")
            tokens.append(
                len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
                + len(tokenizer(response, add_special_tokens=False)["input_ids"])
            )
    assert accuracy["MATH-500"] == pytest.approx(100.0 / LIMIT)  # \boxed{42} on the sixth problem
    assert row["Strategy"] == "CoT" and row["Source"] == "measured"
    assert _close(row["MATH-500 (%)"], accuracy["MATH-500"]) and _close(row["AIME24 (%)"], accuracy["AIME24"])
    assert _close(row["Tokens/problem"], sum(tokens) / len(tokens))
    assert _close_flops(row["FLOPs/problem"], 2 * config["model_num_parameters"] * sum(tokens) / len(tokens))
    assert _close_params(row["Params"], config["model_num_parameters"]) and row.get("Pre-training FLOPs", "—") == "—"


def test_published_rows_and_outputs(board_dir):
    rows = _markdown_rows(board_dir)
    published = [r for r in rows if r["Source"].startswith("published")]
    gpt4o = [r for r in published if r["Policy"] == "GPT-4o"]
    assert [(r["MATH-500 (%)"], r["AIME24 (%)"], r["Avg. (%)"]) for r in gpt4o] == [("74.6", "9.3", "42.0")]
    assert all(r["Problems (MATH-500 / AIME24)"] == "—" for r in published)
    assert not any(r["Source"] == "measured" for r in rows if r["Policy"] in {"GPT-4o", "o1", "DeepSeek-R1"})
    data = json.loads((board_dir / "leaderboard.json").read_text(encoding="utf-8"))
    assert {r["kind"] for r in data["rows"]} == {"measured", "derived", "published"}
    for plot in data["plots"]:
        assert (board_dir / plot["png"]).read_bytes().startswith(b"\x89PNG")
        assert b"<svg" in (board_dir / plot["svg"]).read_bytes()[:2000]
    html = (board_dir / "leaderboard.html").read_text(encoding="utf-8")
    # Five leaderboard plots and three of the PRM analyses.
    assert html.count("data:image/svg+xml;base64,") == len(data["plots"]) == 8
    # No ProcessBench run was given: the PRM's published F1 stands in, marked so.
    quality = data["analyses"]["tts_vs_prm_quality"]
    assert quality and all(p["f1"] == 73.5 and p["f1_source"] == "published" for p in quality)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing from the network
