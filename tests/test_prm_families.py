"""Each family's scores equal an independent computation of its model card's recipe (one full
forward of a plain transformers model, read out by hand) on a tiny checkpoint in the real
format, whatever the batch size or padding side; long inputs drop trailing steps as NaN."""

from __future__ import annotations

import functools
import math
import warnings

import pytest
import torch
from prm_fixtures import FAMILIES, load_tiny_prm, tiny_prm_dir
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Model

from prm_backends import ProcessRewardModel, TruncationWarning

QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."

# (question, steps as the search produces them): 1 and 6 steps, inner newlines, LaTeX, unicode.
ITEMS = [
    ("What is $2+3$?", ["$2 + 3 = 5$, so the answer is $\\boxed{5}$."]),
    (
        "Solve $x^2 - 5x + 6 = 0$ and give the larger root.",
        [
            "We factor the quadratic.\n\n",
            "$x^2 - 5x + 6 = (x - 2)(x - 3)$.\n\n",
            "So $x - 2 = 0$ or $x - 3 = 0$.\n\n",
            "The roots are $x = 2$ and $x = 3$.\n\n",
            "The larger one is $3$, since $3 > 2$.\n\n",
            "The answer is $\\boxed{3}$.",
        ],
    ),
    (
        "Compute $\\frac{1}{2} + \\frac{1}{3}$.",
        [
            "First,\n$\\frac{1}{2} = \\frac{3}{6}$\nand $\\frac{1}{3} = \\frac{2}{6}$.\n\n",
            "So the sum is $\\boxed{\\frac{5}{6}}$.\n\n",
        ],
    ),
    (
        "Is π ≤ 4?",
        ["We know π ≈ 3.14 — less than 4 (√16 = 4).\n\n", "So yes: π ≤ 4, 你好, café.\n\n", "$\\boxed{\\text{yes}}$"],
    ),
    ("Find $|{-7}| - 2$.", ["$|-7| = 7$ and $7 - 2 = 5$; also $2 + (-2) = 0$.\n\n", "\\[\\boxed{5}\\]"]),
    ("Evaluate $\\sum_{k=1}^{3} k$.", ["  $1 + 2 + 3$\n\n", "$= 6$.\n\n", "Hence $\\boxed{6}$.\n\n\n"]),
    ("What is $10 \\div 4$?", ["$10 \\div 4 = 2.5 = \\tfrac{5}{2}$, i.e. $\\boxed{\\frac52}$."]),
]


# --- independent computations of the model cards' recipes ---------------------------------


def _shepherd_reference(directory, items):
    """Math-Shepherd card: one string, every step followed by " ки", read p(+) at each tag."""
    tok = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    good, bad = tok.convert_tokens_to_ids(["+", "-"])
    tag = tok.convert_tokens_to_ids("ки")
    out = []
    for question, steps in items:
        output = "\n".join(f"{s.strip()} ки" for s in steps)
        ids = tok.encode(f"{question} {output}", return_tensors="pt")
        with torch.no_grad():
            logits = model(ids).logits[0][:, [good, bad]]
        probs = logits.softmax(dim=-1)[:, 0]
        out.append(probs[ids[0] == tag].tolist())
    return out


def _rlhflow_reference(directory, items):
    """RLHFlow card: re-encode the growing conversation per step, read p(+) at position -3."""
    tok = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    good, bad = tok.convert_tokens_to_ids(["+", "-"])
    out = []
    for question, steps in items:
        conversation, scores = [], []
        for k, step in enumerate(steps):
            text = f"{question} {step.strip()}" if k == 0 else step.strip()
            conversation += [{"content": text, "role": "user"}, {"content": "+", "role": "assistant"}]
            ids = tok.apply_chat_template(conversation, tokenize=True, return_dict=False)
            assert ids[-2] == good  # "... +<|eot_id|>"
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0, -3, [good, bad]]
            scores.append(logits.softmax(dim=-1)[0].item())
        out.append(scores)
    return out


