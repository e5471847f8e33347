"""Policy backends: ``load_policy(model, backend, **options)`` returns a :class:`Policy`.

Backends are imported only when used, so vLLM or an HTTP client is needed only by the
backend that runs on it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from tts_eval.policies.base import per_prompt_seeds
from tts_eval.protocols import Policy
from tts_eval.resources import is_package_reference, package_path
from tts_eval.validation import describe_errors

__all__ = [
    "BACKENDS",
    "Backend",
    "Policy",
    "backend_class",
    "backend_options",
    "get_backend",
    "load_policy",
    "per_prompt_seeds",
    "resolve_backend",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backend:
    """A registered policy backend: ``target`` is ``"module:ClassName"``, imported on first
    use and called as ``cls(model, **options)``; ``served`` marks a backend whose model runs
    behind a server, so there is no local folder, device or dtype to check or pass."""

    target: str
    served: bool = False


BACKENDS: dict[str, Backend] = {
    "hf": Backend("tts_eval.policies.hf:HFPolicy"),
    "vllm": Backend("tts_eval.policies.vllm:VLLMPolicy"),
    "openai": Backend("tts_eval.policies.openai:OpenAIPolicy", served=True),
}


def get_backend(name: str) -> Backend:
    """The registered backend ``name``; a ValueError lists the known ones."""
    if name not in BACKENDS:
        raise ValueError(f"unknown policy backend {name!r}; choose one of: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name]


def load_policy(model: str, backend: str = "hf", **options) -> Policy:
    """Load ``model`` (a checkpoint directory, a Hub id, a served model's name, or
    ``pkg://PACKAGE/PATH``, a checkpoint directory shipped inside a package such as
    ``pkg://tts_eval.toy/models/policy-small``) with the given backend (``auto``: see
    :func:`resolve_backend`). ``options`` are the
    backend's keyword arguments (e.g. ``dtype``, ``device``, ``system_prompt`` for ``hf``)."""
    cls = backend_class(resolve_backend(backend))
    valid = backend_options(cls)
    if valid is not None and (unknown := sorted(set(options) - set(valid))):
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for policy backend {backend!r}; "
            f"valid options: {', '.join(valid)}"
        )
    if is_package_reference(model):
        model = str(package_path(model))
    try:
        return cls(model, **options)
    except ValidationError as err:  # a bad option value: one line naming the option, as for the PRM's
        problems = describe_errors(err, label="option ", fields=valid)
        raise ValueError(f"policy backend {backend!r}: {problems}") from None


def resolve_backend(backend: str) -> str:
    """``auto``: ``vllm`` on a machine with a CUDA device and vLLM installed (the fast path on a
    GPU), else ``hf`` (the reference, and the CPU path). Any other name is returned as is."""
    if backend != "auto":
        return backend
    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None:
        logger.info("policy backend=auto: vllm (a CUDA device and vLLM are available)")
        return "vllm"
    logger.info(
        "policy backend=auto: hf (%s)", "vLLM is not installed" if torch.cuda.is_available() else "no CUDA device"
    )
    return "hf"


def backend_class(backend: str) -> type:
    """The policy class registered under ``backend``, imported on first use."""
    module, _, name = get_backend(backend).target.partition(":")
    return getattr(importlib.import_module(module), name)


def backend_options(cls: type) -> list[str] | None:
    """The keyword options a backend class accepts after ``model`` (None: any)."""
    params = list(inspect.signature(cls).parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return sorted(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
