"""One wording for pydantic validation errors, so every file, setting and argument the
project validates reports its problems alike: which field, what is wrong, what was given."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError
from pydantic_core import ErrorDetails

# A key the model does not declare: a field of a model with extra="forbid", or a keyword a
# validate_call function does not take.
_UNKNOWN = {"extra_forbidden", "unexpected_keyword_argument"}
_MISSING = {"missing", "missing_argument", "missing_keyword_only_argument"}


def unknown_key(name: str, *, label: str = "field ", known: Iterable[str] | None = None) -> str:
    """``unknown {label}'name'; remove it or fix its spelling (known {label}s: ...)``."""
    message = f"unknown {label}'{name}'; remove it or fix its spelling"
    if known is None:
        return message
    return f"{message} (known {label.strip() or 'key'}s: {', '.join(known)})"


def describe_error(error: ErrorDetails, *, label: str = "field ", fields: Iterable[str] | None = None) -> str:
    """``{label}'a.b': message (got value)``. A missing key asks to add it; an unknown one asks
    to remove it and, given ``fields`` (the model's field names), lists the known ones."""
    loc = ".".join(str(part) for part in error["loc"])
    if error["type"] in _MISSING:
        return f"{label}'{loc}' is missing; add it"
    if error["type"] in _UNKNOWN:
        return unknown_key(loc, label=label, known=fields)
    message = error["msg"].removeprefix("Value error, ")
    if not loc:
        return message
    return f"{label}'{loc}': {message} (got {error.get('input')!r})"


def describe_errors(exc: ValidationError, *, label: str = "field ", fields: Iterable[str] | None = None) -> str:
    """Every error of ``exc``, described by :func:`describe_error`, joined by "; "."""
    known = None if fields is None else list(fields)
    return "; ".join(describe_error(e, label=label, fields=known) for e in exc.errors())
