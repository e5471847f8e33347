"""Device memory planning: a policy and a PRM that share one device get their shares before
anything loads.

Left to its defaults, a vLLM engine reserves 90% of the device for itself (on the CPU build,
of the machine's memory), so a PRM loaded next finds no room. The plan reads each model's
config (never its weights) and estimates what it needs:

* weights: parameters (counted on the meta device) x bytes of the dtype;
* activations: one layer's transient tensors for the most tokens one forward pass takes (an
  ``hf`` PRM: ``batch_size x max_length``; a vLLM engine: its batched-token budget; an ``hf``
  policy: one step of ``batch_size`` rows), plus the logits it keeps;
* KV cache: a vLLM PRM gets room for the inputs of one engine step (each request is one
  forward pass), an ``hf`` policy for ``batch_size`` rows of its context; the vLLM policy gets what is left of the
  budget (vLLM's own 90% of the device, less what others already use), at least one sequence
  of ``max_model_len`` tokens; on the CPU build, whose memory is the machine's, no more than
  ``max_num_seqs`` such sequences and :data:`CPU_KV_CACHE`.

The shares become vLLM settings: ``gpu_memory_utilization`` on CUDA (each engine's own share
of the device), ``kv_cache_memory_bytes`` on the CPU build and for a vLLM PRM. A setting the
user gave (the option, or ``VLLM_CPU_KVCACHE_SPACE``) is kept and only checked. A plan that
cannot fit raises :class:`MemoryPlanError` with every size and the options to change.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

GIB = 2**30
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
# vLLM's default gpu_memory_utilization: the share of the device all engines may take together.
DEVICE_SHARE = 0.9
# CUDA: the context of the process, once per device; CUDA graphs and allocator slack, per engine.
CUDA_CONTEXT = GIB // 2
CUDA_ENGINE_OVERHEAD = GIB
# Estimates, not measurements: activation and KV estimates get this much extra room.
MARGIN = 1.2
# vLLM's defaults when the user sets none (vllm/engine/arg_utils.py, LLM class).
VLLM_MAX_NUM_SEQS = {"cpu": 256, "cuda": 256, "cuda_large": 1024}
VLLM_BATCHED_TOKENS = {"cpu": 4096, "cuda": 8192, "cuda_large": 16384}
VLLM_LARGE_DEVICE = 70 * GIB
# The CPU build's policy KV cache at most (unless one sequence needs more): vLLM writes all of
# it at start, a CPU decodes a few thousand tokens/s, and 1 GiB holds ~1M tokens of the toy
# policy or ~37k of a 1.5B model.
CPU_KV_CACHE = GIB
# An hf policy's prompt is not known before the run; this much context is planned for it.
PROMPT_ROOM = 1024


class MemoryPlanError(ValueError):
    """The models cannot share their device as configured; the message gives the sizes and
    the options to change."""


@dataclass
class ModelNeed:
    """What one model needs on its device (bytes), and the settings the plan decides."""

    role: str  # "policy" | "prm"
    runtime: str  # "hf" | "vllm"
    model: str
    device: str
    weights: int
    activations: int
    kv_per_token: int = 0
    kv_cache: int = 0  # decided by the plan (vLLM policy) or fixed by the estimate
    kv_min: int = 0  # a vLLM engine must hold one sequence of max_model_len tokens
    kv_max: int | None = None  # the most a vLLM engine can use (max_num_seqs full sequences)
    user_settings: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def is_engine(self) -> bool:
        return self.runtime == "vllm"

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.kv_cache


@dataclass
class DevicePlan:
    """The shares of one device."""

    device: str
    total_bytes: int
    free_bytes: int
    budget_bytes: int
    models: list[ModelNeed]

    def options(self, role: str) -> dict[str, Any]:
        """The settings the plan adds to the ``role``'s loading options."""
        return {k: v for m in self.models if m.role == role for k, v in m.settings.items()}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the results' ``model_info``."""
        return {
            "device": self.device,
            "total_gib": _gib(self.total_bytes),
            "free_gib": _gib(self.free_bytes),
            "budget_gib": _gib(self.budget_bytes),
            "models": [
                {
                    "role": m.role,
                    "runtime": m.runtime,
                    "weights_gib": _gib(m.weights),
                    "activations_gib": _gib(m.activations),
                    "kv_cache_gib": _gib(m.kv_cache),
                    "planned_settings": m.settings,
                    "user_settings": m.user_settings,
                }
                for m in self.models
            ],
        }


