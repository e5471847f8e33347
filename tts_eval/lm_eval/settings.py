"""The ``tts`` model's ``--model_args``: parsed, checked and resolved before any model loads.

Everything that can be wrong with the arguments (unknown strategy or PRM, ``n`` not a
multiple of ``beam_size``, a missing policy, a PRM given to a strategy without one, a
misspelt option) is reported as one :class:`ModelArgsError` naming the argument and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator

from tts_eval.policies import BACKENDS, get_backend, resolve_backend
from tts_eval.search_options import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_PF_TEMPERATURE,
    DEFAULT_RESAMPLING,
    DEFAULT_TEMPERATURE,
    SearchOptions,
)
from tts_eval.strategies import STRATEGIES, get_strategy
from tts_eval.strategies.names import COT
from tts_eval.validation import describe_errors

# Settings that change how fast a run goes, never what it computes: left out of the resume
# checkpoint's fingerprint, so a run may be resumed with other values.
PERFORMANCE_ONLY = ("device", "batch_size", "prm_batch_size", "chunk_size", "checkpoint")
# How a served model is reached, not what it computes: a run resumes whatever these are
# (a dead server restarted elsewhere, another key, a longer timeout). Also with "prm_".
CONNECTION_ONLY = ("base_urls", "api_key", "timeout", "connect_timeout", "max_retries", "backoff", "max_concurrency")


class ModelArgsError(ValueError):
    """The ``tts`` model's model_args are unusable; the message names the argument and the fix."""


class TTSModelArgs(SearchOptions):
    """Every ``--model_args`` key of the ``tts`` model (see docs/lm-eval.md for the table):
    the search settings of :class:`~tts_eval.search_options.SearchOptions` and the model's own.

    Keys not declared here are, with a ``prm_`` prefix, fields of the PRM spec (e.g.
    ``prm_max_length``, ``prm_device``), checked by the spec; without it, options of the
    policy backend (e.g. ``revision``, ``trust_remote_code``), checked against that backend.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    policy: str = Field(min_length=1, description="Policy model: Hub id, local folder, or served model name")
    strategy: str = Field(default=COT, description=" | ".join(STRATEGIES))  # a run without a search is CoT
    prm: str | None = Field(default=None, description="PRM name (a yaml_configs/prm file stem) or YAML path")
    prm_model: str | None = Field(default=None, description="Replace the PRM spec's model (e.g. a local folder)")
    prm_backend: Literal["hf", "vllm", "http"] | None = Field(
        default=None, description="Replace the PRM spec's runtime"
    )
    backend: str = Field(
        default="auto",
        validate_default=True,
        description=f"Policy backend ({' | '.join(BACKENDS)}); auto (default): vllm on CUDA when installed, else hf",
    )
    system_prompt: str | None = Field(default=None, description="System prompt of the policy's chat template")
    device: str | None = Field(
        default=None,
        description="Device of policy and PRM (e.g. cpu, cuda, cuda:1); the PRM's only with backend=openai",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = Field(
        default=None, description="Weights dtype of policy and PRM; the PRM's only with backend=openai"
    )
    batch_size: int | None = Field(default=None, ge=1, description="Policy backend batch size")
    prm_batch_size: int | None = Field(default=None, ge=1, description="PRM batch size (solutions per pass)")
    chunk_size: int = Field(default=64, ge=1, description="Problems per search call (and per checkpoint write)")
    checkpoint: str | bool | None = Field(
        default=None, description="Resume checkpoint folder; default: next to the results; false: none"
    )

    @field_validator("backend", mode="before")
    @classmethod
    def _resolve_auto(cls, value: Any) -> Any:
        # Resolved once, here, so the results and the resume fingerprint name the real backend.
        backend = resolve_backend(value) if value == "auto" else value
        get_backend(backend)  # an unknown name: the error lists the registered backends
        return backend

    # -- derived views -------------------------------------------------------------------

    @property
    def policy_options(self) -> dict[str, Any]:
        """Keyword options for ``load_policy`` (declared backend options plus any extras).
        ``device`` and ``dtype`` are shared with the PRM: a backend without them (a served
        policy) leaves them to the PRM."""
        declared = {"batch_size": self.batch_size, "system_prompt": self.system_prompt}
        if not get_backend(self.backend).served:
            declared |= {"device": self.device, "dtype": self.dtype}
        policy_extras = {k: v for k, v in (self.model_extra or {}).items() if not k.startswith("prm_")}
        return {**{k: v for k, v in declared.items() if v is not None}, **policy_extras}

    @property
    def prm_overrides(self) -> dict[str, Any]:
        """Spec overrides for ``load_prm``."""
        overrides = {
            "model": self.prm_model,
            "runtime": self.prm_backend,
            "device": self.device,
            "dtype": self.dtype,
            "batch_size": self.prm_batch_size,
        }
        prm_extras = {k.removeprefix("prm_"): v for k, v in (self.model_extra or {}).items() if k.startswith("prm_")}
        return {**{k: v for k, v in overrides.items() if v is not None}, **prm_extras}

    def search_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``tts_eval.search`` (stop and max_tokens are set per request)."""
        return {
            "strategy": self.strategy,
            "n": self.n,
            "beam_size": self.beam_size,
            **dict(zip(("voting", "aggregation"), self.resolved_vote())),
            "temperature": self.resolved_temperature(),
            "top_p": self.top_p,
            "max_step_tokens": self.max_step_tokens,
            "max_steps": self.max_steps,
            "seed": self.seed,
            "progress": False,  # the model shows one bar over all its problems, not one per call
            **({"table": self.table} if "table" in get_strategy(self.strategy).options else {}),
            **{k: getattr(self, k) for k in ("pf_temperature", "resampling") if getattr(self, k) is not None},
        }

    def resolved_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if STRATEGIES[self.strategy].greedy else DEFAULT_TEMPERATURE

    def resolved_vote(self) -> tuple[str | None, str | None]:
        """(voting, aggregation): the given ones, else the defaults of ``tts_eval.search``
        (the PRM's recommended aggregation read from its spec, without loading it); None only
        for an unknown strategy, which validation rejects."""
        from tts_eval.search import vote_settings_for

        recommended = None
        if self.prm is not None and self.aggregation is None:
            from prm_backends.registry import load_spec

            recommended = load_spec(self.prm, **self.prm_overrides).aggregation
        return vote_settings_for(
            self.strategy, voting=self.voting, aggregation=self.aggregation, recommended=recommended
        )

    def resolved_max_tokens(self) -> int:
        if self.max_tokens is not None:
            return self.max_tokens
        return DEFAULT_MAX_TOKENS

    def resolved(self) -> dict[str, Any]:
        """All settings with defaults filled in, JSON-ready (recorded in the results)."""
        from tts_eval.lm_eval.secrets import REDACTED, is_secret

        data = self.model_dump(mode="json")
        data = {k: REDACTED if is_secret(k) and v not in (None, "") else v for k, v in data.items()}
        data["temperature"] = self.resolved_temperature()
        data["max_tokens"] = self.resolved_max_tokens()
        data["voting"], data["aggregation"] = self.resolved_vote()
        defaults = {"pf_temperature": DEFAULT_PF_TEMPERATURE, "resampling": DEFAULT_RESAMPLING}
        for key, value in defaults.items():
            if key in get_strategy(self.strategy).options:
                data[key] = value if data[key] is None else data[key]
        return data

    def result_settings(self) -> dict[str, Any]:
        """The settings that decide results: the resume checkpoint's fingerprint."""
        connection = {*CONNECTION_ONLY, *(f"prm_{k}" for k in CONNECTION_ONLY)}
        settings = {k: v for k, v in self.resolved().items() if k not in PERFORMANCE_ONLY and k not in connection}
        if "table" in get_strategy(self.strategy).options:  # an edited table file changes results too
            from tts_eval.compute_optimal.table import load_table

            settings["table_content"] = load_table(self.table).model_dump(mode="json")
        return settings


