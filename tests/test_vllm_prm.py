"""The ``vllm`` PRM runtime on real in-process vLLM engines: every family vLLM can compute
scores what the ``hf`` runtime scores (to 1e-4) on tiny checkpoints in the real formats,
continuations and truncation included; the value-head family fails at load and names the
runtime to use."""

from __future__ import annotations

import math
import os

import pytest

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process engine: fast start, no spawn

from vllm_support import require_vllm

require_vllm()

from prm_fixtures import PAPER_NAMES, load_tiny_prm, tiny_prm_dir  # noqa: E402

from prm_backends import PRMConfigError, load_spec  # noqa: E402
from prm_backends.inputs import TruncationWarning  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

ENGINE = {"enforce_eager": True, "kv_cache_memory_bytes": 32 * 2**20, "block_size": 32}

# (question, steps as the search produces them): one and five steps, LaTeX, unicode, a step
# with inner newlines, one that holds the Math-Shepherd tag's letters.
ITEMS = [
    ("What is $2+3$?", ["$2 + 3 = 5$, so the answer is $\\boxed{5}$."]),
    (
        "Solve $x^2 - 5x + 6 = 0$ and give the larger root.",
        [
            "We factor the quadratic.\n\n",
            "$x^2 - 5x + 6 = (x - 2)(x - 3)$.\n\n",
            "So $x - 2 = 0$ or $x - 3 = 0$.\n\n",
            "The roots are $x = 2$ and $x = 3$; the larger is $3$.\n\n",
            "The answer is $\\boxed{3}$.",
        ],
    ),
    (
        "Is π ≤ 4?",
        ["We know π ≈ 3.14 — less than 4 (√16 = 4).\n\n", "So yes: π ≤ 4, 你好, ки.\n\n", "$\\boxed{\\text{yes}}$"],
    ),
    (
        "Compute $\\frac{1}{2} + \\frac{1}{3}$.",
        [
            "First,\n$\\frac{1}{2} = \\frac{3}{6}$\nand $\\frac{1}{3} = \\frac{2}{6}$.\n\n",
            "So $\\boxed{\\frac{5}{6}}$.",
        ],
    ),
]


def vllm_prm(family: str, **overrides):
    from prm_backends.runtime_vllm import VLLMProcessRewardModel

    spec = load_spec(
        PAPER_NAMES[family], model=str(tiny_prm_dir(family)), runtime="vllm", device="cpu", dtype="float32", **overrides
    )
    return VLLMProcessRewardModel(spec, **ENGINE)


def assert_scores_close(got: list[list[float]], expected: list[list[float]]) -> None:
    assert [len(g) for g in got] == [len(e) for e in expected]
    for g_row, e_row in zip(got, expected):
        for g, e in zip(g_row, e_row):
            assert math.isnan(g) == math.isnan(e)
            assert math.isnan(e) or abs(g - e) <= 1e-4, (g, e)


@pytest.mark.parametrize("family", ["step_tag", "chat_turn", "token_classifier"])
def test_scores_equal_the_hf_runtime(family):
    hf = load_tiny_prm(family)
    prm = vllm_prm(family)
    try:
        assert prm.num_parameters == hf.num_parameters
        assert prm.count_tokens(ITEMS) == hf.count_tokens(ITEMS)
        expected = hf.score_batch(ITEMS)
        assert_scores_close(prm.score_batch(ITEMS), expected)
        assert_scores_close([prm.score(*ITEMS[1])], [expected[1]])
        assert len({round(s, 3) for row in expected for s in row}) > 5  # scores spread: the check has teeth

        # A continuation keeps the known scores and computes the new steps' as hf does; vLLM's
        # prefix cache (read for per-token pooling too) spares the blocks its parent filled.
        question, steps = ITEMS[1]
        (parent,) = prm.score_continuations([(question, steps[:3], [])])
        (child,) = prm.score_continuations([(question, steps, parent.scores)])
        assert child.scores[:3] == parent.scores
        assert_scores_close([child.scores], [expected[1]])
        assert 0 < child.computed_tokens < child.input_tokens - 32

        # A short max_length drops trailing steps (NaN) exactly as the hf runtime does.
        short = {"max_length": hf.count_tokens(ITEMS[1:2])[0] - 20}
        hf_short = load_tiny_prm(family, **short)
        with pytest.warns(TruncationWarning):
            expected = hf_short.score_batch(ITEMS)
        assert any(math.isnan(s) for row in expected for s in row)
        prm.spec = hf_short.spec  # same engine, shorter limit
        with pytest.warns(TruncationWarning):
            assert_scores_close(prm.score_batch(ITEMS), expected)
    finally:
        prm.close()  # now, not at some later garbage collection that would break the next engine


def test_value_head_family_fails_at_load_naming_hf():
    with pytest.raises(PRMConfigError, match=r"skywork-prm-1\.5b\.yaml.*'runtime'.*value_head.*use runtime: hf"):
        vllm_prm("value_head")


def test_runtime_options_are_checked_against_the_spec():
    from prm_backends.runtime_vllm import load

    spec = load_spec(PAPER_NAMES["token_classifier"], model=str(tiny_prm_dir("token_classifier")), runtime="vllm")
    with pytest.raises(PRMConfigError, match=r"qwen2\.5-math-prm-7b\.yaml.*'runtime_options'.*gpu_memory_utilization"):
        load(spec, {"gpu_memory_utilization": 2})
    with pytest.raises(PRMConfigError, match=r"'runtime_options'.*max_num_seq"):
        load(spec, {"max_num_seq": 8})
