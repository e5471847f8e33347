"""Parameter counts of checkpoints from their config alone: the model is built on the meta
device, so no weights are read (what FLOPs estimates and memory plans need before loading)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def checkpoint_parameters(model: str, *, revision: str | None = None, trust_remote_code: bool = False) -> int:
    """The parameter count of the causal LM ``model`` describes, from its config alone (the
    model is built on the meta device, so no weights are read); the number the ``hf`` backend
    counts for the same checkpoint."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
    return config_parameters(config, trust_remote_code=trust_remote_code)


def config_parameters(
    config: Any, build: Callable[[Any], Any] | None = None, *, trust_remote_code: bool = False
) -> int:
    """The parameter count of the model ``build(config)`` makes (default: the causal LM the
    config describes), built on the meta device."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        if build is None:
            skeleton = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
        else:
            skeleton = build(config)
    return sum(p.numel() for p in skeleton.parameters())
