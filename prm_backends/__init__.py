"""Process reward models: one YAML spec per PRM, one module per family, runtimes that score.

    from prm_backends import load_prm
    prm = load_prm("qwen2.5-math-prm-7b", device="cuda")
    prm.score(question, steps)          # one probability per step

A name is the stem of a file in ``yaml_configs/prm/`` (see :func:`list_prms`); a path to any
YAML spec works too. Keyword overrides replace spec fields (``model="/local/dir"``,
``dtype="float32"``, ``batch_size=16`` ...). A spec's ``family`` is a name registered with
:func:`register_family` (the shipped families and any module that registers one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prm_backends.families import FamilyFields, PRMFamily, family_names, register_family
from prm_backends.inputs import TruncationWarning
from prm_backends.registry import list_prms, load_spec, prm_config_dir
from prm_backends.spec import PRMConfigError, PRMSpec
from tts_eval.protocols import ContinuationItem, ProcessRewardModel, Scored, ScoreItem


def load_prm(name_or_path: str | Path, **overrides: Any) -> ProcessRewardModel:
    """Load the PRM named ``name_or_path`` (a shipped name or a YAML path), with ``overrides``
    replacing spec fields. Every problem with the spec, the tokenizer's special tokens or the
    checkpoint's weights raises :class:`PRMConfigError` here, before anything is scored."""
    spec = load_spec(name_or_path, **overrides)
    if spec.runtime == "hf":
        from prm_backends import runtime_hf

        return runtime_hf.load(spec, spec.runtime_options)
    if spec.runtime == "vllm":
        from prm_backends import runtime_vllm

        return runtime_vllm.load(spec, spec.runtime_options)
    from prm_backends import runtime_http

    return runtime_http.load(spec, spec.runtime_options)


__all__ = [
    "ContinuationItem",
    "FamilyFields",
    "PRMConfigError",
    "PRMFamily",
    "PRMSpec",
    "ProcessRewardModel",
    "ScoreItem",
    "Scored",
    "TruncationWarning",
    "family_names",
    "list_prms",
    "load_prm",
    "load_spec",
    "prm_config_dir",
    "register_family",
]
