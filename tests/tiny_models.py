"""Tiny Hugging Face checkpoints built locally for tests: a character-level tokenizer trained
with ``tokenizers`` and a randomly initialised Qwen2 or Llama, saved with ``save_pretrained``
and loaded back through the same ``from_pretrained`` code real checkpoints use.

Two tokenizers: :func:`char_tokenizer` (one token per character, exact round trips, for
Llama configs) and :func:`byte_tokenizer` (one token per byte in Qwen2's format, for Qwen2
configs, whose ``AutoTokenizer`` rebuilds the tokenizer as ``Qwen2Tokenizer``).
"""

from __future__ import annotations

import json
from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHAT_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def corpus_from_data(data_dir: Path, limit: int = 200) -> list[str]:
    """Problems and solutions of MATH-500, to give the tokenizer a realistic alphabet."""
    texts = []
    with open(data_dir / "math500" / "test.jsonl", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= limit:
                break
            row = json.loads(line)
            texts += [row["problem"], row["solution"]]
    return texts


def _wrap(tok, *, eos_token, pad_token, bos_token, unk_token, chat_template):
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=eos_token, pad_token=pad_token, bos_token=bos_token, unk_token=unk_token
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


def char_tokenizer(
    texts: list[str],
    *,
    special_tokens: list[str] = CHAT_SPECIAL_TOKENS,
    extra_tokens: list[str] = (),
    eos_token: str = "<|im_end|>",
    pad_token: str = "<|endoftext|>",
    bos_token: str | None = None,
    chat_template: str | None = CHATML_TEMPLATE,
):
    """One token per character seen in ``texts`` (plus printable ASCII and newline), the
    given special tokens, and ``extra_tokens`` as single (non-special) tokens.

    Any generated id sequence decodes to text that re-encodes to the same ids, so token
    counts can be checked exactly. ``AutoTokenizer`` keeps it as is for Llama configs; a
    Qwen2 config makes ``AutoTokenizer`` rebuild it as ``Qwen2Tokenizer`` (use
    :func:`byte_tokenizer` there).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(set("".join(texts)) | {chr(c) for c in range(32, 127)} | {"\n"})
    vocab = {tok: i for i, tok in enumerate(special_tokens)}
    for piece in [*alphabet, *extra_tokens, "<unk>"]:
        vocab.setdefault(piece, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(special_tokens)
    if extra_tokens:
        tok.add_tokens(list(extra_tokens))
    return _wrap(
        tok,
        eos_token=eos_token,
        pad_token=pad_token,
        bos_token=bos_token,
        unk_token="<unk>",
        chat_template=chat_template,
    )


# Qwen2's pre-tokenizer split; with it and byte-level BPE, Qwen2Tokenizer rebuilds the same tokenizer.
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def byte_tokenizer(
    *,
    special_tokens: list[str] = CHAT_SPECIAL_TOKENS,
    extra_tokens: list[str] = (),
    eos_token: str = "<|im_end|>",
    pad_token: str = "<|endoftext|>",
    bos_token: str | None = None,
    chat_template: str | None = CHATML_TEMPLATE,
):
    """Byte-level BPE without merges (one token per UTF-8 byte) in Qwen2's format, so
    ``AutoTokenizer`` on a Qwen2 checkpoint (which picks ``Qwen2Tokenizer``) gives the same
    ids. ``extra_tokens`` are added as single tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    vocab = {tok: i for i, tok in enumerate(special_tokens)}
    for piece in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(piece, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(special_tokens)
    if extra_tokens:
        tok.add_tokens(list(extra_tokens))
    return _wrap(
        tok,
        eos_token=eos_token,
        pad_token=pad_token,
        bos_token=bos_token,
        unk_token=None,
        chat_template=chat_template,
    )


def build_causal_lm(
    out_dir: Path,
    tokenizer,
    *,
    arch: str = "qwen2",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    seed: int = 0,
    token_logits: dict[str, float] | None = None,
) -> Path:
    """Save a randomly initialised causal LM (head dim >= 32, as vLLM's CPU backend needs)
    with ``tokenizer`` to ``out_dir``.

    ``token_logits`` raises the logits of single tokens (e.g. ``{"\n": 3.5, "<|im_end|>": 1}``)
    so that a random model writes step separators and ends solutions at realistic rates: every
    embedding gets a shared component along hidden dimension 0, which the final norm turns
    into a near-constant feature, and the LM head reads the given logits from it.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    config_cls = {"qwen2": Qwen2Config, "llama": LlamaConfig}[arch]
    config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    if token_logits:
        with torch.no_grad():
            model.get_input_embeddings().weight[:, 0] = 1.0
            feature = hidden_size**0.5  # dimension 0 after RMS norm, when it dominates
            head = model.get_output_embeddings().weight
            head[:, 0] = 0.0
            for token, logit in token_logits.items():
                head[tokenizer.convert_tokens_to_ids(token), 0] = logit / feature
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
