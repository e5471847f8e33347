"""Loading a PRM checkpoint with transformers' ``from_pretrained`` and checking that every
weight the family needs was in it (``from_pretrained`` would silently initialise missing ones
at random)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

import torch
from torch import nn

from prm_backends.spec import PRMSpec

if TYPE_CHECKING:
    from transformers import AutoModelForCausalLM, PreTrainedModel

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class HFModelParts:
    """What the transformers runtime runs: the backbone gives the last hidden states, the head
    maps the hidden states at the score positions to the family's read-out input."""

    backbone: nn.Module
    head: nn.Module
    config: Any
    num_parameters: int


def torch_dtype(spec: PRMSpec) -> torch.dtype | str:
    return _DTYPES.get(spec.dtype, "auto")


ModelT = TypeVar("ModelT", bound="PreTrainedModel")


@overload
def load_checked(model_cls: type[ModelT], spec: PRMSpec, *, device: str, needed: str) -> ModelT: ...
@overload  # an auto class builds the model class the checkpoint's config names
def load_checked(
    model_cls: type[AutoModelForCausalLM], spec: PRMSpec, *, device: str, needed: str
) -> PreTrainedModel: ...
def load_checked(model_cls: Any, spec: PRMSpec, *, device: str, needed: str) -> PreTrainedModel:
    """``model_cls.from_pretrained`` on the spec's checkpoint; an error naming the missing
    weights if the checkpoint lacks any (``needed`` says what they are for)."""
    try:
        model, info = model_cls.from_pretrained(
            spec.model,
            revision=spec.revision,
            dtype=torch_dtype(spec),
            output_loading_info=True,
            ignore_mismatched_sizes=True,
        )
    except (OSError, ValueError) as exc:
        raise spec.error("model", f"cannot load the weights of '{spec.model}' ({exc})") from None
    missing = sorted(info["missing_keys"])
    mismatched = sorted(str(k) for k in info.get("mismatched_keys", ()))
    if missing or mismatched:
        shown = ", ".join((missing + mismatched)[:6]) + (" ..." if len(missing) + len(mismatched) > 6 else "")
        raise spec.error(
            "model",
            f"the checkpoint '{spec.model}' lacks {needed} (missing or wrongly shaped: {shown}); "
            f"use a checkpoint of family '{spec.family}' that was saved with them, or fix the family",
        )
    return model.to(device).eval()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
