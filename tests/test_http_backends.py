"""The ``openai`` policy backend and the ``http`` PRM runtime against real vLLM servers
(``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1): the same text as the ``hf``
backend, the same samples as the in-process ``vllm`` backend, PRM scores equal to the ``hf``
runtime's, beam search through both, and a server stopped part-way through a run.

Both servers start once for this module, side by side (30-80 s on a 2-core CPU machine)."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vllm_support import require_vllm

require_vllm()

import httpx  # noqa: E402
from prm_fixtures import PAPER_NAMES, load_tiny_prm, tiny_prm_dir  # noqa: E402

from prm_backends import load_spec  # noqa: E402
from tts_eval import Problem, load_policy, search  # noqa: E402
from tts_eval.lm_eval.checkpoint import CheckpointStore  # noqa: E402
from tts_eval.serialization import result_to_dict  # noqa: E402
from tts_eval.serving.http import ServerUnavailableError  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

STARTUP_SECONDS = 300
FAST_RETRIES = {"max_retries": 2, "backoff": 0.05}
BEAM = {"strategy": "beam_search", "n": 4, "beam_size": 2, "max_step_tokens": 24, "max_tokens": 96, "seed": 1}


class VLLMServer:
    """``python -m vllm.entrypoints.openai.api_server`` serving ``model`` on a free local port,
    in its own process group (the API server starts an engine process of its own)."""

    def __init__(self, model: Path, log: Path, *extra: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.model = str(model)
        self.log = log
        # --no-enable-chunked-prefill: vLLM 0.32 on CPU fails when it splits a seeded prompt.
        command = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dtype",
            "float32",
            "--max-model-len",
            "1024",
            "--enforce-eager",
            "--kv-cache-memory-bytes",
            str(64 * 2**20),
            "--no-enable-chunked-prefill",
            *extra,
        ]
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the vLLM server exited with code {self.process.returncode}:\n{self._log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
        pytest.fail(f"the vLLM server did not answer /health within {STARTUP_SECONDS} s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """SIGTERM to the server's process group; SIGKILL if it has not exited after 30 s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Both servers, started together: the tiny step-tag PRM checkpoint (a plain causal LM,
    serving as policy and as PRM) and the tiny token-classifier PRM with vLLM's step pooling
    on its tag token."""
    from transformers import AutoTokenizer

    logs = tmp_path_factory.mktemp("vllm-servers")
    classifier = tiny_prm_dir("token_classifier")
    tag_id = AutoTokenizer.from_pretrained(classifier).convert_tokens_to_ids("<extra_0>")
    started = {
        "lm": VLLMServer(
            tiny_prm_dir("step_tag"),
            logs / "lm.log",
            "--enable-prefix-caching",
            "--block-size",
            "32",
            "--enable-prompt-tokens-details",
        ),
        "pooling": VLLMServer(classifier, logs / "pooling.log", "--pooler-config", f'{{"step_tag_id": {tag_id}}}'),
    }
    try:
        for server in started.values():
            server.wait_healthy()
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def lm_server(servers):
    return servers["lm"]


@pytest.fixture(scope="module")
def pooling_server(servers):
    return servers["pooling"]


def http_prm(family: str, server, **overrides):
    from prm_backends.runtime_http import HTTPProcessRewardModel

    spec = load_spec(
        PAPER_NAMES[family], model=str(tiny_prm_dir(family)), runtime="http", device="cpu", dtype="float32", **overrides
    )
    return HTTPProcessRewardModel(spec, base_urls=[server.url], **FAST_RETRIES)


def openai_policy(server):
    return load_policy(server.model, backend="openai", base_urls=[f"{server.url}/v1"], **FAST_RETRIES)


ITEMS = [
    ("What is $2+3$?", ["$2 + 3 = 5$, so the answer is $\\boxed{5}$."]),
    (
        "Solve $x^2 - 5x + 6 = 0$.",
        ["We factor.\n\n", "$(x - 2)(x - 3) = 0$.\n\n", "So $x = 2$ or $x = 3$.\n\n", "$\\boxed{3}$"],
    ),
    ("Is π ≤ 4?", ["π ≈ 3.14 — less than 4.\n\n", "So yes: π ≤ 4, 你好, ки.\n\n", "$\\boxed{\\text{yes}}$"]),
]


def assert_scores_close(got, expected):
    assert [len(g) for g in got] == [len(e) for e in expected]
    for g_row, e_row in zip(got, expected):
        for g, e in zip(g_row, e_row):
            assert math.isnan(g) == math.isnan(e) and (math.isnan(e) or abs(g - e) <= 1e-4), (g, e)


def test_token_classifier_over_pooling_equals_hf(pooling_server):
    hf = load_tiny_prm("token_classifier")
    prm = http_prm("token_classifier", pooling_server, batch_size=2)
    assert prm.num_parameters == hf.num_parameters
    assert_scores_close(prm.score_batch(ITEMS), hf.score_batch(ITEMS))


def test_step_tag_lm_over_completions_equals_hf(lm_server):
    hf = load_tiny_prm("step_tag")
    prm = http_prm("step_tag", lm_server, batch_size=2)
    assert prm.num_parameters == hf.num_parameters
    assert prm.count_tokens(ITEMS) == hf.count_tokens(ITEMS)
    assert_scores_close(prm.score_batch(ITEMS), hf.score_batch(ITEMS))


def test_openai_greedy_equals_hf_and_samples_equal_in_process_vllm(lm_server, math500_rows):
    policy = openai_policy(lm_server)
    hf = load_policy(lm_server.model, backend="hf")
    assert policy.num_parameters == hf.num_parameters
    problems = [Problem(r["problem"], hf.format_prompt(r["problem"])) for r in math500_rows(3)]
    expected = search(problems, hf, strategy="cot", max_tokens=80)
    got = search(problems, policy, strategy="cot", max_tokens=80)
    assert [r.prediction.text for r in got] == [r.prediction.text for r in expected]
    assert [(r.usage.policy_input_tokens, r.usage.policy_output_tokens) for r in got] == [
        (r.usage.policy_input_tokens, r.usage.policy_output_tokens) for r in expected
    ]

    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    in_process = load_policy(
        lm_server.model,
        backend="vllm",
        dtype="float32",
        enforce_eager=True,
        kv_cache_memory_bytes=32 * 2**20,
        max_model_len=1024,
    )
    prompts = [p.prompt for p in problems]
    args = dict(n=4, temperature=0.8, top_p=0.95, max_tokens=30, stop=["\n\n"], seed=[3, 4, 5])
    try:
        sampled = policy.generate(prompts, **args)
        assert sampled == in_process.generate(prompts, **args)  # same seeds, same engine: same samples
        assert len({c.text for c in sampled[0]}) > 1
    finally:
        in_process.close()


def test_a_served_run_keeps_its_key_secret_resumes_elsewhere_and_outlives_a_kill_while_writing(
    lm_server, tmp_path, capfd, monkeypatch
):
    """``tts-eval run`` with the policy on the server and a planted api_key, killed while it
    writes its output files; rerun with another URL for the same server and another key, it
    resumes every problem; the leaderboard reads the folder; no key is in any file."""
    import lm_eval.loggers.evaluation_tracker as tracker_module

    from leaderboard import build_leaderboard
    from tts_eval.lm_eval.runner import run_evaluation

    keys = ("sk-first-planted-31c9e", "sk-second-planted-77adf")
    out = tmp_path / "runs"

    def model_args(url: str, key: str) -> dict:
        return {
            "policy": lm_server.model,
            "backend": "openai",
            "base_urls": url,
            "api_key": key,
            "max_tokens": 24,
            "max_step_tokens": 24,
            **FAST_RETRIES,
        }

    def killed(rows):
        raise KeyboardInterrupt  # the process dies while the first samples file is written

    monkeypatch.setattr(tracker_module, "sanitize_list", killed)
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(
            model_args(f"{lm_server.url}/v1", keys[0]), ["arith_tts"], output_path=out, log_samples=True, limit=2
        )
    monkeypatch.undo()
    assert not list(out.glob("*/results_*.json")) and not list(out.glob("*/samples_*.jsonl"))
    capfd.readouterr()

    moved = lm_server.url.replace("127.0.0.1", "localhost")  # the same server, reached another way
    run_evaluation(model_args(f"{moved}/v1", keys[1]), ["arith_tts"], output_path=out, log_samples=True, limit=2)
    assert "resuming: 2 of 2 problems done" in capfd.readouterr().err
    assert len(list(out.glob("*/results_*.json"))) == 1 and len(list(out.glob("*/samples_arith_tts_*.jsonl"))) == 1

    board = build_leaderboard([out], tmp_path / "board", use_reference=False)
    assert any(row.kind != "published" for row in board.rows)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("tts_checkpoints" in str(p) for p in files)
    for path in files:
        data = path.read_bytes()
        assert not any(key.encode() in data for key in keys), path


def test_beam_search_then_the_server_stops_part_way(lm_server, math500_rows, tmp_path):
    """Beam search with the policy and the PRM both on the server, two problems per call, each
    call's results kept in the resume checkpoint; the server is stopped during the second
    call. The run fails naming the server, and the first call's problems stay kept."""
    policy = openai_policy(lm_server)
    prm = http_prm("step_tag", lm_server)
    rows = math500_rows(4)
    problems = [Problem(r["problem"], policy.format_prompt(r["problem"])) for r in rows]
    store = CheckpointStore(tmp_path, {"test": "server stopped part-way"})
    calls: list[int] = []
    stop_before_call = [0]  # the number of the policy call before which the server is stopped

    class StopServerMidway:
        """Passes calls on to the policy; stops the server before call ``stop_before_call``."""

        name, num_parameters, format_prompt = policy.name, policy.num_parameters, policy.format_prompt

        def generate(self, prompts, **kwargs):
            calls.append(len(prompts))
            if len(calls) == stop_before_call[0]:
                lm_server.stop()
            return policy.generate(prompts, **kwargs)

    first = search(problems[:2], StopServerMidway(), prm, **BEAM)
    assert len(calls) >= 2 and all(len(r.candidates) == 2 for r in first)
    assert policy.last_cache_stats.total_cached_tokens > 0  # the server's prefix cache served the beams
    store.add_all((f"problem-{i}", r, {}) for i, r in enumerate(first))

    stop_before_call[0] = len(calls) + 2  # the second call's second search step
    with pytest.raises(ServerUnavailableError) as err:
        search(problems[2:], StopServerMidway(), prm, **BEAM)
    message = str(err.value)
    assert f"{lm_server.url}: ConnectError" in message and "are running and reachable" in message
    assert lm_server.process.poll() is not None

    kept = CheckpointStore(tmp_path, {"test": "server stopped part-way"})
    assert len(kept) == 2
    assert [result_to_dict(kept.get(f"problem-{i}")) for i in range(2)] == [result_to_dict(r) for r in first]
