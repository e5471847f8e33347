"""Facts about models (parameters, pre-training tokens) and published results.

Two YAML files share the ``models`` schema: ``reference.yaml`` (shipped: the paper's
Tables 3-5) and a user's ``--params`` file for runs whose lm-eval model records no
parameter count (e.g. ``--model vllm`` or an API model). A policy is matched to an entry by
its name, an alias, or the last part of its path (``/models/Qwen2.5-7B-Instruct``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leaderboard.errors import LeaderboardError
from tts_eval.benchmarks import Benchmark, leaderboard_benchmarks
from tts_eval.validation import describe_errors


class ModelFacts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: float | None = Field(default=None, gt=0)
    training_tokens: float | None = Field(default=None, gt=0)
    pretraining_flops: float | None = Field(default=None, gt=0)
    aliases: list[str] = Field(default_factory=list)

    def pretraining(self) -> float | None:
        """Published pre-training FLOPs, else 6 x parameters x training tokens."""
        if self.pretraining_flops is not None:
            return self.pretraining_flops
        if self.parameters is not None and self.training_tokens is not None:
            return 6.0 * self.parameters * self.training_tokens
        return None


def _published() -> tuple[Benchmark, ...]:
    return tuple(b for b in leaderboard_benchmarks() if b.published)


class PublishedResult(BaseModel):
    """A published row; its accuracies (in percent) are fields named by the keys of the
    benchmarks declared ``published`` in :mod:`tts_eval.benchmarks` (``math500: 74.6``)."""

    model_config = ConfigDict(extra="allow")

    table: str
    policy: str
    strategy: str
    n: int | None = Field(default=None, ge=1)
    prm: str | None = None

    @model_validator(mode="after")
    def _accuracy_fields(self) -> PublishedResult:
        keys = [b.key for b in _published()]
        for name, value in (self.model_extra or {}).items():
            if name not in keys:
                raise ValueError(f"unknown field '{name}' (fields: table, policy, strategy, n, prm, {', '.join(keys)})")
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100
            ):
                raise ValueError(f"field '{name}': an accuracy in percent, from 0 to 100 (got {value!r})")
        return self

    def accuracies(self) -> dict[str, float]:
        """Accuracy per benchmark (by title) as a fraction."""
        extra = self.model_extra or {}
        return {str(b.title): extra[b.key] / 100.0 for b in _published() if extra.get(b.key) is not None}


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, ModelFacts] = Field(default_factory=dict)

    @field_validator("models", mode="before")
    @classmethod
    def _empty_entries(cls, value):
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value


class ReferenceFile(ModelsFile):
    source: str
    inference_flops: dict[str, float] = Field(default_factory=dict)
    results: list[PublishedResult] = Field(default_factory=list)


def shipped_reference_path() -> Path:
    return Path(str(resources.files("leaderboard") / "reference.yaml"))


def load_reference(path: Path | None = None) -> ReferenceFile:
    """The published figures (``path``, default: the shipped ``reference.yaml``)."""
    path = shipped_reference_path() if path is None else Path(path)
    reference = _load(path, ReferenceFile)
    unknown = sorted({r.policy for r in reference.results} - set(reference.models))
    if unknown:
        raise LeaderboardError(
            f"{path}: results name model(s) {', '.join(unknown)} that 'models' does not list; add them there"
        )
    return reference


def load_params(path: Path) -> ModelsFile:
    """A ``--params`` file: ``models: {name: {parameters: 7.6e9, training_tokens: 18e12}}``."""
    return _load(Path(path), ModelsFile)


def _load(path: Path, schema: type[BaseModel]):
    if not path.is_file():
        raise LeaderboardError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise LeaderboardError(f"{path}: not valid YAML ({err})") from None
    try:
        return schema.model_validate(data or {})
    except ValidationError as err:
        raise LeaderboardError(f"{path}: {describe_errors(err)}") from None


class ModelBook:
    """Looks up a model's facts: the user's params file first, then the reference."""

    def __init__(self, *files: ModelsFile) -> None:
        self._entries: list[tuple[str, ModelFacts]] = [(name, facts) for f in files for name, facts in f.models.items()]

    def find(self, policy: str) -> tuple[str, ModelFacts] | None:
        """(entry name, facts) for ``policy``, or None."""
        wanted = {_norm(policy), _norm(_last_part(policy))}
        for name, facts in self._entries:
            names = {_norm(name), *(_norm(a) for a in facts.aliases)}
            if wanted & names:
                return name, facts
        return None


def _last_part(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def _norm(name: str) -> str:
    return name.strip().lower()
