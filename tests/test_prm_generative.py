"""The generative PRM family on a tiny chat judge whose next-token logits are known in closed
form: on the transformers runtime (with and without thinking first), on vLLM's engine and on
a vLLM server, every step's score equals p(Yes) / (p(Yes) + p(No)) computed with numpy from
the weights, on prompts written out by hand here."""

from __future__ import annotations

import importlib.util
import math
import os

import numpy as np
import pytest
import yaml

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process engine: fast start, no spawn

from prm_fixtures import build_judge_checkpoint, judge_logits

from prm_backends import PRMConfigError, load_prm

JUDGE_PROMPT = "Problem: {question}\nEarlier steps:\n{previous_steps}\nStep {step_number}: {step}\nIs step {step_number} correct? Answer Yes or No."
SPEC = {
    "name": "tiny-judge",
    "family": "generative",
    "judge_prompt": JUDGE_PROMPT,
    "system_prompt": "You check math.",
    "response_prefix": "Let me check.",
    "verdict_prompt": "\nVerdict: ",
    "good_token": "Yes",
    "bad_token": "No",
    "device": "cpu",
    "dtype": "float32",
    "max_length": 4096,
}
ITEMS = [
    ("What is $2+3$?", ["$2 + 3 = 5$, so the answer is $\\boxed{5}$."]),
    ("Solve $x^2 - 5x + 6 = 0$.", ["We factor.\n\n", "$(x - 2)(x - 3) = 0$.\n\n", "So $x = 2$ or {step} $x = 3$.\n\n"]),
]


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    folder = tmp_path_factory.mktemp("judge")
    model = build_judge_checkpoint(folder / "model")
    spec = folder / "judge.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "model": str(model)}), encoding="utf-8")
    return model, spec


def expected_prompt(question: str, steps: list[str], k: int) -> str:
    """Step k's prompt, written out by hand for the ChatML template."""
    contents = [s.removesuffix("\n\n") for s in steps]
    user = (
        f"Problem: {question}\nEarlier steps:\n"
        + "\n\n".join(f"Step {i + 1}: {c}" for i, c in enumerate(contents[:k]))
        + f"\nStep {k + 1}: {contents[k]}\nIs step {k + 1} correct? Answer Yes or No."
    )
    return (
        f"<|im_start|>system\nYou check math.<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
        "<|im_start|>assistant\nLet me check."
    )


def reference(model, tokenizer, question, steps, think_tokens=0):
    """Scores and token counts from numpy: greedy thinking, then the verdict pair."""
    scores, tokens = [], 0
    verdict = tokenizer.encode("\nVerdict: ", add_special_tokens=False)
    yes, no = tokenizer.convert_tokens_to_ids(["Yes", "No"])
    for k in range(len(steps)):
        ids = tokenizer.encode(expected_prompt(question, steps, k), add_special_tokens=False)
        for _ in range(think_tokens):
            token = int(np.argmax(judge_logits(model, ids)))
            if token == tokenizer.eos_token_id:
                break
            ids.append(token)
        ids += verdict
        logits = judge_logits(model, ids)
        scores.append(1 / (1 + math.exp(logits[no] - logits[yes])))
        tokens += len(ids)
    return scores, tokens


def check(prm, model, think_tokens=0):
    got = prm.score_batch(ITEMS)
    counts = prm.count_tokens(ITEMS)
    for (question, steps), row, count in zip(ITEMS, got, counts):
        want, tokens = reference(model, prm.tokenizer, question, steps, think_tokens)
        np.testing.assert_allclose(row, want, atol=1e-5, rtol=0)
        assert count == tokens
    assert len({round(s, 4) for row in got for s in row}) > 2  # scores differ between steps


def test_hf_scores_equal_the_closed_form(judge):
    model, spec = judge
    check(load_prm(spec), model)


def test_hf_thinking_first_writes_greedily_and_counts_its_tokens(judge):
    model, spec = judge
    prm = load_prm(spec, think_tokens=6)
    check(prm, model, think_tokens=6)
    plain = load_prm(spec)
    # Six written tokens per step in the count (none of them is EOS in this judge).
    assert sum(prm.count_tokens(ITEMS)) == sum(plain.count_tokens(ITEMS)) + 6 * 4


@pytest.mark.parametrize(
    "change, message",
    [
        ({"judge_prompt": "Is it right?"}, "no {step} placeholder"),
        ({"good_token": "Yess"}, "splits 'Yess' into"),
        ({"separator": "\n"}, "field 'separator' is not used by family 'generative'"),
        ({"think_tokens": -1}, "think_tokens"),
    ],
)
def test_bad_specs_fail_at_load(judge, tmp_path, change, message):
    model, _ = judge
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SPEC, "model": str(model), **change}), encoding="utf-8")
    with pytest.raises(PRMConfigError, match=message) as err:
        load_prm(bad)
    assert str(bad) in str(err.value)


