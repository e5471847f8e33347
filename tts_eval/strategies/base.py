"""What every strategy shares: the settings of a search, a policy request (``Expansion``),
turning a completion into a child trajectory, and the ``SearchUnit`` state machine the
engine drives in lock-step over all problems."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from tts_eval.grading import extract_answer
from tts_eval.search_options import DEFAULT_PF_TEMPERATURE, DEFAULT_RESAMPLING
from tts_eval.steps import STEP_SEPARATOR, split_steps
from tts_eval.types import Completion, Problem, Trajectory
from tts_eval.voting import vote


@dataclass(frozen=True)
class SearchSettings:
    """The knobs of one search call, defaults already resolved (see ``tts_eval.search``)."""

    n: int
    beam_size: int
    temperature: float
    top_p: float
    max_tokens: int  # per solution
    max_step_tokens: int  # per step of a step-wise search
    max_steps: int  # a step-wise search stops extending a trajectory past this many steps
    stop: tuple[str, ...] = ()  # strings that end a whole solution (e.g. lm-eval's `until`)
    pf_temperature: float = DEFAULT_PF_TEMPERATURE  # particle_filtering: temperature of the weights' softmax
    resampling: str = DEFAULT_RESAMPLING  # particle_filtering: systematic | multinomial


@dataclass
class Expansion:
    """One policy request: sample ``n`` continuations of ``parent``."""

    parent: Trajectory
    n: int
    max_tokens: int
    stop: tuple[str, ...]
    seed: int
    dedupe: bool  # keep identical sibling continuations once (tree searches)
    scored: bool = True  # False: the PRM does not score these children (majority voting needs no scores)


@dataclass
class SearchUnit(ABC):
    """A search over one problem (or one DVTS subtree), advanced one round at a time: the
    engine asks for its expansions, samples and scores them in one batch with every other
    unit's, and hands back the scored children per expansion."""

    problem: Problem
    settings: SearchSettings
    seed: int
    results: list[Trajectory] = field(default_factory=list)
    done: bool = False

    @abstractmethod
    def expansions(self) -> list[Expansion]: ...

    @abstractmethod
    def receive(self, children: list[list[Trajectory]]) -> None:
        """Scored children, one list per expansion, in the order of :meth:`expansions`."""

    def vote_settings(self, voting: str, aggregation: str) -> tuple[str, str]:
        """The voting and aggregation that choose among this problem's results: the search's
        own, unless the unit picked others (a compute-optimal unit takes its bucket's)."""
        return voting, aggregation

    def choose(self, candidates: list[Trajectory], voting: str, aggregation: str) -> int:
        """The index of the winning candidate among this problem's candidates (the results
        of all its units): a plain vote, unless the strategy weighs its candidates."""
        return vote(candidates, *self.vote_settings(voting, aggregation))


def step_stops(settings: SearchSettings) -> tuple[str, ...]:
    """Stops for a request that writes one step."""
    return (STEP_SEPARATOR, *(s for s in settings.stop if s != STEP_SEPARATOR))


def extend(parent: Trajectory, completion: Completion, solution_stop: tuple[str, ...]) -> Trajectory:
    """The child of ``parent`` that ``completion`` continues it into (scores still empty).

    The child is finished when the completion ended in EOS or in a solution stop string, or
    when its last step holds a ``\\boxed{}`` answer.
    """
    steps = parent.steps + split_steps(completion.text)
    ended = completion.finish_reason == "eos" or (
        completion.finish_reason == "stop" and any(completion.text.endswith(s) for s in solution_stop)
    )
    boxed = bool(steps) and extract_answer(steps[-1]) is not None
    text = "".join(steps)
    return Trajectory(
        steps=steps,
        step_scores=[],
        finished=ended or boxed,
        num_tokens=parent.num_tokens + completion.num_tokens,
        answer=extract_answer(text),
    )


# What one candidate of a strategy is (``Strategy.candidate``).
CANDIDATE_KINDS = ("solution", "subtree", "beam", "particle", "choice")


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """A named strategy: how it builds its units for a problem, and its traits, which every
    other package reads instead of naming strategies (validation, tables, plots, sweeps)."""

    name: str
    make_units: Callable[[Problem, SearchSettings, int], list[SearchUnit]]
    needs_prm: bool  # True: a PRM is required; False: giving one is an error
    label: str  # how tables and plots name it ("Best-of-N")
    order: int  # its place in tables and listings, lowest first
    # What one candidate is: "solution" (an independent whole sample of the policy), "subtree"
    # (the result of an independent subtree spending beam_size of the budget), "beam" (a
    # final beam of one tree), "particle" (a particle resampled with the others), "choice"
    # (whatever the chosen strategy yields).
    candidate: str = "solution"
    greedy: bool = False  # default temperature 0 instead of 0.7
    single_sample: bool = False  # writes one solution (n must be 1): the baseline of TTS comparisons
    tree: bool = False  # step-wise tree search: n must be a multiple of beam_size
    colour: str = "#8c564b"  # its colour in every plot
    options: tuple[str, ...] = ()  # search settings only this strategy reads (pf_temperature, ...)
    # For strategies that depend on the models, the task or a table (compute_optimal):
    # bind(policy=, prm=, table=, task=, settings=) returns the make_units to use for the
    # problems of that task. None: make_units is used as is, and a table is refused.
    bind: Callable[..., Callable[[Problem, SearchSettings, int], list[SearchUnit]]] | None = None

    def __post_init__(self) -> None:
        if self.candidate not in CANDIDATE_KINDS:
            raise ValueError(
                f"strategy {self.name}: candidate={self.candidate!r}; choose one of {', '.join(CANDIDATE_KINDS)}"
            )

    @property
    def subsampled(self) -> bool:
        """Its candidates are independent draws, so subsets of a run's candidates estimate
        the strategy at smaller budgets."""
        return self.candidate in ("solution", "subtree") and not self.single_sample

    @property
    def independent_samples(self) -> bool:
        """Its candidates are independent whole solutions of the policy (their oracle is
        pass@k; a tree search's final candidates are not such samples)."""
        return self.candidate == "solution"

    def candidate_budget(self, beam_size: int | None) -> int:
        """The budget one candidate spends (``beam_size``: a tree search's, None for the others)."""
        if self.candidate != "subtree":
            return 1
        assert beam_size is not None, "a subtree spends its beam size"
        return beam_size

    @property
    def table_choice(self) -> bool:
        """A compute-optimal policy table may choose it for a difficulty bucket."""
        return not self.single_sample and self.bind is None
