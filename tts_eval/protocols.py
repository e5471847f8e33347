"""The engine's contracts: the policy every backend (``tts_eval.policies``) and the PRM every
runtime (``prm_backends``) fulfils, and the items the search hands a PRM. They live with the
engine, below both kinds of backend, so the search needs neither package."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tts_eval.types import Completion

ScoreItem = tuple[str, list[str]]  # (question, steps)
# (question, steps, known): ``known`` holds the scores of the leading steps, as this PRM gave
# them when it scored that prefix (a tree search's parent); the steps after them are new.
ContinuationItem = tuple[str, list[str], list[float]]


@dataclass(frozen=True)
class Scored:
    """The scores of one continuation and what computing them cost.

    ``scores``: one per step, the known ones reused (or recomputed where the family's
    tokenisation of the prefix differs from that of its extension). ``computed_tokens``: input
    tokens the PRM ran for this item, reused prefixes excluded. ``input_tokens``: the length
    of the item's whole input (what scoring it from scratch would run).
    """

    scores: list[float]
    computed_tokens: int
    input_tokens: int


@runtime_checkable
class ProcessRewardModel(Protocol):
    """Scores every step of a solution with a probability in [0, 1] that it is correct.

    Steps are passed as the search produces them (see ``tts_eval.steps``); each family reads
    their content with ``tts_eval.steps.step_content``.
    """

    name: str
    num_parameters: int

    def score_batch(self, items: list[ScoreItem]) -> list[list[float]]:
        """One list per item with exactly one score per step, in order. Steps dropped because
        the input exceeded ``max_length`` score NaN (and a warning says so)."""
        ...

    def score(self, question: str, steps: list[str]) -> list[float]: ...

    def score_continuations(self, items: list[ContinuationItem]) -> list[Scored]:
        """Like :meth:`score_batch`, for solutions whose leading steps were scored before: only
        the steps after the known ones need computing, over a prefix the PRM may have kept.
        Items of one call that share leading steps share their prefix's computation too. The
        scores equal :meth:`score_batch`'s for the same steps."""
        ...

    def count_tokens(self, items: list[ScoreItem]) -> list[int]:
        """How many input tokens scoring each item feeds the PRM (for compute accounting)."""
        ...


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