needs_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None and not os.environ.get("CI"), reason="vLLM is not installed"
)


@needs_vllm
@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_scores_equal_the_closed_form(judge):
    model, spec = judge
    prm = load_prm(
        spec,
        runtime="vllm",
        runtime_options={
            "enforce_eager": True,
            "kv_cache_memory_bytes": 32 * 2**20,
            "block_size": 32,
        },
    )
    try:
        check(prm, model)  # thinking on vLLM is checked through the server below
    finally:
        prm.close()


@needs_vllm
@pytest.mark.vllm
@pytest.mark.slow
def test_http_scores_equal_the_closed_form(judge, tmp_path):
    from test_http_backends import VLLMServer

    model, spec = judge
    server = VLLMServer(model, tmp_path / "server.log")
    try:
        server.wait_healthy()
        for think in (0, 6):
            prm = load_prm(
                spec,
                runtime="http",
                think_tokens=think or None,
                runtime_options={"base_urls": [server.url], "max_retries": 2, "backoff": 0.05},
            )
            check(prm, model, think_tokens=think)
            prm.close()
    finally:
        server.stop()


@pytest.mark.slow
def test_stock_lm_eval_run_with_particle_filtering_and_the_judge_reaches_the_leaderboard(judge, tmp_path, data_dir):
    """One stock ``lm_eval`` run: particle filtering guided by the generative judge (given as
    a YAML path), then the leaderboard built from its output folder."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from test_lm_eval_e2e import build_answering_policy, offline_env

    from leaderboard import build_leaderboard

    _, spec = judge
    policy = build_answering_policy(tmp_path / "policy", data_dir)
    out = tmp_path / "run"
    model_args = (
        f"policy={policy},strategy=particle_filtering,n=4,prm={spec},voting=prm_vote,pf_temperature=0.5,"
        "max_tokens=48,max_step_tokens=16,dtype=float32,device=cpu"
    )
    command = [
        str(Path(sys.executable).parent / "lm_eval"),
        "--model",
        "tts",
        "--model_args",
        model_args,
        "--tasks",
        "math500_tts",
        "--samples",
        json.dumps({"math500_tts": [0, 1, 2]}),
        "--output_path",
        str(out),
        "--log_samples",
    ]
    done = subprocess.run(
        command, env=offline_env() | {"TTS_EVAL_DATA_DIR": str(data_dir)}, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (samples_file,) = out.glob("*/samples_math500_tts_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    for sample in samples:
        result = json.loads(sample["filtered_resps"][0])
        assert len(result["candidates"]) == 4 and result["usage"]["prm_tokens"] > 0
        assert all(len(c["step_scores"]) == len(c["steps"]) for c in result["candidates"])

    board = tmp_path / "board"
    build_leaderboard([out], board)
    rows = json.loads((board / "leaderboard.json").read_text())["rows"]
    (row,) = [r for r in rows if r["setup"]["strategy"] == "particle_filtering"]
    assert row["setup"]["prm"] == "tiny-judge" and row["setup"]["n"] == 4
    accuracy = row["benchmarks"]["MATH-500"]
    assert accuracy["problems"] == 3
    assert accuracy["accuracy"] == pytest.approx(sum(s["acc"] for s in samples) / 3)
    assert "Particle filtering" in (board / "leaderboard.md").read_text()


@pytest.mark.parametrize("think_tokens", [None, 6])
def test_a_continuation_judges_only_its_new_steps(judge, think_tokens):
    _, spec = judge
    prm = load_prm(spec, think_tokens=think_tokens)
    question, steps = ITEMS[1]
    want = prm.score(question, steps)
    # 0.123 is no score this judge gives: the known step is taken as given, not judged again.
    (got,) = prm.score_continuations([(question, steps, [0.123])])
    assert got.scores[0] == 0.123 and got.scores[1:] == pytest.approx(want[1:], abs=1e-5)
    (whole,) = prm.score_continuations([(question, steps, [])])
    first = load_prm(spec, think_tokens=think_tokens)
    first.score(question, steps[:1])  # a thinking judge's count holds what it wrote
    assert got.computed_tokens == whole.computed_tokens - first.count_tokens([(question, steps[:1])])[0]
    if not think_tokens:  # (a thinking judge's known steps' thoughts are not counted again)
        assert got.input_tokens == whole.input_tokens
