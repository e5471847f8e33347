"""The PRM spec: what one YAML file in ``yaml_configs/prm/`` says about a PRM.

A spec names the PRM's family (which fixes how inputs are built and scores are read), the
checkpoint, the runtime settings and the family's format fields. Every mistake is reported as
one :class:`PRMConfigError` that names the YAML file, the field and the fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from prm_backends.families import (
    Runtime,
    family_names,
    find_family,
    get_family,
    known_families_text,
    reserve_spec_fields,
)
from tts_eval.resources import is_package_reference, package_path
from tts_eval.scoring import Aggregation
from tts_eval.validation import describe_errors, unknown_key

F = TypeVar("F", bound=BaseModel)

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class PRMConfigError(ValueError):
    """A PRM spec (or the checkpoint it names) is unusable; the message says where and how to fix it."""


class PRMSpec(BaseModel):
    """One PRM, as described by its YAML file. See ``docs/prms.md`` for every field."""

    # The family's format fields are extra attributes, checked by the family's own model
    # (``_family_fields``); any other key is refused there.
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, description="Display name, used in results and tables")
    family: str = Field(
        description="A registered family: step_tag | chat_turn | value_head | token_classifier | generative | ..."
    )
    model: str = Field(
        min_length=1,
        description="Hub id, local checkpoint folder, or pkg://PACKAGE/PATH (a folder shipped in a package)",
    )
    revision: str | None = Field(default=None, description="Hub revision (branch, tag or commit)")
    runtime: Runtime = "hf"
    runtime_options: dict[str, Any] = Field(
        default_factory=dict, description="Options of the runtime (prefix_cache_tokens for hf, base_urls for http, ...)"
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N | mps")
    max_length: int = Field(default=4096, gt=0, description="Longest input in tokens; later steps score NaN")
    batch_size: int = Field(default=8, gt=0, description="Solutions per forward pass")
    padding_side: Literal["right", "left"] = "right"

    aggregation: Aggregation | None = Field(
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

    @model_validator(mode="before")
    @classmethod
    def _family_fields(cls, data: Any) -> Any:
        """Check the format fields against the family's own model; the validated values
        become attributes of the spec (``spec.step_tag``, ...)."""
        if not isinstance(data, dict) or "family" not in data:
            return data  # pydantic reports what is wrong
        name = data["family"]
        family = find_family(name) if isinstance(name, str) else None
        if family is None:
            raise ValueError(
                f"field 'family': {name!r} is not a PRM family; use one of {known_families_text()} "
                "(a new family registers itself in its module: see docs/prms.md)"
            )
        common = {k: v for k, v in data.items() if k in cls.model_fields}
        given = {k: v for k, v in data.items() if k not in cls.model_fields}
        reads = ", ".join(family.field_names()) or "no format fields"
        for field in given:
            if field in family.field_names():
                continue
            if any(field in other.field_names() for other in map(get_family, family_names())):
                raise ValueError(
                    f"field '{field}' is not used by family '{family.name}' (it reads {reads}); "
                    "remove it or fix the family"
                )
            raise ValueError(unknown_key(field, known=[*cls.model_fields, *family.field_names()]))
        for field in family.required_fields():
            if field not in given:
                raise ValueError(f"field '{field}' is required by family '{family.name}' (it reads {reads}); add it")
        try:
            fields = family.fields.model_validate(given)
        except ValidationError as exc:
            raise ValueError(describe_errors(exc, fields=family.fields.model_fields)) from None
        return {**common, **fields.model_dump()}

    @model_validator(mode="after")
    def _checks(self) -> PRMSpec:
        family = get_family(self.family)
        if self.runtime not in family.supported_runtimes:
            supported = " or ".join(family.supported_runtimes)
            raise ValueError(
                f"field 'runtime': runtime '{self.runtime}' cannot score family '{self.family}' exactly"
                f"{': ' + family.runtime_note if family.runtime_note else ''}; use runtime: {supported} for this PRM"
            )
        if not _DEVICE.match(self.device):
            raise ValueError(f"field 'device': {self.device!r} is not one of auto, cpu, cuda, cuda:N, mps")
        return self

    def fields_as(self, model: type[F]) -> F:
        """The family's format fields as its own (typed) model."""
        return model.model_validate(self.model_extra or {})

    @property
    def source(self) -> str:
        """Where the spec came from (the YAML path), for error messages."""
        return self._source

    def error(self, field: str, problem: str) -> PRMConfigError:
        """An error about ``field`` of this spec, naming its file."""
        return PRMConfigError(f"{self._source}: field '{field}': {problem}")


reserve_spec_fields(PRMSpec.model_fields)


def spec_from_dict(data: dict[str, Any], source: str) -> PRMSpec:
    """Validate ``data`` as a spec; ``source`` names where it came from in errors."""
    try:
        spec = PRMSpec.model_validate(data)
    except ValidationError as exc:
        problems = describe_errors(exc, fields=PRMSpec.model_fields)
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
        raise PRMConfigError(
            f"{path}: expected a mapping of fields (name: ..., family: ...), got {type(data).__name__}"
        )
    source = str(path)
    given = {k: v for k, v in overrides.items() if v is not None}
    if given:
        source += f" (with {', '.join(f'{k}={v!r}' for k, v in given.items())})"
    return spec_from_dict({**data, **given}, source)