# -- the plan --------------------------------------------------------------------------


def plan_device(device: str, models: list[ModelNeed], *, total: int, free: int) -> DevicePlan:
    """Share ``device`` (``total`` bytes, ``free`` of them unused now) among ``models``: fixed
    needs first, the rest to the vLLM policy engine; raise :class:`MemoryPlanError` when they
    cannot fit."""
    kind = device.split(":")[0]
    used_by_others = total - free
    budget = int(DEVICE_SHARE * total) - used_by_others if kind == "cuda" else int(DEVICE_SHARE * free)
    if kind == "cuda":
        budget -= CUDA_CONTEXT
        for m in models:
            if m.is_engine:
                m.activations += CUDA_ENGINE_OVERHEAD
    plan = DevicePlan(device, total, free, budget, models)
    flexible = [m for m in models if m.is_engine and m.role == "policy" and not _user_sized(m, kind)]
    for m in models:
        if m.is_engine and _user_sized(m, kind):
            m.kv_cache = _user_kv(m, kind, total)
    fixed = sum(m.total for m in models if m not in flexible)
    for m in flexible:
        room = budget - fixed - m.weights - m.activations
        if kind == "cpu":  # the machine's memory, shared with everything else on it
            assert m.kv_max is not None  # a policy engine's need states its most
            room = min(room, m.kv_max, max(m.kv_min, CPU_KV_CACHE))
        m.kv_cache = room
    _check_fits(plan, kind)
    for m in models:
        if m.is_engine:
            _engine_settings(m, kind, total)
    return plan


def _user_sized(m: ModelNeed, kind: str) -> bool:
    """Whether the user fixed the engine's memory (then the plan only checks it)."""
    if "kv_cache_memory_bytes" in m.user_settings or "gpu_memory_utilization" in m.user_settings:
        return True
    return kind == "cpu" and bool(os.environ.get("VLLM_CPU_KVCACHE_SPACE"))


def _user_kv(m: ModelNeed, kind: str, total: int) -> int:
    """The KV cache the user's settings give the engine (vLLM's rules: the environment
    variable wins on CPU, then the byte count, then the utilisation)."""
    env = os.environ.get("VLLM_CPU_KVCACHE_SPACE")
    if kind == "cpu" and env:
        return int(env) * GIB
    if "kv_cache_memory_bytes" in m.user_settings:
        return int(m.user_settings["kv_cache_memory_bytes"])
    return max(0, int(float(m.user_settings["gpu_memory_utilization"]) * total) - m.weights - m.activations)


def _check_fits(plan: DevicePlan, kind: str) -> None:
    short = [m for m in plan.models if m.is_engine and m.kv_cache < m.kv_min]
    used = sum(m.total for m in plan.models)
    if used <= plan.budget_bytes and not short:
        return
    lines = [
        f"policy and PRM do not fit on {plan.device}: {_gib(plan.total_bytes)} GiB in all, "
        f"{_gib(plan.free_bytes)} GiB free, {_gib(plan.budget_bytes)} GiB usable "
        f"({DEVICE_SHARE:.0%} of {'the device, less what is in use' if kind == 'cuda' else 'the free memory'}); needed:"
    ]
    for m in plan.models:
        kv = f", KV cache {_gib(m.kv_cache)} GiB" if m.kv_cache or m.is_engine else ""
        need = f" (at least {_gib(m.kv_min)} GiB: one sequence of max_model_len)" if m in short else ""
        lines.append(
            f"  {m.role} {m.model} ({m.runtime}): weights {_gib(m.weights)} GiB, "
            f"activations {_gib(m.activations)} GiB{kv}{need}"
        )
    lines.append(
        "Options: a smaller prm_batch_size or prm_max_length; a smaller batch_size, max_model_len "
        "or max_tokens for the policy; dtype=bfloat16; a lower gpu_memory_utilization / "
        "kv_cache_memory_bytes (policy) or prm_runtime_options (PRM) if you set them; "
        "or the PRM on another device (prm_device=...) or server (prm_backend=http)."
    )
    raise MemoryPlanError("\n".join(lines))


