"""The transformers runtime: loads a PRM of any family and scores solutions in padded batches.

The family builds each input and reads its scores; this module loads the tokenizer and model,
fits inputs into ``max_length`` (dropping trailing steps, which score NaN), sorts them by
length, pads them (right, or left with an attention mask and shifted position ids), runs the
backbone once per batch and applies the head only at the score positions.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from transformers import AutoTokenizer

from prm_backends.base import ScoreItem
from prm_backends.families import FORMATS
from prm_backends.inputs import FittedInput, TruncationWarning, fit_input
from prm_backends.spec import PRMSpec

# A short solution every PRM must be able to score; building it at load surfaces format
# problems (a tag the tokenizer merges with its neighbours, a template dropping turns) early.
PROBE_QUESTION = "What is $1 + 2 \\cdot 3$?"
PROBE_STEPS = ["First, $2 \\cdot 3 = 6$.\n\n", "Then $1 + 6 = 7$, so the answer is $\\boxed{7}$."]


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_tokenizer(spec: PRMSpec):
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


class HFProcessRewardModel:
    """A :class:`~prm_backends.base.ProcessRewardModel` run with transformers."""

    def __init__(self, spec: PRMSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.tokenizer = load_tokenizer(spec)
        self.format = FORMATS[spec.family](spec, self.tokenizer)
        probe = self.format.build(PROBE_QUESTION, PROBE_STEPS)
        if len(probe.score_positions) != len(PROBE_STEPS):  # a family bug, not a user error
            raise RuntimeError(f"{spec.source}: the '{spec.family}' input builder found "
                               f"{len(probe.score_positions)} score positions for {len(PROBE_STEPS)} steps")
        self.device = resolve_device(spec.device)
        self.parts = self.format.load_hf_model(spec, device=self.device)
        limit = getattr(self.parts.config, "max_position_embeddings", None)
        if limit is not None and spec.max_length > limit:
            raise spec.error(
                "max_length",
                f"{spec.max_length} exceeds the {limit} positions '{spec.model}' supports; lower it",
            )
        self.num_parameters = self.parts.num_parameters
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        # The inputs of the last scored batch: the search asks for their token counts next.
        self._last_batch: dict[tuple[str, tuple[str, ...]], FittedInput] = {}

    def _fit(self, items: list[ScoreItem]) -> list[FittedInput]:
        fitted = []
        for question, steps in items:
            known = self._last_batch.get((question, tuple(steps)))
            fitted.append(known or fit_input(self.format, question, list(steps), self.spec.max_length))
        return fitted

    def count_tokens(self, items: list[ScoreItem]) -> list[int]:
        return [fitted.num_tokens for fitted in self._fit(items)]

    def score(self, question: str, steps: list[str]) -> list[float]:
        return self.score_batch([(question, steps)])[0]

    def score_batch(self, items: list[ScoreItem]) -> list[list[float]]:
        fitted = self._fit(items)
        self._last_batch = {(q, tuple(steps)): f for (q, steps), f in zip(items, fitted)}
        self._warn_truncated(fitted)
        scores: list[list[float]] = [[] for _ in items]
        # Longest first, so each batch holds inputs of similar length and pads little.
        order = sorted((i for i, f in enumerate(fitted) if f.input is not None), key=lambda i: -fitted[i].num_tokens)
        for start in range(0, len(order), self.spec.batch_size):
            chunk = order[start : start + self.spec.batch_size]
            for i, probs in zip(chunk, self._forward([fitted[i] for i in chunk])):
                scores[i] = probs
        results = []
        for (_, steps), f, got in zip(items, fitted, scores):
            row = got + [math.nan] * (f.total_steps - f.kept_steps)
            if len(row) != len(steps):
                raise RuntimeError(f"PRM '{self.name}' produced {len(row)} scores for {len(steps)} steps")
            results.append(row)
        return results

    @torch.inference_mode()
    def _forward(self, batch: list[FittedInput]) -> list[list[float]]:
        width = max(f.num_tokens for f in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        rows, cols, counts = [], [], []
        for b, f in enumerate(batch):
            n = f.num_tokens
            offset = width - n if self.spec.padding_side == "left" else 0
            ids[b, offset : offset + n] = torch.tensor(f.input.input_ids)
            mask[b, offset : offset + n] = 1
            rows += [b] * len(f.input.score_positions)
            cols += [offset + p for p in f.input.score_positions]
            counts.append(len(f.input.score_positions))
        # Right padding puts every pad after the real tokens, where a causal model never looks
        # from a real token, and keeps their positions 0..n-1: a mask and position ids would
        # change no score, yet they force the masked (several times slower) attention kernels.
        # Left padding needs both: the mask hides the pads, and position ids that count real
        # tokens only keep the pads from shifting the positions.
        options = {}
        if self.spec.padding_side == "left" and not bool(mask.all()):
            options["attention_mask"] = mask.to(self.device)
            options["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0).to(self.device)
        hidden = self.parts.backbone(input_ids=ids.to(self.device), use_cache=False, **options).last_hidden_state
        at_positions = hidden[torch.tensor(rows, device=hidden.device), torch.tensor(cols, device=hidden.device)]
        probs = self.format.read_out(self.parts.head(at_positions)).cpu().tolist()
        out, start = [], 0
        for count in counts:
            out.append(probs[start : start + count])
            start += count
        return out

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
