"""Checks that read no weights, run before any model loads: a local model folder exists,
a causal LM checkpoint has an output layer, a device exists on this machine.

Each raises ``ValueError`` with a message naming the value and the fix; callers prefix the
argument it came from.
"""

from __future__ import annotations

import json
from pathlib import Path

# Weight names of a causal LM's output layer (the suffix after any "model." prefix).
_HEAD_SUFFIXES = ("lm_head.weight", "embed_out.weight", "output.weight")


def looks_local(model: str) -> bool:
    """Whether a model string is written as a path rather than a Hub id (``owner/name``)."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or Path(model).expanduser().exists()


def check_model_folder(model: str) -> None:
    """A model written as a path must be an existing folder."""
    if not looks_local(model):
        return
    path = Path(model).expanduser()
    if not path.is_dir():
        what = "is a file, not a checkpoint folder" if path.exists() else "does not exist"
        raise ValueError(f"{path} {what}; give a checkpoint folder saved with save_pretrained, or a Hub id")


def check_output_layer(model: str) -> None:
    """A local causal LM checkpoint must hold its output layer (``lm_head``) or tie it to the
    input embeddings; without either, transformers fills it with random numbers and the
    policy writes noise while the run looks fine. Reads only the safetensors headers and the
    config; checkpoints without safetensors files are not checked."""
    if not looks_local(model):
        return
    folder = Path(model).expanduser()
    names = _weight_names(folder)
    if names is None or any(n.endswith(_HEAD_SUFFIXES) for n in names):
        return
    if _ties_embeddings(folder):
        return
    raise ValueError(
        f"{folder} has no output layer weights (no lm_head.weight in its safetensors files) and its config "
        "does not tie them to the input embeddings (tie_word_embeddings is false); the model would generate "
        "with a random output layer. Use a complete checkpoint (save it with save_pretrained from the loaded model)"
    )


def _weight_names(folder: Path) -> list[str] | None:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return list(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}))
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    from safetensors import safe_open

    names: list[str] = []
    for file in files:
        with safe_open(file, framework="pt") as f:  # reads the header only
            names += list(f.keys())
    return names


def _ties_embeddings(folder: Path) -> bool:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return bool(getattr(text, "tie_word_embeddings", getattr(config, "tie_word_embeddings", False)))


def check_device(device: str | None) -> None:
    """``cuda``, ``cuda:N`` and ``mps`` must exist on this machine (``auto``/``cpu``/None pass)."""
    if device is None or device in ("auto", "cpu"):
        return
    import torch

    kind, _, index = device.partition(":")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device={device!r}, but this machine has no CUDA device; use device=cpu")
        if index and (not index.isdigit() or int(index) >= count):
            raise ValueError(
                f"device={device!r}, but this machine has {count} CUDA device(s): "
                f"{', '.join(f'cuda:{i}' for i in range(count))}"
            )
    elif kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}, but MPS is not available here; use device=cpu")