def parse_model_args(model_args: dict[str, Any]) -> TTSModelArgs:
    """Validate ``model_args`` completely, loading no model; raise :class:`ModelArgsError`."""
    if model_args.get("policy") in (None, ""):
        raise ModelArgsError(
            "model_args: 'policy' is missing; give the policy model, e.g. "
            "--model_args policy=Qwen/Qwen2.5-1.5B-Instruct (a Hub id or a local checkpoint folder)"
        )
    from tts_eval.lm_eval.secrets import remember_secrets

    remember_secrets(model_args)  # before anything can echo them into a file
    try:
        args = TTSModelArgs.model_validate(model_args)
    except ValidationError as exc:
        raise ModelArgsError("model_args: " + describe_errors(exc, label="")) from None
    _check_package_policy(args.policy)
    _check_prm(args)
    _check_search_settings(args)
    _check_table(args)
    _check_policy_options(args)
    _check_policy_files(args)
    return args


def _check_search_settings(args: TTSModelArgs) -> None:
    from tts_eval.search import validate_settings

    voting, aggregation = args.resolved_vote()
    try:
        validate_settings(
            args.strategy,
            n=args.n,
            beam_size=args.beam_size,
            aggregation=aggregation,
            voting=voting,
            has_prm=args.prm is not None,
            pf_temperature=args.pf_temperature,
            resampling=args.resampling,
        )
    except ValueError as err:
        raise ModelArgsError(f"model_args: {err}") from None


