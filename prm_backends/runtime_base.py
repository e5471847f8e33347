"""What the runtimes (transformers, vLLM, HTTP) share: everything around the model call.

A runtime loads the PRM's tokenizer and family format, fits each solution into
``max_length`` (trailing steps that do not fit score NaN), computes the family's head outputs
at the score positions in its own way, and hands them to the family's read-out. Only
:meth:`FormatScorer.head_outputs` differs between runtimes.

What a runtime computes follows the family's head kind (:mod:`prm_backends.families`), never
its name. The head outputs the vLLM and HTTP runtimes compute:

* ``next_token`` (step-tag and chat-turn LMs, generative judges): the log-probabilities of the
  good and bad tokens at each score position (:func:`pair_logits` places them where the
  read-out looks for the logits; the log-softmax shifts both by the same constant, so the
  two-way softmax is unchanged);
* ``classes`` (token classifier): the class logits at each score position.
"""

from __future__ import annotations

import inspect
import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from prm_backends.families import family_of
from prm_backends.inputs import (
    ClassesFormat,
    FittedInput,
    NextTokenFormat,
    PRMInput,
    ThinkingFormat,
    TruncationWarning,
    fit_input,
)
from prm_backends.spec import PRMSpec
from tts_eval.protocols import ContinuationItem, Scored, ScoreItem
from tts_eval.validation import describe_errors

# A short solution every PRM must be able to score; building it at load surfaces format
# problems (a tag the tokenizer merges with its neighbours, a template dropping turns) early.
PROBE_QUESTION = "What is $1 + 2 \\cdot 3$?"
PROBE_STEPS = ["First, $2 \\cdot 3 = 6$.\n\n", "Then $1 + 6 = 7$, so the answer is $\\boxed{7}$."]


def load_tokenizer(spec: PRMSpec):
    from transformers import AutoTokenizer

    local = Path(spec.model).expanduser()
    looks_local = spec.model.startswith(("/", ".", "~")) or spec.model.count("/") > 1
    if looks_local and not local.is_dir():
        raise spec.error("model", f"no checkpoint folder at '{spec.model}'; give an existing folder or a Hub id")
    try:
        return AutoTokenizer.from_pretrained(spec.model, revision=spec.revision)
    except (OSError, ValueError) as exc:
        raise spec.error(
            "model",
            f"cannot load the tokenizer of '{spec.model}' ({exc}); give a local checkpoint folder "
            "or a Hub id that can be downloaded (override it with model=...)",
        ) from None


def runtime_options(runtime_class: type[FormatScorer]) -> list[str]:
    """The keyword options of a runtime (its constructor's parameters after the spec)."""
    return list(inspect.signature(runtime_class).parameters)[1:]


def load_with_options(runtime_class: type[FormatScorer], spec: PRMSpec, options: dict[str, Any] | None = None):
    """``runtime_class(spec, **options)``; an unusable option is reported against the spec's file."""
    try:
        return runtime_class(spec, **(options or {}))
    except ValidationError as exc:
        problems = describe_errors(exc, label="option ", fields=runtime_options(runtime_class))
        raise spec.error("runtime_options", problems) from None
    except TypeError as exc:  # an option the runtime does not have
        raise spec.error("runtime_options", str(exc)) from None


def pair_logits(fmt: NextTokenFormat, logprobs: list[tuple[float, float]]) -> torch.Tensor:
    """A logits matrix (one row per step) holding each step's good/bad log-probabilities at
    the good/bad token ids and -inf elsewhere, for the family's ``read_out``."""
    good, bad = fmt.good_id, fmt.bad_id
    rows = torch.full((len(logprobs), max(good, bad) + 1), -math.inf, dtype=torch.float64)
    for row, (good_lp, bad_lp) in zip(rows, logprobs):
        row[good], row[bad] = good_lp, bad_lp
    return rows


def scored_prefix(inp: PRMInput) -> PRMInput:
    """The input up to its last score position: what the scores depend on."""
    if inp.prompts is not None:  # a judge's prompts end at their score positions
        return inp
    return PRMInput(inp.input_ids[: inp.score_positions[-1] + 1], inp.score_positions)


def tail(inp: PRMInput, reused: int) -> PRMInput:
    """The input with its score positions after the first ``reused`` only (a judge: the prompts
    of those steps only)."""
    if inp.prompts is not None:
        return PRMInput.per_step(inp.prompts[reused:])
    return PRMInput(inp.input_ids, inp.score_positions[reused:])


def step_prefixes(inp: PRMInput) -> list[list[int]]:
    """For an LM family: the input cut after each score position, so that the next-token
    distribution the model computes at the end of prefix k is the one that scores step k
    (a generative judge's own prompt per step)."""
    if inp.prompts is not None:
        return inp.prompts
    return [inp.input_ids[: pos + 1] for pos in inp.score_positions]


