"""Policy backend that runs a Hugging Face transformers causal LM in this process.

Generation runs our own decoding loop (:mod:`tts_eval.policies.hf_decoding`) on the model's
forward pass: continuous batching (finished rows give their slots to waiting ones), sampling
with one seed per row (a row's samples never depend on which rows share the batch), stop
strings matched on token ids, and the reason and token count of each row recorded exactly.
Identical prompts (the ``n`` samples of one prompt) are prefilled once and share their
cache. :attr:`HFPolicy.stats` counts steps, slots and tokens (slot utilisation).
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from pydantic import PositiveInt, validate_call
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from tts_eval.policies.base import per_prompt_seeds
from tts_eval.policies.hf_decoding import DecodeRow, DecodeStats, StopMatcher, decode, token_bytes
from tts_eval.policies.text import TokenizerText, check_local_path, check_sampling, first_stop_end
from tts_eval.seeding import derive_seed
from tts_eval.types import Completion

Dtype = Literal["auto", "float32", "bfloat16", "float16"]


class HFPolicy(TokenizerText):
    """A causal LM loaded with ``AutoModelForCausalLM.from_pretrained``.

    ``model`` is a local checkpoint directory or a Hub id. ``device`` defaults to the GPU when
    there is one (``"auto"``). ``dtype`` defaults to float32 on CPU and to the checkpoint's own
    dtype (``"auto"``) elsewhere. ``batch_size`` is the number of rows (prompts x samples) that
    decode together; a call with more rows refills the slots of finished ones.
    """

    @validate_call
    def __init__(
        self,
        model: str | Path,
        *,
        dtype: Dtype | None = None,
        device: str = "auto",
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
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
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
        # transformers types PreTrainedModel.to through a decorator that loses ``self``.
        self.model.to(self.device).eval()  # type: ignore[arg-type]
        self.num_parameters = sum(p.numel() for p in self.model.parameters())
        self.max_positions = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
        self._keeps_few_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self.stats = DecodeStats()
        self._stop_matchers: dict[tuple[str, ...], StopMatcher] = {}
        self._token_bytes: list[bytes] | None = None

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
            DecodeRow(prompt=i, ids=prompt_ids[i], seed=derive_seed(int(seeds[i]), j))
            for i in range(len(prompts))
            for j in range(n)
        ]
        # Longest prompts first: similar lengths share a batch, and memory peaks at once.
        order = sorted(range(len(rows)), key=lambda r: -len(rows[r].ids))
        outputs = decode(
            self.model,
            [rows[r] for r in order],
            batch_size=self.batch_size,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            eos_ids=self.eos_ids,
            stop=self._stop_matcher(stop),
            keeps_few_logits=self._keeps_few_logits,
            prefill=self._prefill_shared_prompts,
            stats=self.stats,
        )
        completions: dict[int, Completion] = {}
        for r, (token_ids, reason) in zip(order, outputs):
            completions[r] = self._completion(token_ids, reason, len(rows[r].ids), list(stop))
        return [[completions[i * n + j] for j in range(n)] for i in range(len(prompts))]

    def _stop_matcher(self, stop: list[str]) -> StopMatcher | None:
        """The token-id automaton for ``stop``, built once per distinct list."""
        if not stop:
            return None
        key = tuple(stop)
        if key not in self._stop_matchers:
            if self._token_bytes is None:
                self._token_bytes = token_bytes(self.tokenizer)
            self._stop_matchers[key] = StopMatcher(list(stop), self._token_bytes, self.device)
        return self._stop_matchers[key]

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
    def _prefill_shared_prompts(self, rows: list[DecodeRow]):
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
            inputs: dict[str, torch.Tensor | int] = {
                "input_ids": ids[:, :-1],
                "attention_mask": mask[:, :-1],
                "position_ids": positions[:, :-1],
            }
            if self._keeps_few_logits:
                inputs["logits_to_keep"] = 1  # only the cache is wanted, not logits for every position
            cache = self.model(**inputs, use_cache=True).past_key_values
        index = torch.tensor([distinct[row.prompt] for row in rows], device=self.device)
        if cache is not None:
            cache.batch_select_indices(index)
        return ids[index], mask[index], cache

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
            elif stop and first_stop_end(text, stop) is not None:
                # The token-id matcher and the decoded text must agree; never a silent overrun.
                raise RuntimeError(f"a stop string in {text!r} was not seen on its token ids")
        return Completion(text=text, num_tokens=len(token_ids), finish_reason=reason, prompt_tokens=prompt_tokens)


def _eos_ids(generation_config: GenerationConfig, tokenizer) -> list[int]:
    """The model's EOS ids (its generation config may list several) and the tokenizer's."""
    ids = generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return list(dict.fromkeys(ids))
