"""Chat-turn LM family (RLHFlow): a chat causal LM reads the solution as a conversation in which
the user says each step and the assistant answers the good token; the LM's prediction of each
assistant answer scores the step.

Input: the PRM's own chat template over user ``question + " " + step_1``, assistant ``good``,
user ``step_2``, assistant ``good``, ... (no generation prompt). Score of a step:
``softmax(logits[position before its assistant token, [good, bad]])[0]``.

The reference code re-encodes the growing conversation once per step; one forward pass over
the whole conversation, reading every assistant position, gives the same numbers because the
model is causal.
"""

from __future__ import annotations

import torch
from pydantic import Field

from prm_backends.causal_lm import load_causal_lm
from prm_backends.families import FamilyFields, PRMFamily, register_family
from prm_backends.inputs import PRMInput, pick_sentinel, resolve_token, substitute_sentinel, tokenize_marked
from prm_backends.spec import PRMSpec
from tts_eval.steps import step_content


class ChatTurnFields(FamilyFields):
    good_token: str = Field(description="The assistant's answer to every step; its probability is the step score")
    bad_token: str = Field(description="The competing token")


class ChatTurnFormat:
    # The template renders the whole conversation, tokenised at once: reused scores are checked
    # per solution (a prefix whose ids differ inside its extension is scored afresh).
    prefix_stable = False

    def __init__(self, spec: PRMSpec, tokenizer) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise spec.error(
                "family",
                f"family 'chat_turn' renders the PRM's chat template, but the tokenizer of "
                f"'{spec.model}' has none; use a chat checkpoint or another family",
            )
        fields = spec.fields_as(ChatTurnFields)
        self.spec = spec
        self.tokenizer = tokenizer
        self.good = fields.good_token
        self.good_id = resolve_token(tokenizer, fields.good_token, spec, "good_token")
        self.bad_id = resolve_token(tokenizer, fields.bad_token, spec, "bad_token")

    def build(self, question: str, steps: list[str]) -> PRMInput:
        contents = [step_content(step) for step in steps]
        # The assistant turns are rendered as a sentinel, then replaced, to know where they are.
        sentinel = pick_sentinel([question, *contents])
        messages = []
        for i, content in enumerate(contents):
            messages.append({"role": "user", "content": f"{question} {content}" if i == 0 else content})
            messages.append({"role": "assistant", "content": sentinel})
        rendered = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        text, marks = substitute_sentinel(rendered, sentinel, self.good)
        if len(marks) != len(steps):
            raise self.spec.error(
                "family",
                f"the chat template of '{self.spec.model}' rendered {len(marks)} assistant turns for "
                f"{len(steps)} steps; family 'chat_turn' needs a template that keeps every turn",
            )
        ids, token_positions = tokenize_marked(
            self.tokenizer,
            text,
            marks,
            add_special_tokens=False,
            expected_id=self.good_id,
            spec=self.spec,
            field="good_token",
        )
        # The logits one position earlier predict the assistant token.
        return PRMInput(ids, [pos - 1 for pos in token_positions])

    def read_out(self, head_outputs: torch.Tensor) -> torch.Tensor:
        """``head_outputs``: LM logits (steps x vocab) before each assistant turn; returns p(good)."""
        pair = head_outputs[:, [self.good_id, self.bad_id]].float()
        return torch.softmax(pair, dim=-1)[:, 0]


FAMILY = register_family(
    PRMFamily(
        name="chat_turn", fields=ChatTurnFields, format=ChatTurnFormat, head="next_token", load_hf_model=load_causal_lm
    )
)
