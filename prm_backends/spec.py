"""The PRM spec: what one YAML file in ``yaml_configs/prm/`` says about a PRM.

A spec names the PRM's family (which fixes how inputs are built and scores are read), the
checkpoint, the runtime settings and the family's format fields. Every mistake is reported as
one :class:`PRMConfigError` that names the YAML file, the field and the fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from tts_eval.resources import is_package_reference, package_path

FAMILIES = ("step_tag", "chat_turn", "value_head", "token_classifier", "generative")
Family = Literal["step_tag", "chat_turn", "value_head", "token_classifier", "generative"]

# The format fields each family reads; any other format field in its YAML is a mistake.
FORMAT_FIELDS = (
    "step_tag", "good_token", "bad_token", "system_prompt", "separator",
    "judge_prompt", "response_prefix", "verdict_prompt", "think_tokens",
)
FAMILY_FIELDS: dict[str, tuple[str, ...]] = {
    "step_tag": ("step_tag", "good_token", "bad_token", "separator"),
    "chat_turn": ("good_token", "bad_token"),
    "value_head": ("step_tag",),
    "token_classifier": ("step_tag", "system_prompt"),
    "generative": ("judge_prompt", "good_token", "bad_token"),
}
# Format fields a family reads when given and does without otherwise.
FAMILY_OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "generative": ("system_prompt", "response_prefix", "verdict_prompt", "think_tokens"),
}
JUDGE_PLACEHOLDERS = ("question", "previous_steps", "step", "step_number")

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class PRMConfigError(ValueError):
    """A PRM spec (or the checkpoint it names) is unusable; the message says where and how to fix it."""


class PRMSpec(BaseModel):
    """One PRM, as described by its YAML file. See ``docs/prms.md`` for every field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Display name, used in results and tables")
    family: Family = Field(description="step_tag | chat_turn | value_head | token_classifier | generative")
    model: str = Field(
        min_length=1, description="Hub id, local checkpoint folder, or pkg://PACKAGE/PATH (a folder shipped in a package)"
    )
    revision: str | None = Field(default=None, description="Hub revision (branch, tag or commit)")
    runtime: Literal["hf", "vllm", "http"] = "hf"
    runtime_options: dict[str, Any] = Field(
        default_factory=dict, description="Options of the runtime (prefix_cache_tokens for hf, base_urls for http, ...)"
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N | mps")
    max_length: int = Field(default=4096, gt=0, description="Longest input in tokens; later steps score NaN")
    batch_size: int = Field(default=8, gt=0, description="Solutions per forward pass")
    padding_side: Literal["right", "left"] = "right"

    # Family format fields (see FAMILY_FIELDS for which family reads which).
    step_tag: str | None = Field(default=None, description="Token that marks a step's end")
    good_token: str | None = Field(default=None, description="Token whose probability is the step score")
    bad_token: str | None = Field(default=None, description="The competing token")
    system_prompt: str | None = Field(default=None, description="System message of the chat template")
    separator: str | None = Field(default=None, description="Text between one tagged step and the next")
    judge_prompt: str | None = Field(
        default=None,
        description="generative: the user message asking the judge about one step; placeholders {question}, "
        "{previous_steps}, {step}, {step_number}",
    )
    response_prefix: str | None = Field(default=None, description="generative: text the judge's answer starts with")
    verdict_prompt: str | None = Field(
        default=None, description="generative: text after the answer's start (and any thinking) that the verdict token follows"
    )
    think_tokens: int | None = Field(
        default=None, ge=0, description="generative: tokens the judge may write (greedy) before the verdict; default 0"
    )

    aggregation: Literal["min", "last", "avg", "prod"] | None = Field(
        default=None,
        description="How a search reads this PRM when the run sets no aggregation (default: min); see docs/prms.md",
    )
    description: str = ""
    processbench_f1: float | None = Field(default=None, ge=0, le=100, description="ProcessBench average F1")

    _source: str = PrivateAttr(default="<PRMSpec>")

    @field_validator("model")
    @classmethod
    def _package_folder(cls, value: str) -> str:
        # Resolved once here, so every runtime sees a plain local folder.
        return str(package_path(value)) if is_package_reference(value) else value

    @model_validator(mode="after")
    def _family_fields(self) -> PRMSpec:
        required = FAMILY_FIELDS[self.family]
        used = required + FAMILY_OPTIONAL_FIELDS.get(self.family, ())
        for field in FORMAT_FIELDS:
            value = getattr(self, field)
            if field in required and value is None:
                raise ValueError(
                    f"field '{field}' is required by family '{self.family}' (it reads "
                    f"{', '.join(used)}); add it"
                )
            if field not in used and value is not None:
                raise ValueError(
                    f"field '{field}' is not used by family '{self.family}' (it reads "
                    f"{', '.join(used)}); remove it or fix the family"
                )
        if self.judge_prompt is not None and "{step}" not in self.judge_prompt:
            raise ValueError(
                "field 'judge_prompt' has no {step} placeholder, so the judge would never see the step it judges; "
                f"add it (placeholders: {', '.join('{' + p + '}' for p in JUDGE_PLACEHOLDERS)})"
            )
        for field in ("step_tag", "good_token", "bad_token"):
            if getattr(self, field) == "":
                raise ValueError(f"field '{field}' is empty; give the token's text")
        if self.good_token is not None and self.good_token == self.bad_token:
            raise ValueError("fields 'good_token' and 'bad_token' are the same token; they must differ")
        if not _DEVICE.match(self.device):
            raise ValueError(f"field 'device': {self.device!r} is not one of auto, cpu, cuda, cuda:N, mps")
        return self

    @property
    def source(self) -> str:
        """Where the spec came from (the YAML path), for error messages."""
        return self._source

    def error(self, field: str, problem: str) -> PRMConfigError:
        """An error about ``field`` of this spec, naming its file."""
        return PRMConfigError(f"{self._source}: field '{field}': {problem}")


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"field '{loc}' is missing; add it"
    if kind == "extra_forbidden":
        known = ", ".join(PRMSpec.model_fields)
        return f"unknown field '{loc}'; remove it or fix its spelling (known fields: {known})"
    message = error["msg"].removeprefix("Value error, ")
    if not loc:
        return message
    return f"field '{loc}': {message} (got {error.get('input')!r})"


def spec_from_dict(data: dict[str, Any], source: str) -> PRMSpec:
    """Validate ``data`` as a spec; ``source`` names where it came from in errors."""
    try:
        spec = PRMSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise PRMConfigError(f"{source}: {problems}. See docs/prms.md for the fields.") from None
    spec._source = source
    return spec


def read_spec(path: Path, **overrides: Any) -> PRMSpec:
    """Read and validate the YAML file at ``path``; ``overrides`` replace its fields."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PRMConfigError(f"{path}: cannot read the file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise PRMConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise PRMConfigError(f"{path}: expected a mapping of fields (name: ..., family: ...), got {type(data).__name__}")
    source = str(path)
    given = {k: v for k, v in overrides.items() if v is not None}
    if given:
        source += f" (with {', '.join(f'{k}={v!r}' for k, v in given.items())})"
    return spec_from_dict({**data, **given}, source)
