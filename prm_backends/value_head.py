"""Value-head family (Skywork-o1-Open-PRM): a Qwen2 backbone plus ``v_head.summary =
Linear(hidden, 1)`` on the last hidden state; the sigmoid of the value at each step's end
token scores that step.

Input ids: ``encode(bos + question + "\\n")``, then for each step ``encode(step)`` followed by
the id of the step tag (``"\\n"``); the tag positions are read. Steps are tokenized one by one
because Qwen's BPE merges ``"\\n\\n"`` into one token, which would swallow the tags. A step's
own occurrences of the tag are replaced by spaces first (as the paper's code does).

The checkpoint keeps the backbone under ``model.*`` and the head under ``v_head.summary.*``
(plus an unused ``lm_head``); it loads here without the Hub repository's custom code.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from transformers import AutoConfig, Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import Qwen2Model, Qwen2PreTrainedModel

from prm_backends.families import FamilyFields, PRMFamily, register_family
from prm_backends.hf_loading import HFModelParts, count_parameters, load_checked
from prm_backends.inputs import PRMInput, resolve_token
from prm_backends.spec import PRMSpec
from tts_eval.steps import step_content


class ValueHeadFields(FamilyFields):
    step_tag: str = Field(description="Token after every step, at which the value is read")


class ValueHead(nn.Module):
    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.summary = nn.Linear(hidden_size, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.summary(hidden_states.to(self.summary.weight.dtype)).squeeze(-1)


class Qwen2ForPrmModel(Qwen2PreTrainedModel):
    """Qwen2 backbone plus a scalar value head (the class name matches the checkpoints' config)."""

    _keys_to_ignore_on_load_unexpected = [r"^lm_head\."]  # noqa: RUF012 - transformers declares this hook as a list

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__(config)
        self.model = Qwen2Model(config)
        self.v_head = ValueHead(config.hidden_size)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs)
        return self.v_head(hidden.last_hidden_state)


def check_qwen2(spec: PRMSpec) -> None:
    try:
        config = AutoConfig.from_pretrained(spec.model, revision=spec.revision)
    except (OSError, ValueError) as exc:
        raise spec.error("model", f"cannot load the config of '{spec.model}' ({exc})") from None
    if config.model_type != "qwen2":
        raise spec.error(
            "family",
            f"family '{spec.family}' is implemented on a Qwen2 backbone, but '{spec.model}' has "
            f"model_type '{config.model_type}'; use a Qwen2 checkpoint or another family",
        )


def load_value_head_model(spec: PRMSpec, *, device: str) -> HFModelParts:
    check_qwen2(spec)
    model = load_checked(Qwen2ForPrmModel, spec, device=device, needed="the value head weights v_head.summary.*")
    return HFModelParts(model.model, model.v_head, model.config, count_parameters(model))


class ValueHeadFormat:
    # Steps are tokenised one by one, so a prefix's ids are always a prefix of its extension's.
    prefix_stable = True

    def __init__(self, spec: PRMSpec, tokenizer) -> None:
        self.spec = spec
        self.tokenizer = tokenizer
        self.tag = spec.fields_as(ValueHeadFields).step_tag
        self.tag_id = resolve_token(tokenizer, self.tag, spec, "step_tag")
        self.bos = tokenizer.bos_token or ""

    def build(self, question: str, steps: list[str]) -> PRMInput:
        encode = self.tokenizer.encode
        ids = encode(self.bos + question + self.tag, add_special_tokens=False)
        positions = []
        for step in steps:
            content = step_content(step).replace(self.tag, " ").strip()
            ids += encode(content, add_special_tokens=False) if content else []
            ids.append(self.tag_id)
            positions.append(len(ids) - 1)
        return PRMInput(ids, positions)

    def read_out(self, head_outputs: torch.Tensor) -> torch.Tensor:
        """``head_outputs``: values (one per step) at the step-end tokens; returns their sigmoid."""
        return torch.sigmoid(head_outputs.float())


FAMILY = register_family(
    PRMFamily(
        name="value_head",
        fields=ValueHeadFields,
        format=ValueHeadFormat,
        head="value",
        load_hf_model=load_value_head_model,
        runtime_note="vLLM has no model with a single Linear(hidden, 1) value head on the last hidden state "
        "(and its generic pooling models refuse the checkpoint's v_head weights)",
    )
)
