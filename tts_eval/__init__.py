"""tts-eval: test-time scaling of language models on competition math."""

from __future__ import annotations

import os
from collections.abc import Sequence
from os import PathLike
from typing import Any

from tts_eval.policies import Policy, load_policy
from tts_eval.protocols import ProcessRewardModel
from tts_eval.search import search as _search
from tts_eval.search import validate_settings
from tts_eval.types import Completion, Problem, SearchResult, Trajectory, Usage


def search(
    problems: Sequence[Problem],
    policy: Policy,
    prm: ProcessRewardModel | str | PathLike[str] | None = None,
    **options: Any,
) -> list[SearchResult]:
    """:func:`tts_eval.search.search` (the engine; see it for every option), where ``prm`` may
    also be a PRM name or YAML path, loaded with ``prm_backends.load_prm``. The engine itself
    takes loaded PRMs only, so it needs no PRM backend."""
    if isinstance(prm, (str, PathLike)):
        from prm_backends import load_prm

        prm = load_prm(os.fspath(prm))
    return _search(problems, policy, prm, **options)


__all__ = [
    "Completion",
    "Policy",
    "Problem",
    "SearchResult",
    "Trajectory",
    "Usage",
    "load_policy",
    "search",
    "validate_settings",
]
