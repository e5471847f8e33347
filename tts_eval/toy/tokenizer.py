"""The toy world's tokenizer: a byte-level BPE trained with ``tokenizers`` in Qwen2's format,
so ``AutoTokenizer`` on a Qwen2 checkpoint (which rebuilds it as ``Qwen2Tokenizer``) gives
the same ids. Qwen2's split keeps every digit a token of its own, which the arithmetic needs.
"""

from __future__ import annotations

from collections.abc import Iterable

SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
STEP_TAG = "<extra_0>"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", STEP_TAG]

# ChatML.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Qwen2's pre-tokenizer split (one token per digit).
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 320):
    """A ``PreTrainedTokenizerFast`` trained on ``texts``: byte-level BPE, ChatML chat template,
    eos ``<|im_end|>``, pad ``<|endoftext|>``, and the PRM's step tag ``<extra_0>``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=[STEP_TAG],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast
