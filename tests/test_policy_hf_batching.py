"""Continuous batching in the ``hf`` backend: a row's result never depends on the batch it
decodes in, and each sampled token is the inverse-CDF draw of that row's own uniform."""

from __future__ import annotations

import pytest
import torch
from tiny_models import build_causal_lm, byte_tokenizer

from tts_eval import load_policy
from tts_eval.policies.hf_decoding import row_uniforms, sample, seed_keys
from tts_eval.seeding import derive_seed

SETTINGS = {"n": 5, "temperature": 0.8, "top_p": 0.95, "max_tokens": 40, "stop": ["\n\n"], "seed": 3}


@pytest.fixture(scope="module")
def stepping_dir(tmp_path_factory):
    """A random byte-level Qwen2 whose raised newline and EOS logits end rows at different
    lengths, by stop string, EOS or the token limit."""
    return build_causal_lm(
        tmp_path_factory.mktemp("stepping"), byte_tokenizer(), arch="qwen2", token_logits={"Ċ": 2.0, "<|im_end|>": 0.5}
    )


@pytest.fixture(scope="module")
def prompts(stepping_dir, math500_rows):
    policy = load_policy(str(stepping_dir))
    formatted = [policy.format_prompt(row["problem"]) for row in math500_rows(6)]
    return [formatted[0] + "Let $x = 2$.\n\n", *formatted[1:]]  # one continuation, 6 lengths


def test_results_are_identical_at_every_batch_width(stepping_dir, prompts):
    results, stats = {}, {}
    for width in (1, 7, 64):
        policy = load_policy(str(stepping_dir), batch_size=width)
        results[width] = policy.generate(prompts, **SETTINGS)
        stats[width] = policy.stats
    # Texts, token counts and finish reasons, row by row.
    assert results[7] == results[1]
    assert results[64] == results[1]
    completions = [c for cs in results[1] for c in cs]
    assert {c.finish_reason for c in completions} == {"stop", "eos", "length"}
    assert len({c.num_tokens for c in completions}) > 5
    for width, s in stats.items():
        rows = len(completions)
        assert s.generated_tokens == sum(c.num_tokens for c in completions)
        assert s.slot_steps == s.steps * min(width, rows)
    # One slot: one step per token. Seven slots refilled from 30 rows: few idle slots.
    assert stats[1].utilisation == 1.0
    assert stats[7].utilisation > 0.6
    assert stats[64].steps == max(c.num_tokens for c in completions)


def test_each_token_is_the_rows_own_inverse_cdf_draw(tiny_policy_dir, math500_rows):
    """Recomputed from scratch: a full forward pass over prompt + generated tokens gives each
    step's logits, and the row's k-th token is the top-p/temperature inverse-CDF draw of
    the uniform hashed from (its seed, k). (A character tokenizer, so texts re-encode to the
    generated ids.)"""
    policy = load_policy(str(tiny_policy_dir), batch_size=7)
    prompts = [policy.format_prompt(row["problem"]) for row in math500_rows(4)]
    out = policy.generate(prompts, **SETTINGS)
    tokenizer, model = policy.tokenizer, policy.model
    for i in (0, 3):
        prompt_ids = tokenizer(prompts[i], add_special_tokens=False).input_ids
        for j in (0, 4):
            completion = out[i][j]
            generated = tokenizer(completion.text, add_special_tokens=False).input_ids
            if completion.finish_reason == "eos":
                generated += [tokenizer.convert_tokens_to_ids("<|im_end|>")]
            assert len(generated) == completion.num_tokens
            with torch.inference_mode():
                logits = model(torch.tensor([prompt_ids + generated])).logits[0, len(prompt_ids) - 1 : -1]
            key = seed_keys([derive_seed(SETTINGS["seed"] + i, j)], torch.device("cpu"))
            u = row_uniforms(key.expand(len(generated)), torch.arange(len(generated)))
            drawn = sample(logits, SETTINGS["temperature"], SETTINGS["top_p"], u)
            assert drawn.tolist() == generated
