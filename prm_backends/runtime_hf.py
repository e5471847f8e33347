"""The transformers runtime: loads a PRM of any family and scores solutions in padded batches.

The family builds each input and reads its scores, and :class:`FormatScorer` fits inputs into
``max_length`` (dropping trailing steps, which score NaN); this module loads the model, sorts
the inputs by length, pads them (right, or left with an attention mask and shifted position
ids), runs the backbone once per batch and applies the head only at the score positions.
Prefixes a tree search keeps extending are not run again: their key/value states are kept
(:mod:`prm_backends.prefix_cache`) and a batch row continues from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pydantic import NonNegativeInt, validate_call
from transformers import DynamicCache

from prm_backends.inputs import PRMInput
from prm_backends.prefix_cache import DEFAULT_MAX_TOKENS, KV, PrefixCache, plan, waves
from prm_backends.runtime_base import FormatScorer, check_max_length, load_with_options
from prm_backends.spec import PRMSpec


def load(spec: PRMSpec, options: dict[str, Any] | None = None) -> HFProcessRewardModel:
    """The PRM of ``spec`` on this runtime, with ``options`` (the keyword options of
    :class:`HFProcessRewardModel`); an unusable option is reported against the spec's file."""
    return load_with_options(HFProcessRewardModel, spec, options)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class HFProcessRewardModel(FormatScorer):
    """A :class:`~tts_eval.protocols.ProcessRewardModel` run with transformers.

    ``prefix_cache_tokens`` caps the key/value states kept for reuse (see
    :mod:`prm_backends.prefix_cache`), in tokens summed over the cached prefixes; 0 turns
    prefix reuse off (a child's known scores are still reused, its whole input is run)."""

    runtime = "hf"

    @validate_call
    def __init__(self, spec: PRMSpec, *, prefix_cache_tokens: NonNegativeInt = DEFAULT_MAX_TOKENS) -> None:
        super().__init__(spec)
        self.device = resolve_device(spec.device)
        self.parts = self.family.load_hf_model(spec, device=self.device)
        check_max_length(spec, self.parts.config)
        self.num_parameters = self.parts.num_parameters
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.cache = PrefixCache(prefix_cache_tokens)

    def head_outputs(self, inputs: list[PRMInput]) -> list[torch.Tensor]:
        # A generative judge's prompts are sequences of their own, each scored at its end.
        if any(inp.prompts is not None for inp in inputs):
            rows = iter(
                self._sequence_outputs([PRMInput(p, [len(p) - 1]) for inp in inputs for p in inp.judge_prompts])
            )
            return [torch.cat([next(rows) for _ in inp.judge_prompts]) for inp in inputs]
        return self._sequence_outputs(inputs)

    def _sequence_outputs(self, inputs: list[PRMInput]) -> list[torch.Tensor]:
        jobs = [(None, inp.input_ids, inp.score_positions, False) for inp in inputs]
        return [head for head, _ in self._run(jobs)]

    def new_head_outputs(self, inputs: list[PRMInput], reused: list[int]) -> tuple[list[torch.Tensor], list[int]]:
        # A judge's prompts per step share no prefix with their extension's: nothing to keep.
        if not self.cache.max_tokens or any(inp.prompts is not None for inp in inputs):
            return super().new_head_outputs(inputs, reused)
        p = plan(inputs, reused, self.cache)
        # Prefixes later rows of this call continue from: the cached parents, the shared ones.
        needed = {p.key(i, chain[0]) for i, chain in enumerate(p.chains) if p.nodes[i][chain[0]] in p.done}
        for wave in waves(p, self.cache):
            rows = []
            for job in wave:
                inp = inputs[job.item]
                begin = inp.score_positions[job.base_step] + 1 if job.base_step >= 0 else 0
                end = inp.score_positions[job.step] + 1
                read = [pos - begin for pos in inp.score_positions[job.base_step + 1 : job.step + 1]]
                rows.append((job.base, inp.input_ids[begin:end], read, end <= self.cache.max_tokens))
                p.computed[job.item] += end - begin
            for job, (head, kv) in zip(wave, self._run(rows)):
                path = p.nodes[job.item]
                for step, row in zip(range(job.base_step + 1, job.step + 1), head):
                    p.rows[path[step]] = row
                p.done.add(path[job.step])
                final = job.step == len(path) - 1
                if kv is not None and self.cache.put(p.key(job.item, job.step), kv, needed) and not final:
                    needed.add(p.key(job.item, job.step))
        # An item that met, on its way, a prefix another item had computed from a deeper start
        # (a cached parent it cannot reuse) lacks the rows of its earlier steps: run it whole.
        short = [i for i, (path, r) in enumerate(zip(p.nodes, reused)) if any(n not in p.rows for n in path[r:])]
        whole = [(None, inputs[i].input_ids, inputs[i].score_positions[reused[i] :], False) for i in short]
        for i, (head, _) in zip(short, self._run(whole)):
            p.rows.update(zip(p.nodes[i][reused[i] :], head))
            p.computed[i] += len(inputs[i])
        self.cache.keep_only({p.key(i, len(inp.score_positions) - 1) for i, inp in enumerate(inputs)})
        heads = [torch.stack([p.rows[node] for node in path[r:]]) for path, r in zip(p.nodes, reused)]
        return heads, p.computed

    def _run(
        self, jobs: Sequence[tuple[KV | None, list[int], list[int], bool]]
    ) -> list[tuple[torch.Tensor, KV | None]]:
        """Forward passes over ``(cached prefix or None, new token ids, positions to read among
        them, keep the states)`` rows, ``spec.batch_size`` rows each: per row, the head outputs
        at the positions and (if asked) the states of the prefix plus the new tokens."""
        out: list[tuple[torch.Tensor, KV | None]] = [(torch.empty(0), None)] * len(jobs)
        # Longest first, so each batch holds rows of similar length and pads little.
        order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i][1]))
        for start in range(0, len(order), self.spec.batch_size):
            chunk = order[start : start + self.spec.batch_size]
            for i, result in zip(chunk, self._forward([jobs[i] for i in chunk])):
                out[i] = result
        return out

    @torch.inference_mode()
    def _forward(
        self, batch: list[tuple[KV | None, list[int], list[int], bool]]
    ) -> list[tuple[torch.Tensor, KV | None]]:
        past = [0 if base is None else base[0][0].shape[1] for base, _, _, _ in batch]
        before, width = max(past), max(len(ids) for _, ids, _, _ in batch)
        left = self.spec.padding_side == "left"
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        # The mask covers the cached prefixes (aligned to their end) and then the new tokens.
        mask = torch.zeros((len(batch), before + width), dtype=torch.long)
        rows, cols, counts, offsets = [], [], [], []
        for b, (_, new, read, _) in enumerate(batch):
            n = len(new)
            offset = width - n if left else 0
            ids[b, offset : offset + n] = torch.tensor(new)
            mask[b, before - past[b] : before] = 1
            mask[b, before + offset : before + offset + n] = 1
            rows += [b] * len(read)
            cols += [offset + p for p in read]
            counts.append(len(read))
            offsets.append(offset)
        # Pads after the real tokens change nothing a causal model computes for them, and
        # need neither mask nor position ids (whose masked attention kernels are several times
        # slower). Pads before them (left padding, or cached prefixes of unequal length) need
        # both: the mask hides the pads, and position ids that count real tokens only keep the
        # pads from shifting the positions.
        options: dict[str, Any] = {}
        if not bool(mask[:, :before].all()) or (left and not bool(mask[:, before:].all())):
            options["attention_mask"] = mask.to(self.device)
            options["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)[:, before:].to(self.device)
        keep = any(k for _, _, _, k in batch)
        if before:
            options["past_key_values"] = _stack_prefixes([base for base, _, _, _ in batch], past, before)
        output = self.parts.backbone(input_ids=ids.to(self.device), use_cache=keep or bool(before), **options)
        hidden = output.last_hidden_state
        at_positions = hidden[torch.tensor(rows, device=hidden.device), torch.tensor(cols, device=hidden.device)]
        heads = self.parts.head(at_positions).split(counts)
        results = []
        for b, (_, new, _, wanted) in enumerate(batch):
            kv = None
            if wanted:
                kv = _row_states(output.past_key_values, b, before - past[b], before, before + offsets[b], len(new))
            results.append((heads[b], kv))
        return results

    @torch.inference_mode()
    def generate_tokens(self, prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        """Greedy decoding with the backbone's KV cache, one prompt at a time (no padding
        can shift a token's position)."""
        eos = self.tokenizer.eos_token_id
        written = []
        for prompt in prompts:
            ids = torch.tensor([prompt], device=self.device)
            out = self.parts.backbone(input_ids=ids, use_cache=True)
            tokens: list[int] = []
            while len(tokens) < max_tokens:
                token = int(self.parts.head(out.last_hidden_state[:, -1]).argmax(-1))
                if token == eos:
                    break
                tokens.append(token)
                out = self.parts.backbone(
                    input_ids=torch.tensor([[token]], device=self.device),
                    past_key_values=out.past_key_values,
                    use_cache=True,
                )
            written.append(tokens)
        return written


def _stack_prefixes(bases: list[KV | None], past: list[int], before: int) -> DynamicCache:
    """One batch cache from per-row cached prefixes, each aligned to end at ``before``."""
    layers = next(base for base in bases if base is not None)
    stacked = []
    for layer, (k0, v0) in enumerate(layers):
        keys = k0.new_zeros((len(bases), k0.shape[0], before, k0.shape[2]))
        values = v0.new_zeros((len(bases), v0.shape[0], before, v0.shape[2]))
        for b, base in enumerate(bases):
            if base is not None:
                keys[b, :, before - past[b] :] = base[layer][0]
                values[b, :, before - past[b] :] = base[layer][1]
        stacked.append((keys, values))
    return DynamicCache(ddp_cache_data=stacked)


def _row_states(cache, b: int, past_start: int, before: int, new_start: int, n: int) -> KV | None:
    """Row ``b``'s states in the batch cache: its cached prefix, then its new tokens (pads left
    out). None if a layer did not keep them all (a sliding-window layer)."""
    columns = torch.cat([torch.arange(past_start, before), torch.arange(new_start, new_start + n)])
    states = []
    for layer in cache.layers:
        if layer.keys.shape[2] < new_start + n:
            return None
        index = columns.to(layer.keys.device)
        states.append((layer.keys[b].index_select(1, index), layer.values[b].index_select(1, index)))
    return states
