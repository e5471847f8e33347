"""The ``vllm`` policy backend on a real in-process vLLM engine: greedy text equal to the
``hf`` backend's, per-prompt seeds, and beam search served from vLLM's prefix cache."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process engine: fast start, no spawn

from vllm_support import require_vllm

require_vllm()

from prm_fixtures import load_tiny_prm  # noqa: E402
from tiny_models import build_causal_lm, byte_tokenizer  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from tts_eval import Problem, load_policy, search  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

BLOCK = 32
# CPU engine settings (see docs/backends.md): eager float32, a small explicit KV cache.
ENGINE = {
    "dtype": "float32",
    "enforce_eager": True,
    "kv_cache_memory_bytes": 64 * 2**20,
    "block_size": BLOCK,
    "max_model_len": 2048,
}


@pytest.fixture(scope="module")
def stepping_dir(tmp_path_factory):
    """A random Qwen2 whose raised newline and EOS logits make it write several steps and end."""
    return build_causal_lm(
        tmp_path_factory.mktemp("stepping-qwen2"),
        byte_tokenizer(),
        arch="qwen2",
        token_logits={"Ċ": 2.5, "<|im_end|>": 1.0},
    )


@pytest.fixture(scope="module")
def stepping(stepping_dir):
    # One engine step takes at most max_model_len prompt tokens, so a call with more must
    # spread its prompts over steps (see test_seeds_are_per_prompt).
    policy = load_policy(str(stepping_dir), backend="vllm", engine_args={"max_num_batched_tokens": 2048}, **ENGINE)
    yield policy
    policy.close()  # now, not at some later garbage collection that would break other engines


@pytest.fixture(scope="module")
def problems(math500_rows):
    return [r["problem"] for r in math500_rows(4)]


def test_greedy_cot_equals_hf(tiny_qwen2_policy_dir, problems):
    hf = load_policy(str(tiny_qwen2_policy_dir), backend="hf")
    vllm = load_policy(str(tiny_qwen2_policy_dir), backend="vllm", **ENGINE)
    try:
        assert vllm.num_parameters == hf.num_parameters
        batch = [Problem(q, hf.format_prompt(q)) for q in problems]
        assert [p.prompt for p in batch] == [vllm.format_prompt(q) for q in problems]
        expected = search(batch, hf, strategy="cot", max_tokens=200)
        got = search(batch, vllm, strategy="cot", max_tokens=200)
    finally:
        vllm.close()
    for e, g in zip(expected, got):
        assert g.prediction.text == e.prediction.text
        assert g.prediction.num_tokens == e.prediction.num_tokens == 200
        assert (g.usage.policy_input_tokens, g.usage.policy_output_tokens) == (
            e.usage.policy_input_tokens,
            e.usage.policy_output_tokens,
        )


def test_stop_strings_and_eos_match_hf(stepping, stepping_dir, problems):
    """Greedy steps end at "\\n\\n" (kept in the text); sampled ones also end at EOS, which is
    counted but not written; every field equals the hf backend's for the same token ids."""
    hf = load_policy(str(stepping_dir), backend="hf")
    prompts = [stepping.format_prompt(q) for q in problems]
    greedy = dict(n=2, temperature=0.0, top_p=1.0, max_tokens=64, stop=["\n\n"])
    expected, got = hf.generate(prompts, **greedy), stepping.generate(prompts, **greedy)
    assert got == expected
    assert {c.finish_reason for cs in got for c in cs} == {"stop"}
    assert all(c.text.endswith("\n\n") for cs in got for c in cs)

    sampled = stepping.generate(prompts, n=8, temperature=0.7, top_p=0.95, max_tokens=120, stop=["\n\n"], seed=11)
    reasons = {c.finish_reason for cs in sampled for c in cs}
    assert {"stop", "eos"} <= reasons
    tok = AutoTokenizer.from_pretrained(stepping_dir)
    for prompt, completions in zip(prompts, sampled):
        for c in completions:
            assert c.prompt_tokens == len(tok(prompt, add_special_tokens=False).input_ids)
            assert "<|im_end|>" not in c.text
            if c.finish_reason == "stop":
                assert c.text.endswith("\n\n") and c.text.count("\n\n") == 1
            if c.finish_reason == "length":
                assert c.num_tokens == 120


