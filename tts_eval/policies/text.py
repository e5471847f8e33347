"""What every policy backend shares: the prompt through the tokenizer's chat template, token
ids of prompts and text of generated ids, and the checks of ``generate``'s arguments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

from tts_eval.types import Completion


def plain_prompt(question: str, system_prompt: str | None = None, bos_token: str | None = None) -> str:
    """The prompt for a tokenizer without a chat template:
    ``[bos][system_prompt + "\\n\\n"]question + "\\n\\n"``."""
    system = f"{system_prompt}\n\n" if system_prompt else ""
    return f"{bos_token or ''}{system}{question}\n\n"


class TokenizerText:
    """Prompt formatting and token/text conversion for a backend with a Hugging Face
    ``tokenizer`` and an optional ``system_prompt``, identical in every backend."""

    tokenizer: PreTrainedTokenizerBase
    system_prompt: str | None

    def format_prompt(self, question: str) -> str:
        """The question in the tokenizer's chat template with the generation prompt; for a
        tokenizer without one, :func:`plain_prompt`."""
        if not self.tokenizer.chat_template:
            return plain_prompt(question, self.system_prompt, self.tokenizer.bos_token)
        messages = [{"role": "user", "content": question}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert isinstance(prompt, str)  # tokenize=False gives the text
        return prompt

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Token counts of ``texts`` as prompts (no special tokens added)."""
        return [len(ids) for ids in self._encode(texts)]

    def _encode(self, texts: list[str]) -> list[list[int]]:
        # A formatted prompt already holds every special token the model needs.
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def _decode(self, rows: list[list[int]]) -> list[str]:
        texts = self.tokenizer.decode(rows, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        assert isinstance(texts, list)  # a batch of rows decodes to one text each
        return texts


def first_stop_end(text: str, stop: list[str]) -> int | None:
    """End of the earliest stop-string occurrence in ``text``."""
    found = [(text.find(s), -len(s)) for s in stop if s in text]
    if not found:
        return None
    start, neg_len = min(found)
    return start - neg_len


def check_local_path(model: str) -> None:
    """A model string written as a path must name an existing directory (a Hub id is
    ``owner/name``, without a leading ``/``, ``.`` or ``~``)."""
    if model.startswith(("/", ".", "~")) or Path(model).exists():
        path = Path(model).expanduser()
        if not path.is_dir():
            what = "is not a directory" if path.exists() else "not found"
            raise FileNotFoundError(
                f"policy model directory {what}: {path} (give a checkpoint directory saved with "
                "save_pretrained, or a Hugging Face Hub id)"
            )


def check_sampling(*, n: int, temperature: float, top_p: float, max_tokens: int, stop: list[str]) -> None:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    if isinstance(stop, str) or any(not isinstance(s, str) or not s for s in stop):
        raise ValueError(f"stop must be a list of non-empty strings, got {stop!r}")


def build_completion(
    decode: Callable[[list[list[int]]], list[str]],
    token_ids: list[int] | None,
    reason: str,
    prompt_tokens: int,
    stop: list[str],
    *,
    engine_text: str,
    num_tokens: int | None = None,
) -> Completion:
    """A :class:`Completion` whose text is decoded from ``token_ids`` as the ``hf`` backend
    decodes (EOS left out of the text, the text cut after the first stop string); without
    token ids, the engine's own text. ``num_tokens`` defaults to the number of token ids."""
    if token_ids is None:
        text = engine_text
    elif reason == "eos":
        text = decode([token_ids[:-1]])[0]
    else:
        text = decode([token_ids])[0]
        if reason == "stop":
            end = first_stop_end(text, stop)
            # The engine found the stop string in its incremental decoding; its text ends there.
            text = text[:end] if end is not None else engine_text
    if num_tokens is None:
        if token_ids is None:
            raise ValueError("build_completion needs token_ids or num_tokens")
        num_tokens = len(token_ids)
    return Completion(text=text, num_tokens=num_tokens, finish_reason=reason, prompt_tokens=prompt_tokens)
