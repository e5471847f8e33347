"""Policy backend that runs a Hugging Face transformers causal LM in this process.

Generation goes through the model's own ``generate`` loop with two additions of ours:

* :class:`RowSampler`, a logits processor that samples each row with that row's own
  ``torch.Generator`` and hands ``generate`` a one-hot score, so ``generate`` runs greedy and
  the sampled token wins. A row's samples then depend only on its seed, never on which other
  rows share the batch.
* :class:`RowTracker`, a stopping criterion that ends a row when its *generated* text (never
  the prompt) contains a stop string, or at EOS, and records why and after how many tokens.

Rows that finish early are dropped from the batch: the tracker makes ``generate`` return once
a quarter of the rows are done, the finished rows are removed from the batch and its KV cache,
and ``generate`` resumes on the rest from that cache. Identical prompts (the ``n`` samples of
one prompt) are prefilled once and their cache is shared.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import PositiveInt, validate_call
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)

from tts_eval.policies.base import per_prompt_seeds
from tts_eval.policies.text import TokenizerText, check_local_path, check_sampling, first_stop_end
from tts_eval.seeding import derive_seed
from tts_eval.types import Completion

Dtype = Literal["auto", "float32", "bfloat16", "float16"]

# ``generate`` returns to let finished rows be dropped once this share of the batch is done.
COMPACT_FRACTION = 0.25


class HFPolicy(TokenizerText):
    """A causal LM loaded with ``AutoModelForCausalLM.from_pretrained``.

    ``model`` is a local checkpoint directory or a Hub id. ``dtype`` defaults to float32 on
    CPU and to the checkpoint's own dtype (``"auto"``) elsewhere. ``batch_size`` bounds the
    rows (prompts x samples) of one forward pass; larger calls are split.
    """

    @validate_call
    def __init__(
        self,
        model: str | Path,
        *,
        dtype: Dtype | None = None,
        device: str = "cpu",
        revision: str | None = None,
        system_prompt: str | None = None,
        batch_size: PositiveInt = 64,
        trust_remote_code: bool = False,
    ) -> None:
        model = str(model)
        check_local_path(model)
        self.name = model
        self.system_prompt = system_prompt
        self.batch_size = batch_size
        self.device = torch.device(device)
        if dtype is None:
            dtype = "float32" if self.device.type == "cpu" else "auto"
        load = {"revision": revision, "trust_remote_code": trust_remote_code}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, **load)
            self.model = AutoModelForCausalLM.from_pretrained(
                model, dtype=dtype if dtype == "auto" else getattr(torch, dtype), **load
            )
        except OSError as err:
            raise OSError(f"could not load policy model {model!r}: {err}") from err
        self.model.to(self.device).eval()
        self.num_parameters = sum(p.numel() for p in self.model.parameters())
        self.max_positions = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
        self._keeps_few_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters

        self.eos_ids = _eos_ids(self.model.generation_config, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)
        # A checkpoint's generation defaults (repetition penalty, top-k, sampling, ...) must
        # never apply silently: generate() fills unset fields of the config it is given from
        # model.generation_config, so that one is replaced by a neutral one.
        self.model.generation_config = GenerationConfig(
            eos_token_id=self.eos_ids or None,
            pad_token_id=self.pad_id,
            bos_token_id=self.tokenizer.bos_token_id,
        )

    # -- prompts -----------------------------------------------------------------------

    # -- generation --------------------------------------------------------------------

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
        check_sampling(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=stop)
        if not prompts:
            return []
        prompt_ids = self._encode(prompts)
        self._check_lengths(prompt_ids, max_tokens)
        seeds = per_prompt_seeds(secrets.randbits(62) if seed is None else seed, len(prompts))
        rows = [
            _Row(prompt=i, ids=prompt_ids[i], seed=derive_seed(int(seeds[i]), j))
            for i in range(len(prompts))
            for j in range(n)
        ]
        # Longest prompts first: similar lengths share a batch, and memory peaks at once.
        order = sorted(range(len(rows)), key=lambda r: -len(rows[r].ids))
        request = _Request(temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=list(stop))
        completions: list[Completion | None] = [None] * len(rows)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for r, completion in zip(chunk, self._generate_batch([rows[r] for r in chunk], request)):
                completions[r] = completion
        return [completions[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _check_lengths(self, prompt_ids: list[list[int]], max_tokens: int) -> None:
        for i, ids in enumerate(prompt_ids):
            if not ids:
                raise ValueError(f"prompt {i} is empty: a policy needs at least one prompt token")
            if self.max_positions is not None and len(ids) + max_tokens > self.max_positions:
                raise ValueError(
                    f"prompt {i} has {len(ids)} tokens; with max_tokens={max_tokens} it needs "
                    f"{len(ids) + max_tokens} positions, but {self.name} has max_position_embeddings="
                    f"{self.max_positions}. Shorten the prompt or lower max_tokens."
                )

    @torch.inference_mode()
    def _generate_batch(self, rows: list[_Row], request: _Request) -> list[Completion]:
        """One batch of rows, through ``model.generate``, resumed after each compaction."""
        ids, mask, cache = self._prefill_shared_prompts(rows)
        width = ids.shape[1]  # generated tokens start at this column for every row
        live = list(range(len(rows)))  # batch row -> index into ``rows``
        generators = [torch.Generator().manual_seed(row.seed) for row in rows]
        results: list[Completion | None] = [None] * len(rows)
        while True:
            generated = ids.shape[1] - width
            sampler = (
                RowSampler(request.temperature, request.top_p, [generators[r] for r in live])
                if request.temperature > 0
                else None
            )
            tracker = RowTracker(
                prompt_width=width,
                eos_ids=self.eos_ids,
                stop=request.stop,
                decode=self._decode,
                compact_after=max(1, int(len(live) * COMPACT_FRACTION)),
            )
            out = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                past_key_values=cache,
                generation_config=self._generation_config(request.max_tokens - generated),
                logits_processor=LogitsProcessorList([sampler] if sampler else []),
                stopping_criteria=StoppingCriteriaList([tracker]),
            )
            sequences, cache = out.sequences, out.past_key_values
            generated = sequences.shape[1] - width
            out_of_budget = generated >= request.max_tokens
            keep = []
            for b, r in enumerate(live):
                length, reason = tracker.finished.get(b, (generated, "length"))
                if b in tracker.finished or out_of_budget:
                    token_ids = sequences[b, width : width + length].tolist()
                    results[r] = self._completion(token_ids, reason, len(rows[r].ids), request.stop)
                else:
                    keep.append(b)
            if not keep:
                return results
            index = torch.tensor(keep, device=self.device)
            ids = sequences[index]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], ids.shape[1] - mask.shape[1])], dim=1)[index]
            cache.batch_select_indices(index)
            live = [live[b] for b in keep]

    def _prefill_shared_prompts(self, rows: list[_Row]):
        """Left-padded ids and mask for ``rows`` and a KV cache of all but their last prompt
        token, computed once per distinct prompt and shared by its rows."""
        distinct: dict[int, int] = {}
        for row in rows:
            distinct.setdefault(row.prompt, len(distinct))
        prompts = {row.prompt: row.ids for row in rows}
        width = max(len(ids) for ids in prompts.values())
        ids = torch.full((len(distinct), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(distinct), width), dtype=torch.long)
        for prompt, d in distinct.items():
            p = prompts[prompt]
            ids[d, width - len(p) :] = torch.tensor(p)
            mask[d, width - len(p) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        cache = None
        if width > 1:
            # Positions as generate() derives them from the mask, so resuming from this cache
            # is the same computation as a full prefill.
            positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
            inputs = {"input_ids": ids[:, :-1], "attention_mask": mask[:, :-1], "position_ids": positions[:, :-1]}
            if self._keeps_few_logits:
                inputs["logits_to_keep"] = 1  # only the cache is wanted, not logits for every position
            cache = self.model(**inputs, use_cache=True).past_key_values
        index = torch.tensor([distinct[row.prompt] for row in rows], device=self.device)
        if cache is not None:
            cache.batch_select_indices(index)
        return ids[index], mask[index], cache

    def _generation_config(self, max_new_tokens: int) -> GenerationConfig:
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            use_cache=True,
            return_dict_in_generate=True,
            eos_token_id=self.eos_ids or None,
            pad_token_id=self.pad_id,
            bos_token_id=self.tokenizer.bos_token_id,
        )

    def _completion(self, token_ids: list[int], reason: str, prompt_tokens: int, stop: list[str]) -> Completion:
        if reason == "eos":
            text = self._decode([token_ids[:-1]])[0]
        else:
            text = self._decode([token_ids])[0]
            if reason == "stop":
                end = first_stop_end(text, stop)
                if end is None:
                    raise RuntimeError(f"stop string not found again in the decoded completion {text!r}")
                text = text[:end]
        return Completion(text=text, num_tokens=len(token_ids), finish_reason=reason, prompt_tokens=prompt_tokens)


@dataclass(frozen=True)
class _Row:
    prompt: int  # index of the prompt in the call
    ids: list[int]
    seed: int


@dataclass(frozen=True)
class _Request:
    temperature: float
    top_p: float
    max_tokens: int
    stop: list[str]


class RowSampler(LogitsProcessor):
    """Temperature and nucleus (top-p) sampling with one ``torch.Generator`` per row.

    Returns scores that are ``-inf`` except at the sampled token, so the greedy step of
    ``generate`` picks it. Each row draws exactly one uniform number per generated token,
    by inverse transform sampling over its own distribution.
    """

    def __init__(self, temperature: float, top_p: float, generators: list[torch.Generator]) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.generators = generators

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        order = None
        if self.top_p < 1.0:
            probs, order = probs.sort(dim=-1, descending=True)
            # Keep the smallest head of the distribution whose mass reaches top_p.
            probs = probs.masked_fill(probs.cumsum(-1) - probs >= self.top_p, 0.0)
        cdf = probs.cumsum(-1)
        u = torch.cat([torch.rand(1, generator=g) for g in self.generators]).to(cdf.device)
        threshold = (u * cdf[:, -1]).unsqueeze(-1)
        choice = torch.searchsorted(cdf, threshold, right=True)
        # Rounding can put the threshold at the total mass; fall back to the last token with mass.
        positions = torch.arange(probs.shape[-1], device=probs.device)
        last_with_mass = torch.where(probs > 0, positions, 0).amax(-1, keepdim=True)
        choice = torch.minimum(choice, last_with_mass)
        tokens = order.gather(-1, choice) if order is not None else choice
        return torch.full_like(scores, float("-inf")).scatter_(-1, tokens, 0.0)


class RowTracker(StoppingCriteria):
    """Ends a row at EOS or when its generated text contains a stop string, and records
    ``finished[batch_row] = (tokens generated, "eos" | "stop")``.

    Once ``compact_after`` rows have finished it reports every row done, so ``generate``
    returns and the caller can drop the finished rows before resuming.
    """

    def __init__(self, *, prompt_width: int, eos_ids: list[int], stop: list[str], decode, compact_after: int):
        self.prompt_width = prompt_width
        self.eos_ids = torch.tensor(eos_ids, dtype=torch.long)
        self.stop = stop
        self.decode = decode
        self.compact_after = compact_after
        # A stop string newly completed by the last token lies within this many final
        # tokens (every token decodes to at least one byte); one more absorbs a partial
        # character at the window's start.
        self.window = max((len(s.encode("utf-8")) for s in stop), default=0) + 1
        self.finished: dict[int, tuple[int, str]] = {}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        generated = input_ids.shape[1] - self.prompt_width
        active = [b for b in range(input_ids.shape[0]) if b not in self.finished]
        last = input_ids[:, -1].cpu()
        is_eos = torch.isin(last, self.eos_ids).tolist() if len(self.eos_ids) else [False] * len(last)
        check = []
        for b in active:
            if is_eos[b]:
                self.finished[b] = (generated, "eos")
            else:
                check.append(b)
        if self.stop and check:
            span = min(self.window, generated)
            tails = self.decode(input_ids[check, -span:].tolist())
            for b, tail in zip(check, tails):
                if any(s in tail for s in self.stop):
                    self.finished[b] = (generated, "stop")
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if len(self.finished) >= self.compact_after:
            return done.fill_(True)
        done[list(self.finished)] = True
        return done


def _eos_ids(generation_config: GenerationConfig, tokenizer) -> list[int]:
    """The model's EOS ids (its generation config may list several) and the tokenizer's."""
    ids = generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return list(dict.fromkeys(ids))
