"""A vLLM policy and a PRM (on vLLM or transformers) in one process with default memory
settings: ``tts-eval run`` plans their shares and completes; the results record the plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from vllm_support import require_vllm

require_vllm()

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

TOY_POLICY = "pkg://tts_eval.toy/models/policy-small"


@pytest.mark.parametrize("prm_backend", ["vllm", "hf"])
def test_policy_and_prm_share_the_machine_with_default_memory_settings(prm_backend, tmp_path, data_dir):
    # No memory setting at all; eager engines only to skip the compile warm-up.
    model_args = {
        "policy": TOY_POLICY,
        "prm": "toy-prm",
        "strategy": "beam_search",
        "n": 4,
        "backend": "vllm",
        "prm_backend": prm_backend,
        "enforce_eager": True,
    }
    if prm_backend == "vllm":
        model_args["prm_runtime_options"] = {"enforce_eager": True}
    env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="0", HF_HUB_OFFLINE="1", TTS_EVAL_DATA_DIR=str(data_dir))
    env.pop("VLLM_CPU_KVCACHE_SPACE", None)
    command = [
        str(Path(sys.executable).parent / "tts-eval"),
        "run",
        "--model_args",
        json.dumps(model_args),
        "--tasks",
        "arith_tts",
        "--limit",
        "5",
        "--output_path",
        str(tmp_path),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "|arith_tts|" in done.stdout

    (results_file,) = tmp_path.glob("*/results_*.json")
    (plan,) = json.loads(results_file.read_text())["config"]["tts"]["memory_plan"]
    assert plan["device"] == "cpu"
    policy, prm = plan["models"]
    assert (policy["role"], policy["runtime"], prm["role"], prm["runtime"]) == ("policy", "vllm", "prm", prm_backend)
    # The policy engine's KV cache is sized by the plan, not vLLM's 90% of the machine.
    kv = policy["planned_settings"]["kv_cache_memory_bytes"]
    assert 16384 * 1024 <= kv <= 2**30  # one sequence of max_model_len ... the CPU cap
    assert kv / 2**30 == pytest.approx(policy["kv_cache_gib"], abs=1e-3)
    if prm_backend == "vllm":
        # At least one input of max_length 4096: keys and values of 5 layers x 4 heads x 32, float32.
        assert prm["planned_settings"]["kv_cache_memory_bytes"] >= 4096 * 2 * 5 * 4 * 32 * 4
    else:
        assert prm["planned_settings"] == {} and prm["activations_gib"] > 0
    used = sum(m["weights_gib"] + m["activations_gib"] + m["kv_cache_gib"] for m in plan["models"])
    assert used <= plan["budget_gib"]