def _check_table(args: TTSModelArgs) -> None:
    if "table" not in get_strategy(args.strategy).options:
        if args.table is not None:
            users = " or strategy=".join(name for name, s in STRATEGIES.items() if "table" in s.options)
            raise ModelArgsError(f"model_args 'table={args.table}' is only used by strategy={users}; drop it")
        return
    from tts_eval.compute_optimal.table import TableError, load_table

    try:
        load_table(args.table)
    except TableError as err:
        raise ModelArgsError(f"model_args 'table={args.table}': {err}") from None


def _check_prm(args: TTSModelArgs) -> None:
    if args.prm is None:
        given = [k for k in ("prm_model", "prm_backend", "prm_batch_size") if getattr(args, k) is not None]
        given += [k for k in (args.model_extra or {}) if k.startswith("prm_")]
        if given:
            raise ModelArgsError(
                f"model_args: {', '.join(map(repr, given))} set but no 'prm' is given; add prm=<name or YAML path> or drop them"
            )
        return
    from prm_backends.registry import load_spec
    from tts_eval.preflight import check_device, check_model_folder

    try:
        spec = load_spec(args.prm, **args.prm_overrides)
    except ValueError as err:  # PRMConfigError: names the file, the field and the fix
        raise ModelArgsError(f"model_args 'prm={args.prm}': {err}") from None
    for field, check in (("model", check_model_folder), ("device", check_device)):
        try:
            check(getattr(spec, field))
        except ValueError as err:
            raise ModelArgsError(f"model_args 'prm={args.prm}': {spec.error(field, str(err))}") from None


def _check_policy_files(args: TTSModelArgs) -> None:
    """The policy folder, its output layer and the device, before any weights load."""
    from tts_eval.preflight import check_device, check_model_folder, check_output_layer

    if get_backend(args.backend).served:
        return  # a served model's name; its server holds the weights
    policy = str(args.policy)
    if policy.startswith("pkg://"):
        from tts_eval.resources import package_path

        policy = str(package_path(policy))
    try:
        check_model_folder(policy)
        check_output_layer(policy)
    except ValueError as err:
        raise ModelArgsError(f"model_args 'policy={args.policy}': {err}") from None
    try:
        check_device(args.device)
    except ValueError as err:
        raise ModelArgsError(f"model_args: {err}") from None


def _check_package_policy(policy: str) -> None:
    from tts_eval.resources import PackagePathError, is_package_reference, package_path

    if is_package_reference(policy):
        try:
            package_path(policy)
        except PackagePathError as err:
            raise ModelArgsError(f"model_args 'policy={policy}': {err}") from None


def _check_policy_options(args: TTSModelArgs) -> None:
    from tts_eval.policies import backend_class, backend_options

    extras = sorted(args.model_extra or {})
    if not extras and args.backend == "hf":
        return  # the declared options are all hf options
    try:
        valid = backend_options(backend_class(args.backend))
    except ImportError as err:
        raise ModelArgsError(
            f"model_args 'backend={args.backend}': the backend cannot be imported ({err}); "
            f"install its extra, e.g. pip install 'tts-eval-harness[{args.backend}]'"
        ) from None
    if valid is None:
        return
    unknown = sorted(set(args.policy_options) - set(valid))
    if unknown:
        known = ", ".join(sorted(TTSModelArgs.model_fields))
        raise ModelArgsError(
            f"model_args: unknown key(s) {', '.join(map(repr, unknown))}: neither tts model settings "
            f"({known}) nor options of policy backend {args.backend!r} ({', '.join(valid)})"
        )


def checkpoint_folder(args: TTSModelArgs, output_path: str | None) -> Path | None:
    """Where the resume checkpoint lives: ``checkpoint=`` if given, else
    ``<output_path>/<policy folder>/tts_checkpoints`` (the folder lm-eval writes the results
    to), else nowhere (``checkpoint=false``, or no output path)."""
    if args.checkpoint is False:
        return None
    if isinstance(args.checkpoint, str):
        folder = Path(args.checkpoint).expanduser()
        if folder.exists() and not folder.is_dir():
            raise ModelArgsError(
                f"model_args 'checkpoint={args.checkpoint}' is a file; give a folder (or checkpoint=false)"
            )
        return folder
    if args.checkpoint is True and not output_path:
        raise ModelArgsError("model_args 'checkpoint=true' needs an --output_path (or give checkpoint=<folder>)")
    if not output_path:
        return None
    _check_output_path(Path(output_path).expanduser())
    from lm_eval.utils import sanitize_model_name

    base = Path(output_path).expanduser()
    if base.suffix == ".json":  # lm-eval then writes results next to that file
        return base.parent / "tts_checkpoints"
    return base / sanitize_model_name(args.policy) / "tts_checkpoints"


def _check_output_path(path: Path) -> None:
    """lm-eval writes into ``--output_path`` (a folder) or next to it when it ends in .json."""
    if path.suffix != ".json" and path.exists() and not path.is_dir():
        raise ModelArgsError(
            f"--output_path {path} is a file; give a folder for the results (or a path ending in .json)"
        )
