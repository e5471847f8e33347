"""Step-tag LM family (Math-Shepherd): a plain causal LM reads the solution as raw text with a
tag after every step, and its next-token distribution at each tag scores that step.

Input: ``f"{question} {step_1} {tag}{separator}{step_2} {tag}..."`` (Math-Shepherd: tag
``ки``, separator ``"\\n"``), tokenized with the tokenizer's own special tokens (its BOS).
Score of a step: ``softmax(logits[tag position, [good, bad]])[0]``.
"""

from __future__ import annotations

import torch
from pydantic import Field

from prm_backends.causal_lm import load_causal_lm
from prm_backends.families import FamilyFields, PRMFamily, register_family
from prm_backends.inputs import PRMInput, resolve_token, tokenize_marked
from prm_backends.spec import PRMSpec
from tts_eval.steps import step_content


class StepTagFields(FamilyFields):
    step_tag: str = Field(description="Token after every step, at which the LM is read")
    good_token: str = Field(description="Token whose probability is the step score")
    bad_token: str = Field(description="The competing token")
    separator: str = Field(description="Text between one tagged step and the next")


class StepTagFormat:
    # The joined text is tokenised at once, so a merge across a step boundary could make a
    # prefix's ids differ inside its extension: reused scores are checked per solution.
    prefix_stable = False

    def __init__(self, spec: PRMSpec, tokenizer) -> None:
        fields = spec.fields_as(StepTagFields)
        self.spec = spec
        self.tokenizer = tokenizer
        self.tag = fields.step_tag
        self.separator = fields.separator
        self.tag_id = resolve_token(tokenizer, fields.step_tag, spec, "step_tag")
        self.good_id = resolve_token(tokenizer, fields.good_token, spec, "good_token")
        self.bad_id = resolve_token(tokenizer, fields.bad_token, spec, "bad_token")

    def build(self, question: str, steps: list[str]) -> PRMInput:
        text = f"{question} "
        marks = []
        for i, step in enumerate(steps):
            if i:
                text += self.separator
            text += step_content(step) + " "
            marks.append((len(text), len(text) + len(self.tag)))
            text += self.tag
        ids, positions = tokenize_marked(
            self.tokenizer,
            text,
            marks,
            add_special_tokens=True,
            expected_id=self.tag_id,
            spec=self.spec,
            field="step_tag",
        )
        return PRMInput(ids, positions)

    def read_out(self, head_outputs: torch.Tensor) -> torch.Tensor:
        """``head_outputs``: LM logits (steps x vocab) at the tags; returns p(good)."""
        pair = head_outputs[:, [self.good_id, self.bad_id]].float()
        return torch.softmax(pair, dim=-1)[:, 0]


FAMILY = register_family(
    PRMFamily(
        name="step_tag", fields=StepTagFields, format=StepTagFormat, head="next_token", load_hf_model=load_causal_lm
    )
)