def _skywork_reference(directory, items):
    """Skywork's prepare_input: bos + question + "\\n", then each step's ids and the "\\n" id;
    sigmoid(v_head) at the flagged ends. The paper's code turns inner newlines into spaces."""
    tok = AutoTokenizer.from_pretrained(directory)
    backbone = Qwen2Model.from_pretrained(directory, dtype=torch.float32)
    weights = load_file(directory / "model.safetensors")
    w, b = weights["v_head.summary.weight"], weights["v_head.summary.bias"]
    step_token_id = tok.encode("\n")[-1]
    out = []
    for question, steps in items:
        response = "\n".join(s.replace("\n", " ").strip() for s in steps)
        ids = tok.encode(tok.bos_token + question + "\n")
        flags = [0] * len(ids)
        for step in response.split("\n"):
            step_ids = tok.encode(step) + [step_token_id]
            ids += step_ids
            flags += [0] * (len(step_ids) - 1) + [1]
        with torch.no_grad():
            hidden = backbone(torch.tensor([ids])).last_hidden_state[0]
        values = torch.sigmoid(hidden @ w.T + b)[:, 0]
        out.append(values[torch.tensor(flags) == 1].tolist())
    return out


def _qwen_reference(directory, items):
    """Qwen2.5-Math-PRM card: chat template, steps joined and ended by <extra_0>, softmax of the
    2-class head at the <extra_0> positions, class 1."""
    tok = AutoTokenizer.from_pretrained(directory)
    backbone = Qwen2Model.from_pretrained(directory, dtype=torch.float32)
    weights = load_file(directory / "model.safetensors")
    tag = tok.convert_tokens_to_ids("<extra_0>")
    out = []
    for question, steps in items:
        messages = [
            {"role": "system", "content": QWEN_SYSTEM},
            {"role": "user", "content": question},
            {"role": "assistant", "content": "<extra_0>".join(s.strip() for s in steps) + "<extra_0>"},
        ]
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        ids = tok.encode(text, return_tensors="pt")
        with torch.no_grad():
            hidden = backbone(ids).last_hidden_state[0]
        inner = torch.relu(hidden @ weights["score.0.weight"].T + weights["score.0.bias"])
        logits = inner @ weights["score.2.weight"].T + weights["score.2.bias"]
        probs = logits.softmax(dim=-1)[:, 1]
        out.append(probs[ids[0] == tag].tolist())
    return out


REFERENCES = {
    "step_tag": _shepherd_reference,
    "chat_turn": _rlhflow_reference,
    "value_head": _skywork_reference,
    "token_classifier": _qwen_reference,
}


@functools.cache
def reference(family: str) -> tuple[tuple[float, ...], ...]:
    scores = REFERENCES[family](tiny_prm_dir(family), ITEMS)
    return tuple(tuple(s) for s in scores)


def assert_close(got: list[list[float]], want, tol: float = 1e-5) -> None:
    assert [len(g) for g in got] == [len(w) for w in want]
    for g_row, w_row in zip(got, want):
        for g, w in zip(g_row, w_row):
            assert abs(g - w) <= tol, (g_row, w_row)


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("batch_size", "padding_side"), [(1, "right"), (7, "right"), (7, "left")])
def test_scores_match_the_model_card_recipe(family, batch_size, padding_side):
    want = reference(family)
    flat = [s for row in want for s in row]
    assert [len(r) for r in want] == [len(steps) for _, steps in ITEMS]
    assert max(flat) - min(flat) > 0.2  # the tiny model's scores depend on the input
    prm = load_tiny_prm(family, batch_size=batch_size, padding_side=padding_side)
    assert isinstance(prm, ProcessRewardModel) and prm.num_parameters > 90_000
    assert_close(prm.score_batch(ITEMS), want)
    assert_close([prm.score(*ITEMS[1])], [want[1]])