def _engine_settings(m: ModelNeed, kind: str, total: int) -> None:
    if _user_sized(m, kind):
        return
    if kind == "cpu":
        m.settings["kv_cache_memory_bytes"] = int(m.kv_cache)
        return
    # Each engine's own share of the device; vLLM checks at start that this much is free.
    m.settings["gpu_memory_utilization"] = math.floor(1000 * m.total / total) / 1000
    if m.role == "prm":
        m.settings["kv_cache_memory_bytes"] = int(m.kv_cache)


# -- what each model needs -----------------------------------------------------------


def layer_activation_bytes(config, tokens: int, dtype_bytes: int) -> int:
    """One decoder layer's transient tensors for ``tokens`` tokens (no autograd keeps more):
    the residual stream, q/k/v and attention output, and the MLP's gate, up and product."""
    hidden = config.hidden_size
    inter = getattr(config, "intermediate_size", None) or 4 * hidden
    return int(MARGIN * tokens * (4 * hidden + 3 * inter) * dtype_bytes)


def kv_bytes_per_token(config, dtype_bytes: int) -> int:
    """Keys and values of every layer for one token."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * dtype_bytes


def dtype_bytes(dtype: str | None, config) -> int:
    """Bytes per weight: the dtype asked for, else the checkpoint's (else float32)."""
    if dtype in DTYPE_BYTES:
        return DTYPE_BYTES[dtype]
    own = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return DTYPE_BYTES.get(str(own).removeprefix("torch."), 4)


def vllm_defaults(kind: str, total: int) -> tuple[int, int]:
    """vLLM's default (max_num_seqs, max_num_batched_tokens) on this device."""
    key = "cpu" if kind == "cpu" else ("cuda_large" if total >= VLLM_LARGE_DEVICE else "cuda")
    return VLLM_MAX_NUM_SEQS[key], VLLM_BATCHED_TOKENS[key]


def policy_need(
    model: str, backend: str, options: dict[str, Any], *, device: str, total: int, max_tokens: int
) -> ModelNeed:
    """What the policy needs, from its config."""
    from transformers import AutoConfig

    from tts_eval.serving.checkpoints import checkpoint_parameters

    load: dict[str, Any] = {
        "revision": options.get("revision"),
        "trust_remote_code": bool(options.get("trust_remote_code", False)),
    }
    config = _read_config(AutoConfig.from_pretrained, model, "policy", **load)
    text = config.get_text_config()
    kind = device.split(":")[0]
    dtype = options.get("dtype") or ("float32" if backend == "hf" and kind == "cpu" else None)
    width = dtype_bytes(dtype, text)
    weights = checkpoint_parameters(model, **load) * width
    per_token = kv_bytes_per_token(text, width)
    positions = getattr(text, "max_position_embeddings", None)
    if backend == "hf":
        rows = int(options.get("batch_size") or 64)
        context = max_tokens + PROMPT_ROOM if positions is None else min(positions, max_tokens + PROMPT_ROOM)
        # One decoding step of every row, its logits, and the KV cache of every row's context.
        activations = layer_activation_bytes(text, rows, width) + MARGIN * rows * text.vocab_size * 4 * 2
        return ModelNeed(
            "policy",
            "hf",
            model,
            device,
            weights,
            int(activations),
            per_token,
            kv_cache=int(MARGIN * rows * context * per_token),
        )
    seqs, batched = vllm_defaults(kind, total)
    seqs = int(options.get("batch_size") or seqs)
    max_len = int(options.get("max_model_len") or positions or 4096)
    tokens = max(batched, max_len) if kind == "cpu" else batched  # whole prompts on CPU (no chunked prefill)
    activations = layer_activation_bytes(text, tokens, width) + MARGIN * seqs * text.vocab_size * 4 * 2
    user = {k: options[k] for k in ("gpu_memory_utilization", "kv_cache_memory_bytes") if options.get(k) is not None}
    return ModelNeed(
        "policy",
        "vllm",
        model,
        device,
        weights,
        int(activations),
        per_token,
        kv_min=max_len * per_token,
        kv_max=seqs * max_len * per_token,
        user_settings=user,
    )