def test_seeds_are_per_prompt(stepping, problems):
    prompts = [stepping.format_prompt(q) for q in problems[:3]]
    args = dict(n=4, temperature=0.8, top_p=1.0, max_tokens=40, stop=["\n\n"])
    together = stepping.generate(prompts, seed=[5, 6, 7], **args)
    alone_reordered = stepping.generate([prompts[2], prompts[0]], seed=[7, 5], **args)
    assert alone_reordered == [together[2], together[0]]
    assert len({c.text for c in together[0]}) > 1  # the n samples of one prompt differ
    assert stepping.generate(prompts, seed=[5, 6, 8], **args)[2] != together[2]
    # Seeded prompts longer in all than one engine step's token budget (max_model_len) are
    # prefilled whole on CPU, where a split seeded prompt crashes vLLM 0.32.
    long_prompts = [p * 6 for p in prompts] * 3
    assert sum(stepping.count_tokens(long_prompts)) > ENGINE["max_model_len"]
    assert len(stepping.generate(long_prompts, n=2, temperature=0.7, top_p=1.0, max_tokens=4, stop=[], seed=1)) == 9


def test_beam_search_prefixes_come_from_the_prefix_cache(stepping, stepping_dir, problems):
    """After the first step, every request's prompt starts with the prompt of the request
    that wrote its parent step; vLLM must serve at least those whole blocks from its cache."""
    tok = AutoTokenizer.from_pretrained(stepping_dir)
    calls = []

    class Recorder:
        name, num_parameters = stepping.name, stepping.num_parameters
        format_prompt = staticmethod(stepping.format_prompt)

        def generate(self, prompts, **kwargs):
            out = stepping.generate(prompts, **kwargs)
            calls.append((list(prompts), stepping.last_cache_stats))
            return out

    stepping.llm.reset_prefix_cache()
    before = stepping.cache_stats.total_prompt_tokens
    batch = [Problem(q, stepping.format_prompt(q)) for q in problems[:2]]
    results = search(
        batch,
        Recorder(),
        load_tiny_prm("token_classifier"),
        strategy="beam_search",
        n=8,
        beam_size=4,
        max_step_tokens=48,
        max_tokens=240,
        seed=3,
    )
    assert all(len(r.candidates) == 2 for r in results)
    assert len(calls) >= 3, "the search should run several steps"
    seen: list[str] = list(calls[0][0])
    later_prompt = later_cached = 0
    queried = sum(stats.queried_tokens for _, stats in calls[1:])
    hits = sum(stats.hit_tokens for _, stats in calls[1:])
    for prompts, stats in calls[1:]:
        for prompt, total, cached in zip(prompts, stats.prompt_tokens, stats.cached_tokens):
            parent_request = max((p for p in seen if prompt.startswith(p)), key=len)
            shared = len(tok(parent_request, add_special_tokens=False).input_ids)
            assert total == len(tok(prompt, add_special_tokens=False).input_ids)
            assert cached >= shared // BLOCK * BLOCK > 0, (cached, shared, total)
            assert cached <= total - 1  # vLLM always computes the last prompt token
            later_prompt, later_cached = later_prompt + total, later_cached + cached
        seen += prompts
    print(
        f"prefix cache after the first step: {later_cached}/{later_prompt} prompt tokens per request "
        f"({later_cached / later_prompt:.0%}); {hits}/{queried} over all samples ({hits / queried:.0%})"
    )
    assert later_cached / later_prompt > 0.5
    assert queried >= later_prompt and hits / queried > 0.5
    assert stepping.cache_stats.total_prompt_tokens - before == sum(s.total_prompt_tokens for _, s in calls)


def test_bad_options_and_requests_fail_clearly(stepping, tiny_qwen2_policy_dir):
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        load_policy(str(tiny_qwen2_policy_dir), backend="vllm", gpu_memory_utilization=1.5)
    with pytest.raises(ValueError, match=r"unknown option.*'max_num_seq'"):
        load_policy(str(tiny_qwen2_policy_dir), backend="vllm", max_num_seq=8)
    with pytest.raises(ValueError, match="engine_args repeats dtype"):
        load_policy(str(tiny_qwen2_policy_dir), backend="vllm", engine_args={"dtype": "float16"})
    with pytest.raises(ValueError, match=r"device='cuda'.*runs on 'cpu'"):
        load_policy(str(tiny_qwen2_policy_dir), backend="vllm", device="cuda", **ENGINE)
    with pytest.raises(ValueError, match="max_model_len=2048"):
        stepping.generate(["x" * 100], n=1, temperature=0.0, top_p=1.0, max_tokens=2000, stop=[])