@pytest.mark.parametrize("family", FAMILIES)
def test_too_long_inputs_drop_trailing_steps_as_nan(family):
    prm = load_tiny_prm(family, batch_size=4)
    question, steps = ITEMS[1]
    full = reference(family)[1]
    # The limit is the length of the input holding the first three steps.
    prefix_length = prm.count_tokens([(question, steps[:3])])[0]
    cut = load_tiny_prm(family, max_length=prefix_length)
    with pytest.warns(TruncationWarning, match=r"1 of 2 solutions exceed max_length=\d+ tokens; their last 3 steps"):
        got, short = cut.score_batch([(question, steps), ITEMS[0]])
    assert_close([got[:3]], [full[:3]])
    assert all(math.isnan(s) for s in got[3:]) and len(got) == 6
    assert_close([short], [reference(family)[0]])  # an input that fits is unaffected
    assert cut.count_tokens([(question, steps)]) == [prefix_length]

    # If not even the question and the first step fit, every step is NaN: the question is never cut.
    tiny = load_tiny_prm(family, max_length=prm.count_tokens([(question, steps[:1])])[0] - 1)
    with pytest.warns(TruncationWarning, match="1 of 1 solutions"):
        assert all(math.isnan(s) for s in tiny.score(question, steps))
    assert tiny.count_tokens([(question, steps)]) == [0]


def test_no_steps_give_no_scores_and_no_warning():
    prm = load_tiny_prm("token_classifier")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prm.score_batch([("What is 1+1?", []), ITEMS[0]])[0] == []
    assert prm.score_batch([]) == []


def test_a_tag_inside_a_step_does_not_shift_the_scores():
    """A step that contains the tag text itself still gets exactly one score, read at the tag
    the builder placed (matching ids, as the card does, would find one score too many)."""
    prm = load_tiny_prm("token_classifier")
    question, steps = ITEMS[0]
    with_tag = [steps[0].replace("so the", "so <extra_0> the")]
    assert len(prm.score(question, with_tag)) == 1


def test_count_tokens_is_the_built_input_length():
    prm = load_tiny_prm("value_head")
    tok = prm.tokenizer
    question, steps = ITEMS[0]
    expected = len(tok.encode(tok.bos_token + question + "\n")) + len(tok.encode(steps[0].strip())) + 1
    assert prm.count_tokens([(question, steps), ("q", [])]) == [expected, 0]


def _sentencepiece_style_tokenizer(text: str):
    """A Mistral-like tokenizer: Metaspace words, BOS added, "▁+"/"▁-" merged, "ки" one piece
    but "▁ки" not (so encoding "ки" alone gives ["▁", "ки"])."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for char in sorted(set(text.replace(" ", "")) | {"\u2581", "+", "-"}):
        vocab.setdefault(char, len(vocab))
    merges = [("\u2581", "+"), ("\u2581", "-"), ("к", "и")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def test_sentencepiece_tokens_resolve_as_the_math_shepherd_card_does():
    from prm_backends import load_spec
    from prm_backends.step_tag import StepTagFormat

    question, steps = "What is 1+1?", ["We add: 1 + 1 = 2.\n\n", "So 2 - 0 = 2, the answer.\n\n"]
    output = "\n".join(f"{s.strip()} ки" for s in steps)
    tok = _sentencepiece_style_tokenizer(f"{question} {output}")
    fmt = StepTagFormat(load_spec("math-shepherd-mistral-7b"), tok)
    assert [fmt.good_id, fmt.bad_id] == tok.encode("+ -")[1:]  # the card's "▁+", "▁-"
    assert fmt.tag_id == tok.encode("ки")[-1]
    built = fmt.build(question, steps)
    ids = tok.encode(f"{question} {output}")
    assert built.input_ids == ids
    assert built.score_positions == [i for i, t in enumerate(ids) if t == fmt.tag_id]
