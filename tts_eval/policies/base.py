"""What every policy backend (hf, vllm, openai) shares; the contract itself is
``tts_eval.protocols.Policy``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload


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
