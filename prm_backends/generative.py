"""Generative family (LLM-as-judge, ThinkPRM-style): a chat LM is asked about each step in
its own prompt, and its next-token probabilities of the verdict tokens score the step.

Input of step k: the judge's chat template over (``system_prompt``, if given, and) the user
message ``judge_prompt`` with ``{question}``, ``{previous_steps}`` (steps 1..k-1, each
written ``Step i: <content>``, joined by blank lines; empty for the first step), ``{step}``
(step k's content) and ``{step_number}`` (k) filled in, with the generation prompt, then ``response_prefix``; with ``think_tokens`` = K > 0
the judge first writes up to K tokens greedily (ending early at its EOS token), then
``verdict_prompt`` follows. Score: ``p(good) / (p(good) + p(bad))`` of the next token, i.e.
the two-way softmax of the good and bad tokens' logits (or log-probabilities: the
normalisation cancels).

Every token the judge reads or writes counts as PRM compute: the prompts, its thinking and
the verdict prompt. The texts are tokenized in two parts (the rendered prompt with the
response prefix, and the verdict prompt), whose ids are joined with the thinking's between.
"""

from __future__ import annotations

import re

import torch
from pydantic import Field, model_validator

from prm_backends.causal_lm import load_causal_lm
from prm_backends.families import FamilyFields, PRMFamily, register_family
from prm_backends.inputs import PRMInput, resolve_token
from prm_backends.spec import PRMSpec
from tts_eval.steps import step_content

JUDGE_PLACEHOLDERS = ("question", "previous_steps", "step", "step_number")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(JUDGE_PLACEHOLDERS) + r")\}")


class GenerativeFields(FamilyFields):
    judge_prompt: str = Field(
        description="The user message asking the judge about one step; placeholders {question}, "
        "{previous_steps}, {step}, {step_number}",
    )
    good_token: str = Field(description="The verdict token whose probability is the step score")
    bad_token: str = Field(description="The competing verdict token")
    system_prompt: str | None = Field(default=None, description="System message of the judge's chat template")
    response_prefix: str | None = Field(default=None, description="Text the judge's answer starts with")
    verdict_prompt: str | None = Field(
        default=None, description="Text after the answer's start (and any thinking) that the verdict token follows"
    )
    think_tokens: int | None = Field(
        default=None, ge=0, description="Tokens the judge may write (greedy) before the verdict; default 0"
    )

    @model_validator(mode="after")
    def _judge_sees_the_step(self) -> GenerativeFields:
        if "{step}" not in self.judge_prompt:
            raise ValueError(
                "field 'judge_prompt' has no {step} placeholder, so the judge would never see the step it judges; "
                f"add it (placeholders: {', '.join('{' + p + '}' for p in JUDGE_PLACEHOLDERS)})"
            )
        return self


class GenerativeFormat:
    # Step k's prompt is built from steps 1..k alone, so a known step's score holds in any extension.
    prefix_stable = True

    def __init__(self, spec: PRMSpec, tokenizer) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise spec.error(
                "family",
                f"family 'generative' renders the judge's chat template, but the tokenizer of '{spec.model}' "
                "has none; use a chat (instruct) checkpoint",
            )
        self.spec = spec
        self.fields = fields = spec.fields_as(GenerativeFields)
        self.tokenizer = tokenizer
        self.good_id = resolve_token(tokenizer, fields.good_token, spec, "good_token")
        self.bad_id = resolve_token(tokenizer, fields.bad_token, spec, "bad_token")
        self.think_tokens = fields.think_tokens or 0
        self.verdict_ids = tokenizer.encode(fields.verdict_prompt or "", add_special_tokens=False)
        # Room the thinking and the verdict prompt take after a prompt built without them.
        self.reserved_tokens = self.think_tokens + len(self.verdict_ids) if self.think_tokens else 0
        self.eos_id = tokenizer.eos_token_id

    def judge_text(self, question: str, steps: list[str], k: int) -> str:
        """The text the judge continues when judging step ``k`` (0-based) of ``steps``."""
        contents = [step_content(step) for step in steps[: k + 1]]
        values = {
            "question": question,
            "previous_steps": "\n\n".join(f"Step {i}: {c}" for i, c in enumerate(contents[:-1], 1)),
            "step": contents[-1],
            "step_number": str(k + 1),
        }
        # One pass, so text filled in is never searched for placeholders again.
        user = _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.fields.judge_prompt)
        messages = (
            [{"role": "system", "content": self.fields.system_prompt}] if self.fields.system_prompt is not None else []
        )
        messages.append({"role": "user", "content": user})
        rendered = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return rendered + (self.fields.response_prefix or "")

    def build(self, question: str, steps: list[str]) -> PRMInput:
        """One prompt per step; with thinking, each ends where the judge starts writing
        (:meth:`with_thoughts` completes it), else it ends with the verdict prompt."""
        prompts = [
            self.tokenizer.encode(self.judge_text(question, steps, k), add_special_tokens=False)
            for k in range(len(steps))
        ]
        if not self.think_tokens:
            prompts = [p + self.verdict_ids for p in prompts]
        return PRMInput.per_step(prompts)

    def with_thoughts(self, inp: PRMInput, thoughts: list[list[int]]) -> PRMInput:
        """The prompts of a thinking judge completed by what it wrote and the verdict prompt."""
        return PRMInput.per_step([p + t + self.verdict_ids for p, t in zip(inp.judge_prompts, thoughts)])

    def read_out(self, head_outputs: torch.Tensor) -> torch.Tensor:
        """``head_outputs``: next-token logits (steps x vocab) at each prompt's end; p(good)."""
        pair = head_outputs[:, [self.good_id, self.bad_id]].float()
        return torch.softmax(pair, dim=-1)[:, 0]


FAMILY = register_family(
    PRMFamily(
        name="generative",
        fields=GenerativeFields,
        format=GenerativeFormat,
        head="next_token",
        load_hf_model=load_causal_lm,
        writes_tokens=True,
    )
)
