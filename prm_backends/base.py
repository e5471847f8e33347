"""The PRM contract every family and runtime fulfils."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

ScoreItem = tuple[str, list[str]]  # (question, steps)


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

    def score(self, question: str, steps: list[str]) -> list[float]:
        ...

    def count_tokens(self, items: list[ScoreItem]) -> list[int]:
        """How many input tokens scoring each item feeds the PRM (for compute accounting)."""
        ...
