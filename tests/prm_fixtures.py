"""Tiny local checkpoints of the four PRM families, in the real checkpoints' formats.

Each has a tokenizer with the family's special tokens, random weights saved under the real
weight names (``model.*`` + ``v_head.summary.*`` for the value head, ``model.*`` +
``score.0.*``/``score.2.*`` for the token classifier) and the real config fields
(``architectures``, ``model_type``). They are written without ``prm_backends``' classes, so
loading them through ``load_prm`` tests the real loading code.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tiny_models import byte_tokenizer, char_tokenizer

# The shipped spec each family's tiny checkpoint stands in for.
PAPER_NAMES = {
    "step_tag": "math-shepherd-mistral-7b",
    "chat_turn": "rlhflow-8b-deepseek-data",
    "value_head": "skywork-prm-1.5b",
    "token_classifier": "qwen2.5-math-prm-7b",
}
FAMILIES = tuple(PAPER_NAMES)

HIDDEN, LAYERS, HEADS = 64, 2, 2
# Larger than transformers' default init, so scores spread over (0, 1) and depend on the input.
INIT_STD = 0.3

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + (message['content'] | trim) + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

# Characters the char-level tokenizers know besides printable ASCII: LaTeX-free math symbols,
# accents, CJK, the Math-Shepherd tag's letters.
UNICODE_TEXT = "π≤≥√∞é—→∑∫×÷°你好ки½αβγθ·…’“”"


def _add_bos(tokenizer) -> None:
    """Make ``encode`` prepend the BOS token, as Llama/Mistral tokenizers do."""
    from tokenizers.processors import TemplateProcessing

    bos = tokenizer.bos_token
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.bos_token_id)]
    )


def _random_state(model) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, value in model.state_dict().items():
        if "norm" in key:
            state[key] = torch.ones_like(value)
        else:
            state[key] = torch.randn(value.shape, generator=generator) * INIT_STD
    return state


def _config_kwargs(tokenizer, max_positions: int) -> dict:
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=HIDDEN * 2,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=max_positions,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _save_causal_lm(out_dir: Path, tokenizer, config) -> Path:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(_random_state(model))
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_step_tag_checkpoint(out_dir: Path) -> Path:
    """Math-Shepherd format: a Mistral causal LM, a BOS-adding tokenizer with ``ки`` as one token."""
    from transformers import MistralConfig

    tokenizer = char_tokenizer(
        [UNICODE_TEXT],
        special_tokens=["<s>", "</s>"],
        extra_tokens=["ки"],
        eos_token="</s>",
        pad_token="</s>",
        bos_token="<s>",
        chat_template=None,
    )
    _add_bos(tokenizer)
    config = MistralConfig(**_config_kwargs(tokenizer, 32768), architectures=["MistralForCausalLM"])
    return _save_causal_lm(Path(out_dir), tokenizer, config)


def build_chat_turn_checkpoint(out_dir: Path) -> Path:
    """RLHFlow format: a Llama causal LM with a Llama-3-style chat template."""
    from transformers import LlamaConfig

    tokenizer = char_tokenizer(
        [UNICODE_TEXT],
        special_tokens=LLAMA3_SPECIALS,
        eos_token="<|eot_id|>",
        pad_token="<|end_of_text|>",
        bos_token="<|begin_of_text|>",
        chat_template=LLAMA3_TEMPLATE,
    )
    _add_bos(tokenizer)
    config = LlamaConfig(**_config_kwargs(tokenizer, 32768), architectures=["LlamaForCausalLM"])
    return _save_causal_lm(Path(out_dir), tokenizer, config)


def _save_head_checkpoint(out_dir: Path, tokenizer, architecture: str, head: dict[str, tuple[int, ...]]) -> Path:
    """A Qwen2 backbone under ``model.*`` plus random ``head`` tensors, saved as one safetensors file."""
    from transformers import Qwen2Config, Qwen2Model

    out_dir = Path(out_dir)
    config = Qwen2Config(**_config_kwargs(tokenizer, 4096), architectures=[architecture])
    backbone = Qwen2Model(config)
    state = {f"model.{k}": v for k, v in _random_state(backbone).items()}
    generator = torch.Generator().manual_seed(1)
    for key, shape in head.items():
        state[key] = torch.randn(shape, generator=generator) * INIT_STD
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, out_dir / "model.safetensors", metadata={"format": "pt"})
    config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_value_head_checkpoint(out_dir: Path) -> Path:
    """Skywork format: Qwen2 backbone, ``v_head.summary`` = Linear(hidden, 1), an unused ``lm_head``."""
    tokenizer = byte_tokenizer(bos_token="<|endoftext|>")
    head = {
        "v_head.summary.weight": (1, HIDDEN),
        "v_head.summary.bias": (1,),
        "lm_head.weight": (len(tokenizer), HIDDEN),
    }
    return _save_head_checkpoint(out_dir, tokenizer, "Qwen2ForPrmModel", head)


def build_token_classifier_checkpoint(out_dir: Path) -> Path:
    """Qwen2.5-Math-PRM format: Qwen2 backbone, ``score`` = Linear(h, h), ReLU, Linear(h, 2); ``<extra_0>``."""
    tokenizer = byte_tokenizer(special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>"])
    head = {
        "score.0.weight": (HIDDEN, HIDDEN),
        "score.0.bias": (HIDDEN,),
        "score.2.weight": (2, HIDDEN),
        "score.2.bias": (2,),
    }
    return _save_head_checkpoint(out_dir, tokenizer, "Qwen2ForProcessRewardModel", head)


def build_judge_checkpoint(out_dir: Path) -> Path:
    """A chat judge whose next-token logits are known in closed form (see ``judge_logits``):
    a one-layer Llama with zero query and key weights (so attention is uniform over the
    prefix), identity value and output projections, no MLP output, and a ChatML template
    with ``Yes`` and ``No`` as single tokens."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    tokenizer = char_tokenizer([UNICODE_TEXT], extra_tokens=["Yes", "No"])
    config = LlamaConfig(
        **{**_config_kwargs(tokenizer, 4096), "num_hidden_layers": 1}, architectures=["LlamaForCausalLM"]
    )
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    generator = torch.Generator().manual_seed(2)
    state = {}
    for key, value in model.state_dict().items():
        if "norm" in key:
            state[key] = torch.ones_like(value)
        elif key.endswith(("q_proj.weight", "k_proj.weight", "down_proj.weight")):
            state[key] = torch.zeros_like(value)
        elif key.endswith(("v_proj.weight", "o_proj.weight")):
            state[key] = torch.eye(HIDDEN)
        elif key == "lm_head.weight":  # modest logits, so verdicts spread over (0, 1)
            state[key] = torch.randn(value.shape, generator=generator) * 0.1
        else:
            state[key] = torch.randn(value.shape, generator=generator)
    model.load_state_dict(state)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return Path(out_dir)


