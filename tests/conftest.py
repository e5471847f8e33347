"""Shared fixtures: the data folder, MATH-500 rows, and tiny policies built locally.

``tests/`` is put on ``sys.path``, so test modules import the helpers as
``from tiny_models import ...``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from tiny_models import build_causal_lm, byte_tokenizer, char_tokenizer, corpus_from_data  # noqa: E402

# The README runs the tests with a relative TTS_EVAL_DATA_DIR; the tests start lm_eval and
# tts-eval in other folders, so they get the absolute path (the rule the CLIs follow too).
if os.environ.get("TTS_EVAL_DATA_DIR"):
    os.environ["TTS_EVAL_DATA_DIR"] = str(Path(os.environ["TTS_EVAL_DATA_DIR"]).expanduser().absolute())

# The test models are tiny: one thread is faster than two (no OpenMP hand-offs, which cost
# milliseconds per matmul when the cores are busy with other work).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding ``math500/test.jsonl`` and ``aime24/test.jsonl``:
    ``$TTS_EVAL_DATA_DIR``, else ``<repo>/../shared/data``."""
    env = os.environ.get("TTS_EVAL_DATA_DIR")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not (path / "math500" / "test.jsonl").is_file():
        pytest.fail(
            f"MATH-500 not found at {path / 'math500' / 'test.jsonl'}: set TTS_EVAL_DATA_DIR to the folder "
            "that holds math500/test.jsonl and aime24/test.jsonl"
        )
    return path


@pytest.fixture(scope="session")
def math500_rows(data_dir: Path) -> Callable[[int], list[dict]]:
    """``math500_rows(n)``: the first ``n`` MATH-500 rows (problem, solution, answer, subject,
    level, unique_id) as dicts."""

    def rows(n: int) -> list[dict]:
        out = []
        with open(data_dir / "math500" / "test.jsonl", encoding="utf-8") as f:
            for line in f:
                if len(out) >= n:
                    break
                out.append(json.loads(line))
        return out

    return rows


def spread_weights(model_dir: Path, std: float = 0.1, seed: int = 0) -> Path:
    """Redraw every weight matrix of the checkpoint at ``model_dir`` from N(0, std^2).

    At the default init (std 0.02) a tiny random model attends almost uniformly, so its
    outputs barely depend on positions or context and tests could not tell a wrong position
    or attention mask from a right one; at std 0.1 they do.
    """
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in sorted(model.named_parameters()):
            if param.dim() >= 2:
                param.copy_(torch.randn(param.shape, generator=generator) * std)
    model.save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory, data_dir: Path) -> Path:
    """A random-weight Llama policy (hidden 64, 2 layers, 2 heads; weights from
    :func:`spread_weights`) with a character-level tokenizer covering MATH-500's alphabet and
    a ChatML chat template; EOS ``<|im_end|>``."""
    tokenizer = char_tokenizer(corpus_from_data(data_dir))
    return spread_weights(build_causal_lm(tmp_path_factory.mktemp("tiny-llama-policy"), tokenizer, arch="llama"))


@pytest.fixture(scope="session")
def tiny_qwen2_policy_dir(tmp_path_factory) -> Path:
    """A random-weight Qwen2 policy (hidden 64, 2 heads: head dim 32, as vLLM's CPU backend
    needs; weights from :func:`spread_weights`) with a byte-level tokenizer in Qwen2's format
    and a ChatML chat template."""
    return spread_weights(build_causal_lm(tmp_path_factory.mktemp("tiny-qwen2-policy"), byte_tokenizer(), arch="qwen2"))


@pytest.fixture(scope="session")
def tiny_policy(tiny_policy_dir: Path):
    """The ``hf`` backend loaded on :func:`tiny_policy_dir` (float32, CPU)."""
    from tts_eval.policies.hf import HFPolicy

    return HFPolicy(str(tiny_policy_dir))
