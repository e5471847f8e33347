"""Secrets in model_args (``api_key``, ``prm_api_key``, ...) never reach a file.

:func:`remember_secrets` notes the secret values of a run's model_args as they are parsed;
the lm-eval output hooks (:mod:`tts_eval.lm_eval.registration`) pass every results and
samples record through :func:`scrub` before it is written, which replaces each noted value
wherever it appears (lm-eval copies the raw ``--model_args`` string into the results and
into each task's metadata). The settings the ``tts`` model records leave secrets out itself.
"""

from __future__ import annotations

import re
import threading
from typing import Any

REDACTED = "<redacted>"
# Option names holding credentials (with or without the "prm_" prefix).
_SECRET_NAME = re.compile(r"(?:^|_)(?:api_key|password|secret|auth_token|hf_token)$")
_secrets: set[str] = set()
_lock = threading.Lock()


def is_secret(name: str) -> bool:
    """Whether a model_args key names a credential."""
    return bool(_SECRET_NAME.search(name))


def remember_secrets(model_args: dict[str, Any]) -> None:
    """Note the secret values among ``model_args`` so :func:`scrub` removes them."""
    with _lock:
        _secrets.update(str(v) for k, v in model_args.items() if is_secret(str(k)) and v not in (None, ""))


def scrub(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with every noted secret replaced, and
    every secret-named dict key's value redacted."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    return _scrub(value, secrets)


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and is_secret(k) and v not in (None, "") else _scrub(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(v, secrets) for v in value)
    return value
