"""Token-classifier family (Qwen2.5-Math-PRM, Qwen2.5-Math-7B-PRM800K): a Qwen2 backbone plus
``score = Sequential(Linear(h, h), ReLU, Linear(h, 2))`` on every position; the class-1
probability at each step tag scores the step before it.

Input: the PRM's chat template over the system prompt, user = question, assistant =
``tag.join(steps) + tag`` (the steps' own ``"\\n\\n"`` separators are not kept), without a
generation prompt. Positions are those of the tags this builder placed (never found by
matching ids, so a step that happens to contain the tag text cannot shift the scores).

The checkpoint (``architectures: ["Qwen2ForProcessRewardModel"]``) keeps the backbone under
``model.*`` and the head under ``score.0.*``, ``score.2.*``; it loads here without the Hub
repository's custom code.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import Qwen2Model, Qwen2PreTrainedModel

from prm_backends.families import FamilyFields, PRMFamily, register_family
from prm_backends.hf_loading import HFModelParts, count_parameters, load_checked
from prm_backends.inputs import PRMInput, pick_sentinel, resolve_token, substitute_sentinel, tokenize_marked
from prm_backends.spec import PRMSpec
from prm_backends.value_head import check_qwen2
from tts_eval.steps import step_content

NUM_LABELS = 2  # class 1 = the step is correct


class TokenClassifierFields(FamilyFields):
    step_tag: str = Field(description="Token after every step, at which the head is read")
    system_prompt: str = Field(description="System message of the PRM's chat template")


class Qwen2ForProcessRewardModel(Qwen2PreTrainedModel):
    """Qwen2 backbone plus the two-class step head (the class name matches the checkpoints' config)."""

    _keys_to_ignore_on_load_unexpected = [r"^lm_head\."]  # noqa: RUF012 - transformers declares this hook as a list

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__(config)
        self.model = Qwen2Model(config)
        self.score = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size),
            nn.ReLU(),
            nn.Linear(config.hidden_size, NUM_LABELS),
        )
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs)
        return self.score(hidden.last_hidden_state)


def load_token_classifier_model(spec: PRMSpec, *, device: str) -> HFModelParts:
    check_qwen2(spec)
    model = load_checked(
        Qwen2ForProcessRewardModel, spec, device=device, needed="the step head weights score.0.*, score.2.*"
    )
    return HFModelParts(model.model, model.score, model.config, count_parameters(model))


class TokenClassifierFormat:
    # The template renders the whole conversation, tokenised at once: reused scores are checked
    # per solution (a prefix whose ids differ inside its extension is scored afresh).
    prefix_stable = False

    def __init__(self, spec: PRMSpec, tokenizer) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise spec.error(
                "family",
                f"family 'token_classifier' renders the PRM's chat template, but the tokenizer of "
                f"'{spec.model}' has none; use a checkpoint whose tokenizer has one",
            )
        fields = spec.fields_as(TokenClassifierFields)
        self.spec = spec
        self.tokenizer = tokenizer
        self.tag = fields.step_tag
        self.tag_id = resolve_token(tokenizer, fields.step_tag, spec, "step_tag")
        self.system_prompt = fields.system_prompt

    def build(self, question: str, steps: list[str]) -> PRMInput:
        contents = [step_content(step) for step in steps]
        sentinel = pick_sentinel([question, self.system_prompt, *contents])
        messages = [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": question},
            {"role": "assistant", "content": "".join(c + sentinel for c in contents)},
        ]
        rendered = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        text, marks = substitute_sentinel(rendered, sentinel, self.tag)
        if len(marks) != len(steps):
            raise self.spec.error(
                "family",
                f"the chat template of '{self.spec.model}' rendered {len(marks)} step tags for "
                f"{len(steps)} steps; family 'token_classifier' needs a template that keeps the "
                "assistant message as is",
            )
        ids, positions = tokenize_marked(
            self.tokenizer,
            text,
            marks,
            add_special_tokens=False,
            expected_id=self.tag_id,
            spec=self.spec,
            field="step_tag",
        )
        return PRMInput(ids, positions)

    def read_out(self, head_outputs: torch.Tensor) -> torch.Tensor:
        """``head_outputs``: two-class logits (steps x 2) at the tags; returns p(class 1)."""
        return torch.softmax(head_outputs.float(), dim=-1)[:, 1]


FAMILY = register_family(
    PRMFamily(
        name="token_classifier",
        fields=TokenClassifierFields,
        format=TokenClassifierFormat,
        head="classes",
        load_hf_model=load_token_classifier_model,
        parameter_model=Qwen2ForProcessRewardModel,
        served_architecture="Qwen2ForProcessRewardModel",
    )
)
