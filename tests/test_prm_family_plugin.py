"""A PRM family added from outside the package: one module that registers itself, one YAML
file naming it, and ``load_prm`` scores with it, with no other edit."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest
import torch
import yaml
from prm_fixtures import tiny_prm_dir

from prm_backends import PRMConfigError, families, load_prm, load_spec

# A toy family: the LM reads the question and the steps as plain text, and its next-token
# distribution after each step's last token scores the step (good vs bad token).
TOY_FAMILY = textwrap.dedent(
    """
    import torch
    from pydantic import Field

    from prm_backends import FamilyFields, PRMFamily, register_family
    from prm_backends.causal_lm import load_causal_lm
    from prm_backends.inputs import PRMInput, resolve_token
    from tts_eval.steps import step_content


    class StepEndFields(FamilyFields):
        good_token: str = Field(description="token whose probability scores the step")
        bad_token: str = Field(description="the competing token")


    class StepEndFormat:
        prefix_stable = True  # steps are encoded one by one

        def __init__(self, spec, tokenizer):
            fields = spec.fields_as(StepEndFields)
            self.tokenizer = tokenizer
            self.good_id = resolve_token(tokenizer, fields.good_token, spec, "good_token")
            self.bad_id = resolve_token(tokenizer, fields.bad_token, spec, "bad_token")

        def build(self, question, steps):
            ids = self.tokenizer.encode(question + "\\n", add_special_tokens=True)
            positions = []
            for step in steps:
                ids = ids + self.tokenizer.encode(step_content(step) + "\\n", add_special_tokens=False)
                positions.append(len(ids) - 1)
            return PRMInput(ids, positions)

        def read_out(self, head_outputs):
            return torch.softmax(head_outputs[:, [self.good_id, self.bad_id]].float(), dim=-1)[:, 0]


    register_family(PRMFamily(
        name="step_end", fields=StepEndFields, format=StepEndFormat, head="next_token",
        load_hf_model=load_causal_lm, runtimes=("hf",), runtime_note="this toy runs on transformers only",
    ))
    """
)

QUESTION = "What is 2 + 3 * 4?"
STEPS = ["First, 3 * 4 = 12.\n\n", "Then 2 + 12 = 14.\n\n", "The answer is 14."]


@pytest.fixture
def toy_family(tmp_path, monkeypatch):
    """The toy family's module, imported from tmp_path; the registry is restored afterwards."""
    families.family_names()  # the shipped families, registered before the copy
    monkeypatch.setattr(families, "_FAMILIES", dict(families._FAMILIES))
    (tmp_path / "toy_step_end.py").write_text(TOY_FAMILY, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("toy_step_end")
    yield tmp_path
    sys.modules.pop("toy_step_end", None)


def write_yaml(folder, **fields):
    spec = {
        "name": "toy step-end PRM",
        "family": "step_end",
        "model": str(tiny_prm_dir("step_tag")),
        "good_token": "+",
        "bad_token": "-",
        "device": "cpu",
        "dtype": "float32",
        "batch_size": 2,
        **fields,
    }
    path = folder / "step-end.yaml"
    path.write_text(
        yaml.safe_dump({k: v for k, v in spec.items() if v is not None}, allow_unicode=True), encoding="utf-8"
    )
    return path


def reference_scores(question: str, steps: list[str]) -> list[float]:
    """The toy family's scores computed directly with transformers, one solution at a time."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_prm_dir("step_tag")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    ids = tokenizer.encode(question + "\n", add_special_tokens=True)
    ends = []
    for step in steps:
        ids += tokenizer.encode(step.strip() + "\n", add_special_tokens=False)
        ends.append(len(ids) - 1)
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0, ends]
    good, bad = tokenizer.convert_tokens_to_ids("+"), tokenizer.convert_tokens_to_ids("-")
    return torch.softmax(logits[:, [good, bad]], dim=-1)[:, 0].tolist()


@pytest.mark.slow
def test_a_family_registered_from_a_module_scores_through_load_prm(toy_family):
    path = write_yaml(toy_family)
    prm = load_prm(path)
    assert (prm.spec.family, prm.spec.good_token) == ("step_end", "+")
    items = [(QUESTION, STEPS), (QUESTION, STEPS[:1]), ("Compute 7 - 5.", ["7 - 5 = 2.", "So 2."])]
    got = prm.score_batch(items)
    for (question, steps), scores in zip(items, got):
        assert scores == pytest.approx(reference_scores(question, steps), abs=1e-5)
    assert len(set(got[0])) == 3  # the scores depend on the step
    # A continuation reuses its parent's scores and kept prefix, and agrees with scoring afresh.
    parent = prm.score_batch([(QUESTION, STEPS[:2])])[0]
    (cont,) = prm.score_continuations([(QUESTION, STEPS, parent)])
    assert cont.scores == pytest.approx(got[0], abs=1e-6)
    assert cont.computed_tokens < cont.input_tokens


def test_a_registered_family_gets_the_spec_checks_of_the_shipped_ones(toy_family):
    with pytest.raises(PRMConfigError) as unknown:
        load_spec("skywork-prm-1.5b", family="nope")
    assert "'step_end'" in str(unknown.value)
    cases = [
        ({"bad_token": None}, "field 'bad_token' is required by family 'step_end' (it reads good_token, bad_token)"),
        ({"step_tag": "ки"}, "field 'step_tag' is not used by family 'step_end'"),
        ({"bad_token": "+"}, "fields 'good_token' and 'bad_token' are the same token"),
        (
            {"runtime": "http"},
            (
                "runtime 'http' cannot score family 'step_end' exactly: this toy runs on "
                "transformers only; use runtime: hf"
            ),
        ),
    ]
    for change, fragment in cases:
        path = write_yaml(toy_family, **change)
        with pytest.raises(PRMConfigError) as info:
            load_spec(path)
        assert str(path) in str(info.value) and fragment in str(info.value), str(info.value)


def test_without_its_module_the_family_is_unknown(tmp_path):
    path = write_yaml(tmp_path)
    with pytest.raises(PRMConfigError) as info:
        load_spec(path)
    message = str(info.value)
    for fragment in (
        str(path),
        "field 'family'",
        "'step_end' is not a PRM family",
        "'step_tag', 'chat_turn', 'value_head', 'token_classifier' or 'generative'",
    ):
        assert fragment in message, message


def test_a_format_without_what_its_head_needs_is_refused_at_load(toy_family, monkeypatch):
    import dataclasses

    class NoBadToken(sys.modules["toy_step_end"].StepEndFormat):
        def __init__(self, spec, tokenizer):
            super().__init__(spec, tokenizer)
            del self.bad_id  # a next_token head's read-out compares the good and the bad token

    family = dataclasses.replace(families.get_family("step_end"), format=NoBadToken)
    monkeypatch.setitem(families._FAMILIES, "step_end", family)
    with pytest.raises(RuntimeError) as info:
        load_prm(write_yaml(toy_family))
    assert str(info.value) == (
        "PRM family 'step_end': its format NoBadToken does not follow NextTokenFormat "
        "(prm_backends.inputs), which its head 'next_token' needs"
    )
