"""The toy world's model shapes: Qwen2 policies (``Qwen2ForCausalLM``) and a Qwen2 PRM in the
Qwen2.5-Math-PRM layout (``Qwen2ForProcessRewardModel``: backbone ``model.*`` plus
``score = Linear(h, h) - ReLU - Linear(h, 2)``), saved so that transformers, vLLM and
``prm_backends.load_prm`` read them like the real checkpoints."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

PRM_ARCHITECTURE = "Qwen2ForProcessRewardModel"


@dataclass
class ModelShape:
    hidden_size: int
    num_layers: int
    num_heads: int  # head dim = hidden_size / num_heads must be >= 32 for vLLM's CPU backend
    intermediate_size: int
    init_std: float  # tiny models need a larger init than the usual 0.02 to train quickly


def qwen2_config(shape: ModelShape, tokenizer, **extra):
    from transformers import Qwen2Config

    if shape.hidden_size % shape.num_heads or shape.hidden_size // shape.num_heads < 32:
        raise ValueError(f"head dim of {shape} must be a whole number >= 32 (vLLM's CPU backend)")
    return Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_heads,
        max_position_embeddings=16384,  # RoPE: free; lets a search ask for 8192 new tokens
        initializer_range=shape.init_std,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        **{"tie_word_embeddings": True, **extra},
    )


def new_policy(shape: ModelShape, tokenizer, seed: int):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(qwen2_config(shape, tokenizer), dtype=torch.float32)


class ProcessRewardModel(nn.Module):
    """A Qwen2 backbone with the 2-class step head of Qwen2.5-Math-PRM, for training."""

    def __init__(self, config):
        from transformers import Qwen2Model

        super().__init__()
        self.config = config
        self.model = Qwen2Model(config)
        h = config.hidden_size
        self.score = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.score(hidden)

    def save(self, out_dir: Path, tokenizer) -> None:
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(out_dir)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, out_dir / "model.safetensors", metadata={"format": "pt"})
        tokenizer.save_pretrained(out_dir)


def prm_from_language_model(lm, seed: int, extra_layers: int = 0) -> ProcessRewardModel:
    """A PRM whose backbone starts as ``lm``'s (a ``Qwen2ForCausalLM``) and whose step head is
    new, as Qwen2.5-Math-PRM starts from a math language model.

    ``extra_layers`` new decoder layers go on top of the language model's, starting as the
    identity (their output projections are zero): the depth to compare what a step says with
    what the language model expects there, and then to carry that verdict to the step tag.
    """
    config = copy.deepcopy(lm.config)
    config.architectures = [PRM_ARCHITECTURE]
    config.num_labels = 2
    config.tie_word_embeddings = False
    config.num_hidden_layers = lm.config.num_hidden_layers + extra_layers
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = [config.layer_types[0]] * config.num_hidden_layers
    torch.manual_seed(seed)
    prm = ProcessRewardModel(config)
    missing, unexpected = prm.model.load_state_dict(lm.model.state_dict(), strict=False)
    fresh = {f"layers.{i}." for i in range(lm.config.num_hidden_layers, config.num_hidden_layers)}
    if unexpected or any(not any(k.startswith(f) for f in fresh) for k in missing):
        raise RuntimeError(f"backbone mismatch: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        for layer in prm.model.layers[lm.config.num_hidden_layers :]:
            layer.get_parameter("self_attn.o_proj.weight").zero_()
            layer.get_parameter("mlp.down_proj.weight").zero_()
    return prm


def write_training_record(out_dir: Path, record: dict) -> None:
    with open(Path(out_dir) / "training.json", "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o))
        f.write("\n")


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
