"""The model of the two LM families (step tag, chat turn): any causal LM transformers knows.

The runtime runs the decoder and applies the LM head only at the score positions, so the
full-vocabulary logits of every position are never materialised.
"""

from __future__ import annotations

from transformers import AutoModelForCausalLM

from prm_backends.hf_loading import HFModelParts, count_parameters, load_checked
from prm_backends.spec import PRMSpec


def load_causal_lm(spec: PRMSpec, *, device: str) -> HFModelParts:
    model = load_checked(AutoModelForCausalLM, spec, device=device, needed="the language-model weights")
    return HFModelParts(
        backbone=model.base_model,
        head=model.get_output_embeddings(),
        config=model.config,
        num_parameters=count_parameters(model),
    )
