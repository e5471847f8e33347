"""What the runtimes (transformers, vLLM, HTTP) share: everything around the model call.

A runtime loads the PRM's tokenizer and family format, fits each solution into
``max_length`` (trailing steps that do not fit score NaN), computes the family's head outputs
at the score positions in its own way, and hands them to the family's read-out. Only
:meth:`FormatScorer.head_outputs` differs between runtimes.

The head outputs the vLLM and HTTP runtimes compute:

* step-tag and chat-turn LMs, and generative judges: the log-probabilities of the good and
  bad tokens at each score position (:func:`pair_logits` places them where the read-out looks
  for the logits; the log-softmax shifts both by the same constant, so the two-way softmax is
  unchanged);
* token classifier: the two-class logits at each score position.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from prm_backends.base import ScoreItem
from prm_backends.families import FORMATS
from prm_backends.inputs import FittedInput, PRMInput, TruncationWarning, fit_input
from prm_backends.spec import PRMSpec

# A short solution every PRM must be able to score; building it at load surfaces format
# problems (a tag the tokenizer merges with its neighbours, a template dropping turns) early.
PROBE_QUESTION = "What is $1 + 2 \\cdot 3$?"
PROBE_STEPS = ["First, $2 \\cdot 3 = 6$.\n\n", "Then $1 + 6 = 7$, so the answer is $\\boxed{7}$."]

LM_FAMILIES = ("step_tag", "chat_turn", "generative")


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


def load_with_options(runtime_class: type[FormatScorer], spec: PRMSpec, options: dict[str, Any] | None = None):
    """``runtime_class(spec, **options)``; an unusable option is reported against the spec's file."""
    try:
        return runtime_class(spec, **(options or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise spec.error("runtime_options", problems) from None
    except TypeError as exc:  # an option the runtime does not have
        raise spec.error("runtime_options", str(exc)) from None


def unsupported_family(spec: PRMSpec, runtime: str) -> None:
    """Fail at load for a family the ``runtime`` cannot compute exactly."""
    if spec.family == "value_head":
        raise spec.error(
            "runtime",
            f"runtime '{runtime}' cannot score family 'value_head' exactly: vLLM has no model with "
            "a single Linear(hidden, 1) value head on the last hidden state (and its generic "
            "pooling models refuse the checkpoint's v_head weights); use runtime: hf for this PRM",
        )


def pair_logits(fmt, logprobs: list[tuple[float, float]]) -> torch.Tensor:
    """A logits matrix (one row per step) holding each step's good/bad log-probabilities at
    the good/bad token ids and -inf elsewhere, for the family's ``read_out``."""
    good, bad = fmt.good_id, fmt.bad_id
    rows = torch.full((len(logprobs), max(good, bad) + 1), -math.inf, dtype=torch.float64)
    for row, (good_lp, bad_lp) in zip(rows, logprobs):
        row[good], row[bad] = good_lp, bad_lp
    return rows


def step_prefixes(inp: PRMInput) -> list[list[int]]:
    """For an LM family: the input cut after each score position, so that the next-token
    distribution the model computes at the end of prefix k is the one that scores step k
    (a generative judge's own prompt per step)."""
    if inp.prompts is not None:
        return inp.prompts
    return [inp.input_ids[: pos + 1] for pos in inp.score_positions]


class FormatScorer(ABC):
    """A :class:`~prm_backends.base.ProcessRewardModel` whose head outputs come from
    :meth:`head_outputs`."""

    runtime: str
    scores_value_head = False  # whether the runtime computes the value-head family exactly

    def __init__(self, spec: PRMSpec) -> None:
        if not self.scores_value_head:
            unsupported_family(spec, self.runtime)
        self.spec = spec
        self.name = spec.name
        self.tokenizer = load_tokenizer(spec)
        self.format = FORMATS[spec.family](spec, self.tokenizer)
        probe = self.format.build(PROBE_QUESTION, PROBE_STEPS)
        if len(probe.score_positions) != len(PROBE_STEPS):  # a family bug, not a user error
            raise RuntimeError(
                f"{spec.source}: the '{spec.family}' input builder found "
                f"{len(probe.score_positions)} score positions for {len(PROBE_STEPS)} steps"
            )
        # The inputs of the last scored batch, by (max_length, question, steps): the search asks
        # for their token counts next.
        self._last_batch: dict[tuple[int, str, tuple[str, ...]], FittedInput] = {}

    @abstractmethod
    def head_outputs(self, inputs: list[PRMInput]) -> list[torch.Tensor]:
        """For each input, the family's head outputs at its score positions (one row each)."""

    def generate_tokens(self, prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        """Greedy continuations of ``prompts`` (token ids), ending at the model's EOS (not
        included) or after ``max_tokens``: a thinking judge's verification before its verdict."""
        raise NotImplementedError(f"runtime '{self.runtime}' cannot generate")

    def _add_thoughts(self, fitted: list[FittedInput]) -> list[FittedInput]:
        """A thinking judge's inputs completed by what it writes first, one batch for all."""
        prompts = [p for f in fitted if f.input is not None for p in f.input.prompts]
        thoughts = iter(self.generate_tokens(prompts, self.format.think_tokens) if prompts else [])
        return [
            f if f.input is None
            else replace(f, input=self.format.with_thoughts(f.input, [next(thoughts) for _ in f.input.prompts]))
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
        if getattr(self.format, "think_tokens", 0):
            # Built afresh: the inputs kept from the last call already hold their thinking.
            fitted = self._add_thoughts([fit_input(self.format, q, list(s), self.spec.max_length) for q, s in items])
        else:
            fitted = self._fit(items)
        self._last_batch = {(self.spec.max_length, q, tuple(steps)): f for (q, steps), f in zip(items, fitted)}
        self._warn_truncated(fitted)
        scored = [f for f in fitted if f.input is not None]
        outputs = iter(self.head_outputs([f.input for f in scored]) if scored else [])
        results = []
        for (_, steps), f in zip(items, fitted):
            row: list[float] = []
            if f.input is not None:
                head = next(outputs)
                if head.shape[0] != len(f.input.score_positions):
                    raise RuntimeError(
                        f"PRM '{self.name}' ({self.runtime}): got {head.shape[0]} outputs for "
                        f"{len(f.input.score_positions)} score positions"
                    )
                row = self.format.read_out(head).tolist()
            row += [math.nan] * (f.total_steps - f.kept_steps)
            if len(row) != len(steps):
                raise RuntimeError(f"PRM '{self.name}' produced {len(row)} scores for {len(steps)} steps")
            results.append(row)
        return results

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
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(spec.model, revision=spec.revision)
    except (OSError, ValueError) as exc:
        raise spec.error("model", f"cannot load the config of '{spec.model}' ({exc})") from None
    with torch.device("meta"):
        if spec.family == "token_classifier":
            from prm_backends.token_classifier import Qwen2ForProcessRewardModel

            model = Qwen2ForProcessRewardModel(config)
        else:
            model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


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
