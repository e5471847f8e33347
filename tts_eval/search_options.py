"""Every setting of a search, declared once: its type, default, bounds and help text.

``tts_eval.search`` takes its defaults from here, the ``tts`` lm-eval model's settings
extend :class:`SearchOptions`, and the ``tts-eval search`` / ``sweep`` commands and the sweep
take their defaults and help texts from it. Rules between settings (n a multiple of
beam_size, a PRM for a PRM strategy, ...) are checked by ``tts_eval.search.validate_settings``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tts_eval.scoring import AGGREGATIONS
from tts_eval.voting import VOTINGS

DEFAULT_TEMPERATURE = 0.7  # of every strategy but a greedy one (CoT: 0)
DEFAULT_MAX_TOKENS = 8192
DEFAULT_MAX_STEP_TOKENS = 2048
DEFAULT_MAX_STEPS = 40
DEFAULT_PF_TEMPERATURE = 1.0
DEFAULT_RESAMPLING = "systematic"


class SearchOptions(BaseModel):
    """The settings of one search, as a user gives them (None: the default the search
    resolves, e.g. a temperature by strategy)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: str = Field(description="A registered strategy (tts_eval.strategies)")
    n: int = Field(default=1, ge=1, description="Budget N")
    beam_size: int = Field(default=4, ge=1, description="Beam size M (beam_search, dvts)")
    aggregation: str | None = Field(
        default=None,
        description=f"{' | '.join(AGGREGATIONS)}; default: the PRM spec's recommended aggregation, else min",
    )
    voting: str | None = Field(
        default=None,
        description=f"{' | '.join(VOTINGS)}; default: prm_vote for a strategy with a PRM, else majority",
    )
    temperature: float | None = Field(default=None, ge=0, description="Default: 0 for cot, 0.7 otherwise")
    top_p: float = Field(default=1.0, gt=0, le=1, description="Nucleus sampling's top_p")
    max_tokens: int | None = Field(
        default=None, ge=1, description=f"Tokens per solution (default {DEFAULT_MAX_TOKENS})"
    )
    max_step_tokens: int = Field(default=DEFAULT_MAX_STEP_TOKENS, ge=1, description="Tokens per step")
    max_steps: int = Field(default=DEFAULT_MAX_STEPS, ge=1, description="Steps per solution of a step-wise search")
    seed: int = Field(default=0, description="Sampling seed; each problem's seed derives from it and its prompt")
    pf_temperature: float | None = Field(
        default=None,
        description=f"particle_filtering: temperature of the weights softmax(logit(score) / T) (default {DEFAULT_PF_TEMPERATURE:g})",
    )
    resampling: str | None = Field(
        default=None, description=f"particle_filtering: {DEFAULT_RESAMPLING} (default) | multinomial"
    )
    table: str | None = Field(
        default=None,
        description="compute_optimal: policy table, a name in yaml_configs/compute_optimal/ or a YAML path (default: paper)",
    )


def default(name: str) -> Any:
    """The declared default of a search setting."""
    return SearchOptions.model_fields[name].default


def help_text(name: str) -> str:
    """The declared help text of a search setting (for a CLI option)."""
    return SearchOptions.model_fields[name].description or ""
