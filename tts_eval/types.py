"""The data that flows through a search: problems, completions, trajectories, results."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problem:
    """One problem to solve.

    ``question`` is the raw problem text the PRM sees; ``prompt`` is the formatted text the
    policy continues (chat template, system prompt, generation prompt already applied).
    """

    question: str
    prompt: str


@dataclass
class Completion:
    """One sampled continuation of a prompt.

    ``text`` keeps the stop string that ended it (``finish_reason == "stop"``), as vLLM's
    ``include_stop_str_in_output=True`` does. ``num_tokens`` counts every generated token,
    the EOS token included. ``prompt_tokens`` is the length of the prompt that produced it.
    """

    text: str
    num_tokens: int
    finish_reason: str  # "stop" | "eos" | "length"
    prompt_tokens: int = 0


@dataclass
class Trajectory:
    """A (partial) solution: its steps, each step's PRM score, and its answer if it has one.

    ``"".join(steps)`` is the solution text exactly as generated (separators included).
    ``step_scores`` is empty when no PRM scored it.
    """

    steps: list[str]
    step_scores: list[float] = field(default_factory=list)
    finished: bool = False
    num_tokens: int = 0
    answer: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.steps)


@dataclass
class Usage:
    """Compute spent on one problem. FLOPs = 2 x parameters x tokens processed.

    ``prm_tokens`` counts the input tokens the PRM computed; ``prm_scored_tokens`` the tokens
    of every input it scored, prefixes it reused (a tree search's parents, shared leading
    steps) included: what scoring every input from scratch would compute.
    """

    policy_input_tokens: int = 0
    policy_output_tokens: int = 0
    prm_tokens: int = 0
    flops: float = 0.0
    seconds: float = 0.0
    prm_scored_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.policy_input_tokens + other.policy_input_tokens,
            self.policy_output_tokens + other.policy_output_tokens,
            self.prm_tokens + other.prm_tokens,
            self.flops + other.flops,
            self.seconds + other.seconds,
            self.prm_scored_tokens + other.prm_scored_tokens,
        )


@dataclass
class SearchResult:
    """The outcome of searching one problem: the voted answer, the candidate that carries it
    (``prediction``), every candidate that took part in the vote, and the compute spent."""

    answer: str | None
    prediction: Trajectory
    candidates: list[Trajectory]
    usage: Usage
