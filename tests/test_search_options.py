"""Search settings are declared once (tts_eval.search_options): every interface that takes
them has the declared defaults, except the few it sets on purpose."""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields

from tts_eval.search_options import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_PF_TEMPERATURE,
    DEFAULT_RESAMPLING,
    DEFAULT_TEMPERATURE,
    SearchOptions,
)

DECLARED = {name: info.default for name, info in SearchOptions.model_fields.items() if not info.is_required()}
# What an interface resolves where the model leaves None (the search resolves it by strategy).
RESOLVED = {
    "max_tokens": DEFAULT_MAX_TOKENS,
    "temperature": DEFAULT_TEMPERATURE,
    "pf_temperature": DEFAULT_PF_TEMPERATURE,
    "resampling": DEFAULT_RESAMPLING,
}


def _defaults(function) -> dict[str, object]:
    return {name: p.default for name, p in inspect.signature(function).parameters.items() if p.default is not p.empty}


def _differences(defaults: dict[str, object]) -> dict[str, tuple[object, object]]:
    """Settings whose default is neither the declared one nor, where that is None, the resolved one."""
    return {
        name: (value, DECLARED[name])
        for name, value in defaults.items()
        if name in DECLARED and value != DECLARED[name] and value != RESOLVED.get(name, object())
    }


def test_every_interface_takes_the_declared_defaults():
    from tts_eval.cli.search_cmd import search as search_command
    from tts_eval.cli.sweep_cmd import sweep as sweep_command
    from tts_eval.lm_eval.settings import TTSModelArgs
    from tts_eval.planning.sweep import SweepSettings
    from tts_eval.search import search

    assert _differences(_defaults(search)) == {"seed": (None, 0)}  # a library call without a seed draws one
    assert _differences(_defaults(search_command)) == {"n": (4, 1)}  # the command samples 4 by default
    assert _differences(_defaults(sweep_command)) == {}
    sweep_defaults = {f.name: f.default for f in fields(SweepSettings) if f.default is not MISSING}
    assert _differences(sweep_defaults) == {}
    model_args = {name: info.default for name, info in TTSModelArgs.model_fields.items()}
    assert {k: model_args[k] for k in DECLARED} == DECLARED
    # Help texts come from the declaration too.
    assert TTSModelArgs.model_fields["max_steps"].description == SearchOptions.model_fields["max_steps"].description
