"""Reading JSONL files: one JSON object a line, blank lines skipped; a bad line is an error
that names the file and the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def iter_jsonl(
    path: str | Path, error: type[Exception] = ValueError, hint: str = ""
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; ``error`` (with ``hint`` appended to its
    message) for a line that is not a JSON object."""
    suffix = f"; {hint}" if hint else ""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise error(f"{path}:{number}: not valid JSON ({err.msg}){suffix}") from None
            if not isinstance(row, dict):
                raise error(f"{path}:{number}: not a JSON object{suffix}")
            yield number, row


def read_jsonl(path: str | Path, error: type[Exception] = ValueError, hint: str = "") -> list[dict[str, Any]]:
    """The objects of a JSONL file, in order (see :func:`iter_jsonl`)."""
    return [row for _, row in iter_jsonl(path, error, hint)]