def prm_need(spec, *, device: str, total: int) -> ModelNeed:
    """What the PRM of ``spec`` needs, from its config."""
    from transformers import AutoConfig

    from prm_backends.families import family_of
    from prm_backends.runtime_base import checkpoint_parameters

    config = _read_config(AutoConfig.from_pretrained, spec.model, "PRM", revision=spec.revision)
    width = dtype_bytes(spec.dtype, config)
    weights = checkpoint_parameters(spec) * width
    per_token = kv_bytes_per_token(config, width)
    # LM families read two logits at each score position, never the vocabulary at every token.
    # A generative PRM writes its verification: a KV cache for batch_size inputs of max_length
    # and a step's logits.
    thinks = family_of(spec).writes_tokens
    thinking_kv = int(MARGIN * spec.batch_size * spec.max_length * per_token) if thinks else 0
    if spec.runtime == "hf":
        tokens = spec.batch_size * spec.max_length
        activations = layer_activation_bytes(config, tokens, width)
        activations += int(MARGIN * spec.batch_size * config.vocab_size * 4 * 2) if thinks else 0
        return ModelNeed("prm", "hf", spec.model, device, weights, activations, per_token, kv_cache=thinking_kv)
    kind = device.split(":")[0]
    _, batched = vllm_defaults(kind, total)
    # A PRM request of the other families is one forward pass (a pooled input, or one
    # generated token), so the KV cache only holds the inputs of one engine step.
    tokens = max(batched, spec.max_length)
    user = {
        k: spec.runtime_options[k]
        for k in ("gpu_memory_utilization", "kv_cache_memory_bytes")
        if spec.runtime_options.get(k) is not None
    }
    return ModelNeed(
        "prm",
        "vllm",
        spec.model,
        device,
        weights,
        layer_activation_bytes(config, tokens, width),
        per_token,
        kv_cache=max(int(MARGIN * tokens * per_token), thinking_kv),
        kv_min=spec.max_length * per_token,
        user_settings=user,
    )


def _read_config(read, model: str, role: str, **load):
    try:
        return read(model, **load)
    except (OSError, ValueError) as err:
        raise MemoryPlanError(f"cannot read the {role} config of {model!r} to plan device memory: {err}") from None


# -- devices -----------------------------------------------------------------------------


def device_memory(device: str) -> tuple[int, int]:
    """(total, free) bytes of ``device``: a CUDA device's, or the machine's for ``cpu``."""
    if device.startswith("cuda"):
        import torch

        index = int(device.partition(":")[2] or 0)
        free, total = torch.cuda.mem_get_info(index)
        return int(total), int(free)
    import psutil

    memory = psutil.virtual_memory()
    return int(memory.total), int(memory.available)


def vllm_device() -> str:
    """The device a vLLM engine in this process runs on (vLLM uses the first visible one)."""
    from vllm.platforms import current_platform

    kind = current_platform.device_type
    return "cuda:0" if kind == "cuda" else kind


def torch_device(device: str | None) -> str:
    """``auto`` (or none) resolved as the ``hf`` runtimes resolve it; ``cuda`` as ``cuda:0``."""
    import torch

    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda:0" if device == "cuda" else device


def plan_run(
    *,
    policy: str,
    backend: str,
    policy_options: dict[str, Any],
    prm_spec=None,
    max_tokens: int,
) -> list[DevicePlan]:
    """Plans for the devices of a run's local models (a served policy or PRM needs none).
    A device is planned when it holds a vLLM engine or both models; a lone ``hf`` model
    loads as it always did."""
    from tts_eval.resources import is_package_reference, package_path

    if is_package_reference(policy):
        policy = str(package_path(policy))
    placed: list[tuple[str, str, str]] = []  # (role, runtime, device) of each local model
    if backend in ("hf", "vllm"):
        device = torch_device(policy_options.get("device")) if backend == "hf" else vllm_device()
        placed.append(("policy", backend, device))
    if prm_spec is not None and prm_spec.runtime in ("hf", "vllm"):
        device = torch_device(prm_spec.device) if prm_spec.runtime == "hf" else vllm_device()
        placed.append(("prm", prm_spec.runtime, device))
    plans = []
    for device in dict.fromkeys(d for _, _, d in placed):
        here = [(role, runtime) for role, runtime, d in placed if d == device]
        if device.startswith("mps") or (len(here) < 2 and all(runtime == "hf" for _, runtime in here)):
            continue
        total, free = device_memory(device)
        models = [
            policy_need(policy, backend, policy_options, device=device, total=total, max_tokens=max_tokens)
            if role == "policy"
            else prm_need(prm_spec, device=device, total=total)
            for role, _ in here
        ]
        plans.append(plan_device(device, models, total=total, free=free))
    return plans


def _gib(n: float) -> float:
    return round(n / GIB, 3)
