"""The vLLM runtime: scores solutions on vLLM's offline engine (``vllm.LLM``).

What vLLM computes exactly for each head kind of a family (:mod:`prm_backends.families`):

* ``classes``, the token classifier (``Qwen2ForProcessRewardModel``, native in vLLM): the
  pooling runner with per-token pooling (``runner="pooling"``, ``encode(..., pooling_task="token_classify")``)
  returns the score head's two-class logits at every position it computed; the score
  positions are read from them. Prefix caching is on and read (vLLM skips it for per-token
  pooling by default), so a child's input runs only past the blocks its parent filled.
* ``next_token``, step-tag and chat-turn LMs: one one-token generation request per step, whose prompt is the
  input cut after that step's score position, asking for the log-probabilities of exactly the
  good and bad tokens (``logprob_token_ids``). The requests of one solution share their
  prefixes, which vLLM's prefix cache computes once.
* generative judges: the same request on each step's own prompt; a thinking judge first
  writes greedily (one generation request per step, all in one engine call).
* ``value``, the value head: no vLLM model computes it; the spec refuses the runtime and names
  ``runtime: hf``.

A continuation (a child whose parent's scores are known) asks only for its new steps' rows:
one request per new step for the LM families, the whole input for the token classifier (whose
cached prefix vLLM does not run again). The tokens computed are those vLLM did not take from
its prefix cache (``num_cached_tokens``).

Every request of a ``score_batch`` call goes to the engine in one call. The engine never
tokenizes (``skip_tokenizer_init``): inputs are the family builder's token ids.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import validate_call

from prm_backends.inputs import PRMInput
from prm_backends.runtime_base import (
    FormatScorer,
    check_max_length,
    checkpoint_parameters,
    load_with_options,
    pair_logits,
    step_prefixes,
    tail,
)
from prm_backends.spec import PRMSpec
from tts_eval.serving.vllm import (
    INSTALL_HINT,
    EngineOptions,
    check_device,
    close_engine,
    engine_kwargs,
    takes_engine_options,
)


def load(spec: PRMSpec, options: dict[str, Any] | None = None) -> VLLMProcessRewardModel:
    """The PRM of ``spec`` on this runtime, with ``options`` (the keyword options of
    :class:`VLLMProcessRewardModel`); an unusable option is reported against the spec's file."""
    return load_with_options(VLLMProcessRewardModel, spec, options)


