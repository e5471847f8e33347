"""The PRM family registry: one module per family declares it, the spec and the runtimes ask here.

A family is what a YAML spec's ``family:`` names. Its module declares a :class:`PRMFamily`
and registers it with :func:`register_family`:

* ``fields``: a pydantic model of the format fields the family reads (required ones without
  a default); a spec must give exactly those (see :mod:`prm_backends.spec`);
* ``format``: the class that builds a solution's input and reads the scores from the head
  outputs (``build``, ``read_out``, ``prefix_stable``: see :class:`prm_backends.inputs.InputFormat`),
  plus what its head kind needs (:data:`HEAD_FORMATS`: ``good_id``/``bad_id``, ``tag_id``) and,
  for a family that ``writes_tokens``, ``think_tokens``/``with_thoughts``;
* ``head``: what the model computes at each score position, which fixes how the vLLM and
  HTTP runtimes compute it (:data:`HEAD_RUNTIMES`);
* ``load_hf_model``: the transformers model (backbone and head) of a checkpoint;
* the runtimes it runs on (by default every runtime that computes its head).

The five shipped families live in the modules of :data:`BUILTIN_MODULES`, imported on the
first lookup; another module registers a family by calling :func:`register_family` when it is
imported (import it before loading a spec that names the family).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, model_validator

from prm_backends.inputs import ClassesFormat, InputFormat, NextTokenFormat, ThinkingFormat

if TYPE_CHECKING:
    from torch import nn

    from prm_backends.hf_loading import HFModelParts
    from prm_backends.spec import PRMSpec

Runtime = Literal["hf", "vllm", "http"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)

# What a family's model outputs at a score position:
# * next_token: the LM's next-token logits; the format has good_id and bad_id, and its read-out
#   compares those two tokens (vLLM and HTTP compute their log-probabilities);
# * classes: per-token class logits of a token-classification head (vLLM's pooling runner and
#   /pooling endpoint compute them for the architecture the family names); the format has
#   tag_id, the step tag a server's step pooling returns rows for;
# * value: one scalar per position from a head no vLLM model has (transformers only).
HeadKind = Literal["next_token", "classes", "value"]
HEAD_RUNTIMES: dict[str, tuple[str, ...]] = {
    "next_token": RUNTIMES,
    "classes": RUNTIMES,
    "value": ("hf",),
}
# What a head kind's format provides besides building inputs and reading scores out (checked
# when a runtime builds the format; FormatScorer's *_format methods narrow to it).
HEAD_FORMATS: dict[str, type] = {
    "next_token": NextTokenFormat,
    "classes": ClassesFormat,
    "value": InputFormat,
}

BUILTIN_MODULES = (
    "prm_backends.step_tag",
    "prm_backends.chat_turn",
    "prm_backends.value_head",
    "prm_backends.token_classifier",
    "prm_backends.generative",
)


class FamilyFields(BaseModel):
    """Base of a family's format fields. The rules here hold for every family that has the
    field: a special token is never empty, and the good and bad tokens differ."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _tokens(self) -> FamilyFields:
        for field in ("step_tag", "good_token", "bad_token"):
            if getattr(self, field, None) == "":
                raise ValueError(f"field '{field}' is empty; give the token's text")
        good = getattr(self, "good_token", None)
        if good is not None and good == getattr(self, "bad_token", None):
            raise ValueError("fields 'good_token' and 'bad_token' are the same token; they must differ")
        return self


@dataclass(frozen=True)
class PRMFamily:
    """One PRM family, as its module declares it (see the module docstring)."""

    name: str
    fields: type[FamilyFields]
    format: Callable[[PRMSpec, Any], InputFormat]  # format(spec, tokenizer), as HEAD_FORMATS[head] requires
    head: HeadKind
    load_hf_model: Callable[..., HFModelParts]  # load_hf_model(spec, device=...)
    runtimes: tuple[str, ...] | None = None  # None: every runtime that computes ``head``
    runtime_note: str = ""  # why a runtime is missing, for the error naming the ones it has
    # The model whose parameters count as the PRM's when the checkpoint is not loaded (vLLM,
    # HTTP, memory planning), built from the config on the meta device; None: the causal LM.
    parameter_model: Callable[[Any], nn.Module] | None = None
    served_architecture: str | None = None  # classes head: the architecture vLLM serves it as
    writes_tokens: bool = False  # the PRM may generate before it scores (a thinking judge)

    def format_kinds(self) -> tuple[type, ...]:
        """The protocols this family's format must follow: its head's and, for a family that
        writes tokens, :class:`~prm_backends.inputs.ThinkingFormat`."""
        return (HEAD_FORMATS[self.head],) + ((ThinkingFormat,) if self.writes_tokens else ())

    @property
    def supported_runtimes(self) -> tuple[str, ...]:
        return self.runtimes if self.runtimes is not None else HEAD_RUNTIMES[self.head]

    def required_fields(self) -> tuple[str, ...]:
        return tuple(name for name, info in self.fields.model_fields.items() if info.is_required())

    def field_names(self) -> tuple[str, ...]:
        return tuple(self.fields.model_fields)


_FAMILIES: dict[str, PRMFamily] = {}
_builtins_loaded = False
# The spec's own field names, which no format field may reuse. prm_backends.spec declares them
# when it defines the spec (it reads this registry, so this module cannot import it); every
# family module imports the spec first, directly or through the prm_backends package.
_SPEC_FIELDS: set[str] = set()


def reserve_spec_fields(names: Iterable[str]) -> None:
    """Declare the spec's field names (``prm_backends.spec`` calls this once)."""
    _SPEC_FIELDS.update(names)


def register_family(family: PRMFamily) -> PRMFamily:
    """Add ``family`` to the registry (a family module calls this once, at import) and return it."""
    if family.head not in HEAD_RUNTIMES:
        raise ValueError(
            f"PRM family {family.name!r}: unknown head {family.head!r} (known: {', '.join(HEAD_RUNTIMES)})"
        )
    unable = set(family.supported_runtimes) - set(HEAD_RUNTIMES[family.head])
    if unable:
        raise ValueError(
            f"PRM family {family.name!r}: runtime(s) {sorted(unable)} cannot compute a {family.head!r} head"
        )
    clash = set(family.fields.model_fields) & _SPEC_FIELDS
    if clash:
        raise ValueError(
            f"PRM family {family.name!r}: format field(s) {sorted(clash)} are spec fields already; rename them"
        )
    if family.name in _FAMILIES and _FAMILIES[family.name] != family:
        raise ValueError(
            f"PRM family {family.name!r} is registered already (by {_FAMILIES[family.name].format.__module__})"
        )
    _FAMILIES[family.name] = family
    return family


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def family_names() -> tuple[str, ...]:
    """The registered families, the shipped ones first."""
    _load_builtins()
    return tuple(_FAMILIES)


def find_family(name: str) -> PRMFamily | None:
    """The family registered as ``name``, or None."""
    _load_builtins()
    return _FAMILIES.get(name)


def get_family(name: str) -> PRMFamily:
    """The family registered as ``name``; a ``KeyError`` naming the known ones otherwise."""
    family = find_family(name)
    if family is None:
        raise KeyError(f"unknown PRM family {name!r}; known families: {known_families_text()}")
    return family


def family_of(spec: PRMSpec) -> PRMFamily:
    """The family of a validated spec."""
    return get_family(spec.family)


def known_families_text() -> str:
    """``'a', 'b' or 'c'``: the registered families, for messages."""
    names = [repr(name) for name in family_names()]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
