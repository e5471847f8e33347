"""The policy contract every backend (hf, vllm, openai) fulfils."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, overload, runtime_checkable

from tts_eval.types import Completion


@runtime_checkable
class Policy(Protocol):
    """A language model that writes solutions.

    ``num_parameters`` feeds the FLOPs estimate (2 x parameters x tokens).
    """

    name: str
    num_parameters: int

    def format_prompt(self, question: str) -> str:
        """The question wrapped in the model's chat template (system prompt included) and its
        generation prompt, as text. Solutions are appended to it as plain text."""
        ...

    def generate(
        self,
        prompts: list[str],
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        stop: list[str],
        seed: int | Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        """``n`` completions per prompt, in prompt order.

        ``seed`` is one seed for the whole call or one per prompt; with per-prompt seeds a
        prompt's completions do not depend on which other prompts share the batch.
        Temperature 0 is greedy decoding.
        """
        ...


@overload
def per_prompt_seeds(seed: int | Sequence[int], num_prompts: int) -> list[int]: ...
@overload
def per_prompt_seeds(seed: int | Sequence[int] | None, num_prompts: int) -> list[int | None]: ...
def per_prompt_seeds(seed: int | Sequence[int] | None, num_prompts: int) -> list[int | None] | list[int]:
    """Normalise the ``seed`` argument of :meth:`Policy.generate` to one seed per prompt."""
    if seed is None or isinstance(seed, int):
        return [None if seed is None else seed + i for i in range(num_prompts)]
    seeds = list(seed)
    if len(seeds) != num_prompts:
        raise ValueError(f"generate() got {len(seeds)} seeds for {num_prompts} prompts")
    return seeds