class VLLMProcessRewardModel(FormatScorer):
    """A PRM on a ``vllm.LLM`` engine. ``spec.dtype`` and ``spec.max_length`` (as
    ``max_model_len``) configure the engine; the keyword options are ``vllm.LLM`` arguments,
    ``engine_args`` any further ones. ``spec.batch_size`` does not apply: vLLM schedules
    every request of a call itself."""

    runtime = "vllm"

    @validate_call
    @takes_engine_options
    def __init__(
        self,
        spec: PRMSpec,
        *,
        engine: EngineOptions,  # its fields are keyword options of their own (takes_engine_options)
        engine_args: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(spec)
        try:
            from vllm import LLM
        except ImportError as err:
            raise spec.error("runtime", f"runtime 'vllm' needs vLLM: {INSTALL_HINT}") from err
        check_device(spec.device, f"{spec.source}: runtime 'vllm'")
        check_max_length(spec)
        self.num_parameters = checkpoint_parameters(spec)
        settings: dict[str, Any] = {
            "revision": spec.revision,
            "dtype": spec.dtype,
            "max_model_len": spec.max_length,
            **engine.model_dump(),
            "skip_tokenizer_init": True,
            "seed": 0,
        }
        classes = self.family.head == "classes"
        if classes:
            from vllm.config import PoolerConfig

            # Per-token pooling: the runtime picks the score positions itself, so a step whose
            # text holds the tag cannot add rows.
            settings.update(runner="pooling", pooler_config=PoolerConfig(tok_pooling_type="ALL"))
        else:
            settings.update(generation_config="vllm")
        self.prefix_caching = engine.enable_prefix_caching
        try:
            kwargs = engine_kwargs(settings, engine_args)
        except ValueError as err:
            raise spec.error("runtime", f"{err}, which the runtime sets itself") from None
        self.llm = LLM(model=spec.model, **kwargs)
        wanted = self.family.served_architecture
        if classes and wanted is not None:
            architectures = list(self.llm.llm_engine.model_config.architectures or [])
            if wanted not in architectures:
                raise spec.error(
                    "model",
                    f"'{spec.model}' has architectures {architectures}; vLLM serves family "
                    f"'{spec.family}' only as {wanted} (set it in the checkpoint's config.json) — or use runtime: hf",
                )

    def close(self) -> None:
        """Shut the engine down now (see :meth:`tts_eval.policies.vllm.VLLMPolicy.close`)."""
        close_engine(self.llm)

    def head_outputs(self, inputs: list[PRMInput]) -> list[torch.Tensor]:
        return self.new_head_outputs(inputs, [0] * len(inputs))[0]

    def new_head_outputs(self, inputs: list[PRMInput], reused: list[int]) -> tuple[list[torch.Tensor], list[int]]:
        tails = [tail(inp, r) for inp, r in zip(inputs, reused)]
        if self.family.head == "next_token":
            return self._pair_logprobs(tails)
        return self._classifier_logits(tails)  # "classes": the only other head vLLM computes

    def _pair_logprobs(self, inputs: list[PRMInput]) -> tuple[list[torch.Tensor], list[int]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        fmt = self.next_token_format()
        pair = [fmt.good_id, fmt.bad_id]
        params = SamplingParams(
            max_tokens=1, temperature=0.0, logprobs=len(pair), logprob_token_ids=pair, detokenize=False
        )
        prompts = [TokensPrompt(prompt_token_ids=ids) for inp in inputs for ids in step_prefixes(inp)]  # type: ignore[typeddict-item]  # NotRequired keys: see tts_eval/policies/vllm.py
        outputs = iter(self.llm.generate(prompts, params, use_tqdm=False))
        heads, computed = [], []
        for inp in inputs:
            rows, tokens = [], 0
            for pos in inp.score_positions:
                out = next(outputs)
                asked = out.outputs[0].logprobs
                assert asked is not None  # requested by the sampling parameters
                logprobs = asked[0]
                rows.append((logprobs[pair[0]].logprob, logprobs[pair[1]].logprob))
                tokens += pos + 1 - (out.num_cached_tokens or 0)
            heads.append(pair_logits(fmt, rows))
            computed.append(tokens)
        return heads, computed

    def generate_tokens(self, prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        eos = self.tokenizer.eos_token_id
        params = SamplingParams(
            max_tokens=max_tokens, temperature=0.0, detokenize=False, stop_token_ids=[] if eos is None else [eos]
        )
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=p) for p in prompts],  # type: ignore[typeddict-item]  # NotRequired keys: see tts_eval/policies/vllm.py
            params,
            use_tqdm=False,
        )
        return [_without_eos(list(out.outputs[0].token_ids), eos) for out in outputs]

    def _classifier_logits(self, inputs: list[PRMInput]) -> tuple[list[torch.Tensor], list[int]]:
        """The head's logits at the score positions. vLLM skips its prefix cache for per-token
        pooling unless asked not to (``skip_reading_prefix_cache=False``); it then returns the
        rows of the tokens it computed only, after the cached ones. An input whose cached part
        holds a wanted position is sent again without reading the cache."""
        heads: list[torch.Tensor | None] = [None] * len(inputs)
        computed = [0] * len(inputs)
        reading = list(range(len(inputs))) if self.prefix_caching else []
        for read, batch in ((True, reading), (False, None)):
            if batch is None:  # the rest, and those whose wanted rows were cached
                batch = [i for i, head in enumerate(heads) if head is None]
            if not batch:
                continue
            for i, out in zip(batch, self._encode([inputs[i] for i in batch], read)):
                inp, logits = inputs[i], out.outputs.data
                skipped = len(inp.input_ids) - logits.shape[0]
                if skipped not in (0, out.num_cached_tokens or 0):
                    raise RuntimeError(
                        f"vLLM returned {logits.shape[0]} rows for an input of {len(inp.input_ids)} tokens "
                        f"with {out.num_cached_tokens} cached"
                    )
                computed[i] += logits.shape[0]
                if not inp.score_positions or inp.score_positions[0] >= skipped:
                    heads[i] = logits[[pos - skipped for pos in inp.score_positions]]
        filled = [head for head in heads if head is not None]
        assert len(filled) == len(heads)  # the pass without the cache fills every head
        return filled, computed

    def _encode(self, inputs: list[PRMInput], read_cache: bool):
        from vllm import PoolingParams
        from vllm.inputs import TokensPrompt

        # Raw logits: the family's read-out applies softmax.
        params = PoolingParams(use_activation=False, skip_reading_prefix_cache=not read_cache)
        return self.llm.encode(
            [TokensPrompt(prompt_token_ids=inp.input_ids) for inp in inputs],  # type: ignore[typeddict-item]  # NotRequired keys: see tts_eval/policies/vllm.py
            pooling_task="token_classify",
            pooling_params=params,
            use_tqdm=False,
        )


def _without_eos(tokens: list[int], eos: int | None) -> list[int]:
    return tokens[:-1] if tokens and tokens[-1] == eos else tokens