def judge_logits(out_dir: Path, ids: list[int]):
    """The judge's next-token logits after ``ids``, computed with numpy from its weights:
    h = e_T + mean_t rms(e_t) (uniform attention over the prefix), logits = W rms(h)."""
    import json

    import numpy as np

    state = {k: v.double().numpy() for k, v in load_file(Path(out_dir) / "model.safetensors").items()}
    eps = json.loads((Path(out_dir) / "config.json").read_text())["rms_norm_eps"]
    embed = state["model.embed_tokens.weight"][ids]

    def rms(x):
        return x / np.sqrt((x**2).mean(-1, keepdims=True) + eps)

    hidden = embed[-1] + rms(embed).mean(0)
    return state["lm_head.weight"] @ rms(hidden)


BUILDERS = {
    "step_tag": build_step_tag_checkpoint,
    "chat_turn": build_chat_turn_checkpoint,
    "value_head": build_value_head_checkpoint,
    "token_classifier": build_token_classifier_checkpoint,
}


@functools.cache
def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="tiny-prms-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.cache
def tiny_prm_dir(family: str) -> Path:
    """The tiny checkpoint of ``family``, built once per test session."""
    return BUILDERS[family](_root() / family)


def without_weights(family: str, prefix: str) -> Path:
    """A copy of the family's tiny checkpoint without the weights whose names start with ``prefix``."""
    src = tiny_prm_dir(family)
    dst = _root() / f"{family}-without-{prefix.strip('.')}"
    if not dst.exists():
        shutil.copytree(src, dst)
        state = load_file(src / "model.safetensors")
        save_file(
            {k: v for k, v in state.items() if not k.startswith(prefix)},
            dst / "model.safetensors",
            metadata={"format": "pt"},
        )
    return dst


def load_tiny_prm(family: str, **overrides):
    """The family's paper PRM spec loaded on its tiny checkpoint (CPU, float32)."""
    from prm_backends import load_prm

    settings = {"model": str(tiny_prm_dir(family)), "device": "cpu", "dtype": "float32", **overrides}
    return load_prm(PAPER_NAMES[family], **settings)
