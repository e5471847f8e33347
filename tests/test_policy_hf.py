"""The ``hf`` policy backend on tiny local checkpoints, checked against transformers itself."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from tiny_models import CHAT_SPECIAL_TOKENS, build_causal_lm, char_tokenizer, corpus_from_data
from transformers import AutoModelForCausalLM, AutoTokenizer

from tts_eval.policies import Policy, load_policy
from tts_eval.policies.hf import HFPolicy

# Prompts are tokenised as formatted: the template already holds every special token.
NO_SPECIALS = {"add_special_tokens": False}


@pytest.fixture(scope="module")
def reference(tiny_policy_dir):
    """The same checkpoint loaded independently, to compare against plain transformers."""
    model = AutoModelForCausalLM.from_pretrained(tiny_policy_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(tiny_policy_dir)


@pytest.fixture(scope="module")
def prompts(tiny_policy, math500_rows):
    """Formatted prompts of different lengths, one of them a continuation."""
    questions = [row["problem"] for row in math500_rows(3)]
    formatted = [tiny_policy.format_prompt(q) for q in questions]
    return [formatted[0], formatted[1] + "Let $x = 2$.\n\n", formatted[2]]


def greedy_ids(reference, prompt: str, max_new_tokens: int) -> list[int]:
    """Token ids plain ``model.generate`` produces greedily for ``prompt`` alone."""
    model, tokenizer = reference
    ids = tokenizer(prompt, return_tensors="pt", **NO_SPECIALS).input_ids
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False)
    return out[0, ids.shape[1] :].tolist()


def decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def pieces(tokenizer, text: str) -> list[str]:
    """The character tokenizer's tokens of ``text``, as strings ("<unk>", which
    re-tokenises as five characters, counted as the one token it was generated as)."""
    ids = tokenizer(text.replace("<unk>", "\uffff"), **NO_SPECIALS).input_ids
    return [decode(tokenizer, [i]) for i in ids]


def first_stop_end(text: str, stop: list[str]) -> int | None:
    ends = [text.find(s) + len(s) for s in stop if s in text]
    return min(ends) if ends else None


def test_load_policy_gives_a_policy_with_its_name_and_size(tiny_policy_dir, reference):
    policy = load_policy(str(tiny_policy_dir), backend="hf")
    assert isinstance(policy, Policy)
    assert policy.name == str(tiny_policy_dir)
    assert policy.num_parameters == reference[0].num_parameters() > 0


def test_format_prompt_uses_the_chat_template(tiny_policy_dir, tiny_policy):
    assert tiny_policy.format_prompt("What is $1+1$?") == (
        "<|im_start|>user\nWhat is $1+1$?<|im_end|>\n<|im_start|>assistant\n"
    )
    with_system = HFPolicy(tiny_policy_dir, system_prompt="Reason step by step.")
    assert with_system.format_prompt("Q?") == (
        "<|im_start|>system\nReason step by step.<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_format_prompt_without_chat_template_is_plain_text_after_bos(tmp_path, data_dir):
    tokenizer = char_tokenizer(
        corpus_from_data(data_dir, limit=20),
        special_tokens=[*CHAT_SPECIAL_TOKENS, "<s>"],
        bos_token="<s>",
        chat_template=None,
    )
    model_dir = build_causal_lm(tmp_path / "plain", tokenizer, arch="llama", num_layers=1)
    assert HFPolicy(str(model_dir)).format_prompt("Q?") == "<s>Q?\n\n"
    policy = HFPolicy(str(model_dir), system_prompt="Be brief.")
    prompt = policy.format_prompt("Q?")
    assert prompt == "<s>Be brief.\n\nQ?\n\n"
    # The BOS is in the text once and tokenised once: one token per character besides it.
    [[completion]] = policy.generate([prompt], n=1, temperature=0, top_p=1.0, max_tokens=2, stop=[])
    assert completion.prompt_tokens == 1 + len("Be brief.\n\nQ?\n\n")


def test_greedy_equals_plain_model_generate(tiny_policy, reference, prompts):
    prompts = [*prompts, "Q"]  # a one-token prompt is all padding in the shared prefill
    got = tiny_policy.generate(prompts, n=2, temperature=0, top_p=1.0, max_tokens=24, stop=[])
    _, tokenizer = reference
    assert [len(completions) for completions in got] == [2, 2, 2, 2]
    for prompt, completions in zip(prompts, got):
        ids = greedy_ids(reference, prompt, 24)
        ended = ids[-1] == tokenizer.eos_token_id
        for c in completions:
            assert c.text == decode(tokenizer, ids[:-1] if ended else ids)
            assert c.num_tokens == len(ids)
            assert c.finish_reason == ("eos" if ended else "length")
            assert c.prompt_tokens == len(tokenizer(prompt, **NO_SPECIALS).input_ids)


def test_byte_level_qwen2_checkpoint_matches_plain_generate(tiny_qwen2_policy_dir, math500_rows):
    """A Qwen2 checkpoint, whose AutoTokenizer is the byte-level Qwen2Tokenizer."""
    policy = load_policy(str(tiny_qwen2_policy_dir))
    reference = (AutoModelForCausalLM.from_pretrained(tiny_qwen2_policy_dir), policy.tokenizer)
    assert type(policy.tokenizer).__name__ == "Qwen2Tokenizer"
    prompts = [policy.format_prompt(row["problem"]) for row in math500_rows(2)]
    got = policy.generate(prompts, n=1, temperature=0, top_p=1.0, max_tokens=20, stop=[])
    for prompt, [c] in zip(prompts, got):
        ids = greedy_ids(reference, prompt, 20)
        ended = ids[-1] == policy.tokenizer.eos_token_id
        assert (c.text, c.num_tokens) == (decode(policy.tokenizer, ids[:-1] if ended else ids), len(ids))
        # One token per byte, and one per special token (two <|im_start|>, one <|im_end|>).
        specials = len("<|im_start|>") * 2 + len("<|im_end|>")
        assert c.prompt_tokens == len(prompt.encode("utf-8")) - specials + 3


def test_stop_strings_end_each_row_at_its_first_stop(tiny_policy, reference, prompts):
    _, tokenizer = reference
    refs = [greedy_ids(reference, p, 40) for p in prompts]
    texts = [decode(tokenizer, ids) for ids in refs]
    # One stop string taken from each prompt's greedy text, at different depths, so the rows
    # of one batch finish at different steps.
    stop = [texts[0][12:14], texts[1][5:7], texts[2][20:22]]
    got = tiny_policy.generate(prompts, n=1, temperature=0, top_p=1.0, max_tokens=40, stop=stop)
    for ids, [c] in zip(refs, got):
        t = next(t for t in range(1, len(ids) + 1) if first_stop_end(decode(tokenizer, ids[:t]), stop))
        text = decode(tokenizer, ids[:t])
        assert c.finish_reason == "stop"
        assert c.text == text[: first_stop_end(text, stop)]
        assert c.num_tokens == t


def test_stop_string_across_the_prompt_boundary_does_not_stop(tiny_policy, reference, prompts):
    _, tokenizer = reference
    text = decode(tokenizer, greedy_ids(reference, prompts[1], 16))
    boundary = prompts[1][-1] + text[0]  # "\n" + first generated character
    assert boundary not in text
    [[c]] = tiny_policy.generate([prompts[1]], n=1, temperature=0, top_p=1.0, max_tokens=16, stop=[boundary])
    assert (c.text, c.finish_reason, c.num_tokens) == (text, "length", 16)


def test_any_eos_id_of_the_generation_config_ends_a_row(tiny_policy_dir, reference, prompts, tmp_path):
    ids = greedy_ids(reference, prompts[0], 30)
    k = next(k for k in range(1, len(ids)) if ids[k] not in ids[:k])
    model_dir = tmp_path / "two-eos"
    shutil.copytree(tiny_policy_dir, model_dir)
    config_path = model_dir / "generation_config.json"
    config = json.loads(config_path.read_text())
    config["eos_token_id"] = [reference[1].eos_token_id, ids[k]]
    config_path.write_text(json.dumps(config))
    [[c]] = HFPolicy(str(model_dir)).generate([prompts[0]], n=1, temperature=0, top_p=1.0, max_tokens=30, stop=[])
    assert (c.text, c.finish_reason, c.num_tokens) == (decode(reference[1], ids[:k]), "eos", k + 1)


def test_num_tokens_and_finish_reasons_of_sampled_completions(tiny_policy, reference, prompts):
    _, tokenizer = reference
    stop = ["y", "="]  # characters of no special token, so every kept token is whole
    got = tiny_policy.generate(prompts, n=4, temperature=1.0, top_p=1.0, max_tokens=48, stop=stop, seed=3)
    reasons = set()
    for prompt, completions in zip(prompts, got):
        for c in completions:
            reasons.add(c.finish_reason)
            assert c.num_tokens == len(pieces(tokenizer, c.text)) + (c.finish_reason == "eos")
            assert c.prompt_tokens == len(tokenizer(prompt, **NO_SPECIALS).input_ids)
            assert c.num_tokens <= 48
            if c.finish_reason == "stop":
                assert first_stop_end(c.text, stop) == len(c.text)
            else:
                assert first_stop_end(c.text, stop) is None
            if c.finish_reason == "length":
                assert c.num_tokens == 48
    assert {"stop", "length"} <= reasons


def test_sampling_is_seeded_per_row_whatever_the_batch(tiny_policy_dir, tiny_policy, prompts):
    seeds = [11, 22, 33]
    settings = {"n": 3, "temperature": 1.0, "top_p": 0.9, "max_tokens": 32, "stop": ["e"]}
    full = tiny_policy.generate(prompts, seed=seeds, **settings)
    assert tiny_policy.generate(prompts, seed=seeds, **settings) == full
    assert len({c.text for c in full[0]}) == 3  # the n samples of a prompt differ
    # A prompt's samples do not depend on the other prompts, their order, or the batch size.
    assert tiny_policy.generate([prompts[1]], seed=[22], **settings) == [full[1]]
    assert tiny_policy.generate(prompts[::-1], seed=seeds[::-1], **settings) == full[::-1]
    small_batches = load_policy(str(tiny_policy_dir), batch_size="2")
    assert small_batches.batch_size == 2
    assert small_batches.generate(prompts, seed=seeds, **settings) == full
    # An int seed is the per-prompt list seed, seed + 1, ...
    assert tiny_policy.generate(prompts, seed=11, **settings)[0] == full[0]
    assert tiny_policy.generate(prompts, seed=[12, 22, 33], **settings)[0] != full[0]
    assert tiny_policy.generate(prompts, seed=None, **settings) != tiny_policy.generate(prompts, seed=None, **settings)


def test_stopping_only_truncates_the_same_samples(tiny_policy, reference, prompts):
    """Each row draws one number per token from its own stream, so stopping a row (and
    dropping it from the batch) leaves every other row's samples unchanged. A stop string
    that ends inside a token ("a" in "<|im_start|>") cuts the text there but counts the
    whole token."""
    _, tokenizer = reference
    settings = {"n": 4, "temperature": 1.0, "top_p": 1.0, "max_tokens": 40, "seed": [5, 6, 7]}
    stop = ["e", "a"]
    stopped = tiny_policy.generate(prompts, stop=stop, **settings)
    free = tiny_policy.generate(prompts, stop=[], **settings)
    reasons, cut_inside_a_token = [], False
    for row_stopped, row_free in zip(stopped, free):
        for s, f in zip(row_stopped, row_free):
            reasons.append(s.finish_reason)
            if s.finish_reason != "stop":
                assert s == f
                continue
            end = first_stop_end(f.text, stop)
            assert s.text == f.text[:end]
            covered = 0
            for count, piece in enumerate(pieces(tokenizer, f.text), start=1):  # noqa: B007 - read after the loop
                covered += len(piece)
                if covered >= end:
                    break
            assert s.num_tokens == count
            cut_inside_a_token |= covered > end
    assert "stop" in reasons and len(set(reasons)) > 1
    assert cut_inside_a_token


def _first_token_frequencies(policy, tokenizer, prompt, *, temperature, top_p, n=600):
    completions = policy.generate([prompt], n=n, temperature=temperature, top_p=top_p, max_tokens=1, stop=[], seed=7)
    counts = torch.zeros(len(tokenizer))
    for c in completions[0]:
        counts[tokenizer.convert_tokens_to_ids(c.text) if c.text else tokenizer.eos_token_id] += 1
    return counts / n


def _total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    return 0.5 * (p - q).abs().sum().item()


def _sampling_noise(p: torch.Tensor, n: int) -> float:
    """Expected total variation between ``p`` and the frequencies of ``n`` draws from it."""
    return 0.5 * torch.sqrt(2 * p * (1 - p) / (torch.pi * n)).sum().item()


def test_temperature_and_top_p_shape_the_sampled_distribution(tiny_policy, reference, prompts):
    model, tokenizer = reference
    prompt, n = prompts[0], 600
    with torch.inference_mode():
        logits = model(tokenizer(prompt, return_tensors="pt", **NO_SPECIALS).input_ids).logits[0, -1]

    def expected(temperature: float, top_p: float = 1.0) -> torch.Tensor:
        probs = torch.softmax(logits / temperature, -1)
        sorted_probs, order = probs.sort(descending=True)
        kept = sorted_probs.cumsum(-1) - sorted_probs < top_p
        nucleus = torch.zeros_like(probs).scatter(0, order[kept], sorted_probs[kept])
        return nucleus / nucleus.sum()

    top = logits.argmax()
    cold, warm = expected(0.25), expected(0.5)
    for temperature, right, wrong in [(0.25, cold, warm), (0.5, warm, cold)]:
        observed = _first_token_frequencies(tiny_policy, tokenizer, prompt, temperature=temperature, top_p=1.0, n=n)
        assert _total_variation(observed, right) < 2 * _sampling_noise(right, n)
        assert _total_variation(observed, wrong) > 2 * _sampling_noise(wrong, n)
        # The greedy token's share within 4 standard deviations.
        assert abs(observed[top] - right[top]) < 4 * (right[top] * (1 - right[top]) / n).sqrt()

    nucleus = expected(0.5, top_p=0.5)
    assert (nucleus > 0).sum() > 2
    observed = _first_token_frequencies(tiny_policy, tokenizer, prompt, temperature=0.5, top_p=0.5, n=n)
    assert observed[nucleus == 0].sum() == 0
    assert _total_variation(observed, nucleus) < 2 * _sampling_noise(nucleus, n)
    greedy = _first_token_frequencies(tiny_policy, tokenizer, prompt, temperature=1.0, top_p=1e-6, n=50)
    assert greedy[top] == 1.0


def test_bad_backend_options_and_requests_fail_clearly(tiny_policy_dir, tiny_policy, tmp_path):
    directory = str(tiny_policy_dir)
    with pytest.raises(ValueError, match=r"unknown policy backend 'nope'; choose one of: hf, openai, vllm"):
        load_policy(directory, backend="nope")
    valid = "batch_size, device, dtype, revision, system_prompt, trust_remote_code"
    unknown = rf"unknown option\(s\) 'temperature' for policy backend 'hf'; valid options: {valid}$"
    with pytest.raises(ValueError, match=unknown):
        load_policy(directory, temperature=0.7)
    with pytest.raises(ValueError, match="batch_size"):
        load_policy(directory, batch_size=0)
    with pytest.raises(ValueError, match="dtype"):
        load_policy(directory, dtype="float64")
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match=f"policy model directory not found: {missing}"):
        load_policy(str(missing))
    assert load_policy(directory, dtype="bfloat16").model.dtype == torch.bfloat16

    ok = {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 8, "stop": []}
    with pytest.raises(ValueError, match=r"prompt 0 has 4090 tokens; with max_tokens=10 it needs 4100 positions.*4096"):
        tiny_policy.generate(["x" * 4090], **{**ok, "max_tokens": 10})
    for bad in [{"n": 0}, {"top_p": 0.0}, {"temperature": -1.0}, {"max_tokens": 0}, {"stop": "\n\n"}]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            tiny_policy.generate(["Q"], **{**ok, **bad})
    assert tiny_policy.generate([], **ok) == []
    [[one_token_prompt]] = tiny_policy.generate(["Q"], **ok)
    assert one_token_prompt.prompt_tokens == 1


@pytest.mark.parametrize(
    ("backend", "option", "message"),
    [
        ("hf", {"batch_size": 0}, "policy backend 'hf': option 'batch_size': Input should be greater than 0 (got 0)"),
        (
            "vllm",
            {"gpu_memory_utilization": 2},
            "policy backend 'vllm': option 'gpu_memory_utilization': Input should be less than or equal to 1 (got 2)",
        ),
    ],
)
def test_a_bad_option_value_is_one_line_naming_the_option(backend, option, message):
    with pytest.raises(ValueError) as caught:
        load_policy("no-such-model", backend=backend, **option)  # refused before anything loads
    assert str(caught.value) == message