class FormatScorer(ABC):
    """A :class:`~tts_eval.protocols.ProcessRewardModel` whose head outputs come from
    :meth:`head_outputs`."""

    runtime: str

    def __init__(self, spec: PRMSpec) -> None:
        self.family = family_of(spec)
        if self.runtime not in self.family.supported_runtimes:  # the spec refuses it already
            raise spec.error("runtime", f"runtime '{self.runtime}' cannot score family '{spec.family}'")
        self.spec = spec
        self.name = spec.name
        self.tokenizer = load_tokenizer(spec)
        self.format = self.family.format(spec, self.tokenizer)
        lacking = [kind.__name__ for kind in self.family.format_kinds() if not isinstance(self.format, kind)]
        if lacking:  # a family bug, not a user error
            raise RuntimeError(
                f"PRM family '{spec.family}': its format {type(self.format).__name__} does not follow "
                f"{', '.join(lacking)} (prm_backends.inputs), which its head '{self.family.head}' needs"
            )
        probe = self.format.build(PROBE_QUESTION, PROBE_STEPS)
        if len(probe.score_positions) != len(PROBE_STEPS):  # a family bug, not a user error
            raise RuntimeError(
                f"{spec.source}: the '{spec.family}' input builder found "
                f"{len(probe.score_positions)} score positions for {len(PROBE_STEPS)} steps"
            )
        # The inputs of the last scored batch, by (max_length, question, steps): callers often
        # ask for their token counts next.
        self._last_batch: dict[tuple[int, str, tuple[str, ...]], FittedInput] = {}

    # The format as the protocol of the family's head kind or trait (checked at load), so that
    # the attributes a runtime reads are typed.
    def next_token_format(self) -> NextTokenFormat:
        fmt = self.format
        if not isinstance(fmt, NextTokenFormat):
            raise TypeError(f"family '{self.spec.family}' has no next-token format")
        return fmt

    def classes_format(self) -> ClassesFormat:
        fmt = self.format
        if not isinstance(fmt, ClassesFormat):
            raise TypeError(f"family '{self.spec.family}' has no classes format")
        return fmt

    def thinking_format(self) -> ThinkingFormat:
        fmt = self.format
        if not isinstance(fmt, ThinkingFormat):
            raise TypeError(f"family '{self.spec.family}' has no thinking format")
        return fmt

    @abstractmethod
    def head_outputs(self, inputs: list[PRMInput]) -> list[torch.Tensor]:
        """For each input, the family's head outputs at its score positions (one row each)."""

    def generate_tokens(self, prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        """Greedy continuations of ``prompts`` (token ids), ending at the model's EOS (not
        included) or after ``max_tokens``: a thinking judge's verification before its verdict."""
        raise NotImplementedError(f"runtime '{self.runtime}' cannot generate")

    def _thinking(self) -> ThinkingFormat | None:
        """The format of a judge that writes before its verdicts (``think_tokens`` > 0), else None."""
        if not self.family.writes_tokens:
            return None
        fmt = self.thinking_format()
        return fmt if fmt.think_tokens else None

    def _add_thoughts(self, fmt: ThinkingFormat, fitted: list[FittedInput]) -> list[FittedInput]:
        """A thinking judge's inputs completed by what it writes first, one batch for all."""
        prompts = [p for f in fitted if f.input is not None for p in f.input.judge_prompts]
        thoughts = iter(self.generate_tokens(prompts, fmt.think_tokens) if prompts else [])
        return [
            f
            if f.input is None
            else replace(f, input=fmt.with_thoughts(f.input, [next(thoughts) for _ in f.input.judge_prompts]))
            for f in fitted
        ]

    def _fit(self, items: list[ScoreItem]) -> list[FittedInput]:
        fitted = []
        for question, steps in items:
            known = self._last_batch.get((self.spec.max_length, question, tuple(steps)))
            fitted.append(known or fit_input(self.format, question, list(steps), self.spec.max_length))
        return fitted

    def count_tokens(self, items: list[ScoreItem]) -> list[int]:
        return [fitted.num_tokens for fitted in self._fit(items)]

    def score(self, question: str, steps: list[str]) -> list[float]:
        return self.score_batch([(question, steps)])[0]

    def score_batch(self, items: list[ScoreItem]) -> list[list[float]]:
        return [s.scores for s in self.score_continuations([(q, steps, []) for q, steps in items])]

    def score_continuations(self, items: list[ContinuationItem]) -> list[Scored]:
        thinking = self._thinking()
        if thinking:  # built afresh: the inputs kept from the last call already hold their thinking
            fitted = [fit_input(self.format, q, list(steps), self.spec.max_length) for q, steps, _ in items]
        else:
            fitted = self._fit([(q, steps) for q, steps, _ in items])
        self._warn_truncated(fitted)
        reused = [self._reusable(q, steps, known, f) for (q, steps, known), f in zip(items, fitted)]
        todo = [k for k, (f, r) in enumerate(zip(fitted, reused)) if f.input is not None and r < f.kept_steps]
        # Tokens after the last score position change no score (the models are causal).
        inputs = [scored_prefix(fitted[k].built) for k in todo]
        firsts = [reused[k] for k in todo]
        thoughts: dict[int, int] = {}  # item -> tokens a thinking judge wrote (and its verdict prompts)
        if thinking and todo:  # the judge thinks about the new steps only
            tails = [tail(inp, r) for inp, r in zip(inputs, firsts)]
            inputs = [f.built for f in self._add_thoughts(thinking, [FittedInput(t, 1, 1) for t in tails])]
            thoughts = {k: len(done) - len(t) for k, done, t in zip(todo, inputs, tails)}
            fitted = [
                replace(f, input=inputs[todo.index(k)]) if k in thoughts and not reused[k] else f
                for k, f in enumerate(fitted)
            ]
            firsts = [0] * len(inputs)
        self._last_batch = {(self.spec.max_length, q, tuple(steps)): f for (q, steps, _), f in zip(items, fitted)}
        heads, computed = self.new_head_outputs(inputs, firsts) if todo else ([], [])
        new = dict(zip(todo, zip(heads, computed)))
        results = []
        for k, ((_, steps, known), f, r) in enumerate(zip(items, fitted, reused)):
            row, cost = list(known[:r]), 0
            if k in new:
                head, cost = new[k]
                expected = len(f.built.score_positions) - r
                if head.shape[0] != expected:
                    raise RuntimeError(
                        f"PRM '{self.name}' ({self.runtime}): got {head.shape[0]} outputs for {expected} score positions"
                    )
                row += self.format.read_out(head).tolist()
            row += [math.nan] * (f.total_steps - f.kept_steps)
            if len(row) != len(steps):
                raise RuntimeError(f"PRM '{self.name}' produced {len(row)} scores for {len(steps)} steps")
            written = thoughts.get(k, 0) if reused[k] else 0  # a whole input's f holds them already
            results.append(Scored(row, cost, f.num_tokens + written))
        return results

    def new_head_outputs(self, inputs: list[PRMInput], reused: list[int]) -> tuple[list[torch.Tensor], list[int]]:
        """For each input, the head outputs at its score positions after the first ``reused``
        ones, and the input tokens computed for them. This default runs the whole input (the
        head is read at the new positions only; a judge runs the new steps' prompts only); a
        runtime that keeps prefixes overrides it."""
        tails = [tail(inp, r) for inp, r in zip(inputs, reused)]
        return self.head_outputs(tails), [len(t if inp.prompts is not None else inp) for inp, t in zip(inputs, tails)]

    def _reusable(self, question: str, steps: list[str], known: list[float], fitted: FittedInput) -> int:
        """How many of the ``known`` leading scores hold for ``steps``: all of them, or none
        where the input was cut to ``max_length`` or the family tokenises the prefix
        differently inside its extension (then the whole solution is scored afresh)."""
        if len(known) > len(steps):
            raise ValueError(f"{len(known)} known scores for a solution of {len(steps)} steps")
        if not known or fitted.kept_steps < fitted.total_steps or any(math.isnan(s) for s in known):
            return 0
        if self.format.prefix_stable:
            return len(known)
        parent = self.format.build(question, list(steps[: len(known)]))
        child = fitted.built  # every step fits (checked above)
        end = parent.score_positions[-1] + 1
        same = (
            child.score_positions[: len(known)] == parent.score_positions
            and child.input_ids[:end] == parent.input_ids[:end]
        )
        return len(known) if same else 0

    def _warn_truncated(self, fitted: list[FittedInput]) -> None:
        cut = [f for f in fitted if f.kept_steps < f.total_steps]
        if cut:
            dropped = sum(f.total_steps - f.kept_steps for f in cut)
            warnings.warn(
                f"PRM '{self.name}': {len(cut)} of {len(fitted)} solutions exceed max_length="
                f"{self.spec.max_length} tokens; their last {dropped} steps in all score NaN "
                "(trailing steps are dropped, the question is never cut)",
                TruncationWarning,
                stacklevel=3,
            )


def checkpoint_parameters(spec: PRMSpec) -> int:
    """The parameter count of the PRM's model from its config alone (built on the meta
    device), as the transformers runtime counts it for the same checkpoint."""
    from transformers import AutoConfig

    from tts_eval.serving.checkpoints import config_parameters

    try:
        config = AutoConfig.from_pretrained(spec.model, revision=spec.revision)
    except (OSError, ValueError) as exc:
        raise spec.error("model", f"cannot load the config of '{spec.model}' ({exc})") from None
    return config_parameters(config, family_of(spec).parameter_model)


def check_max_length(spec: PRMSpec, config=None) -> None:
    """``max_length`` must fit the positions of the model (of ``config``, loaded from the
    checkpoint when not given)."""
    if config is None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(spec.model, revision=spec.revision)
    limit = getattr(config, "max_position_embeddings", None)
    if limit is not None and spec.max_length > limit:
        raise spec.error(
            "max_length", f"{spec.max_length} exceeds the {limit} positions '{spec.model}' supports; lower it"
        )
