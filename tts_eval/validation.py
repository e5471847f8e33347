"""One wording for pydantic validation errors, so every file, setting and argument the
project validates reports its problems alike: which field, what is wrong, what was given."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def describe_error(error: ErrorDetails, *, label: str = "field ", fields: Iterable[str] | None = None) -> str:
    """``{label}'a.b': message (got value)``. With ``fields`` (the model's field names), a
    missing field asks to add it and an unknown one lists the known ones."""
    loc = ".".join(str(part) for part in error["loc"])
    if fields is not None and error["type"] == "missing":
        return f"{label}'{loc}' is missing; add it"
    if fields is not None and error["type"] == "extra_forbidden":
        return f"unknown {label}'{loc}'; remove it or fix its spelling (known fields: {', '.join(fields)})"
    message = error["msg"].removeprefix("Value error, ")
    if not loc:
        return message
    return f"{label}'{loc}': {message} (got {error.get('input')!r})"


def describe_errors(exc: ValidationError, *, label: str = "field ", fields: Iterable[str] | None = None) -> str:
    """Every error of ``exc``, described by :func:`describe_error`, joined by "; "."""
    return "; ".join(describe_error(e, label=label, fields=fields) for e in exc.errors())
