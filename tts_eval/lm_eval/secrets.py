"""Secrets in model_args (``api_key``, ``prm_api_key``, ...) never reach a file or the terminal.

:func:`remember_secrets` notes the secret values of a run's model_args as they are parsed;
the lm-eval output hooks (:mod:`tts_eval.lm_eval.registration`) pass every results and
samples record through :func:`scrub` before it is written, which replaces each noted value
wherever it appears (lm-eval copies the raw ``--model_args`` string into the results and
into each task's metadata). The settings the ``tts`` model records leave secrets out itself.

lm-eval also echoes model_args to the terminal: an INFO line as it creates the model, which
:class:`RedactingFilter` rewrites, and a summary line after the run, printed from the very
dict the model was created from, which :func:`redact_in_place` empties of secrets once read.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

REDACTED = "<redacted>"
# Option names holding credentials (with or without the "prm_" prefix).
_SECRET_NAME = re.compile(r"(?:^|_)(?:api_key|password|secret|auth_token|hf_token)$")
# A secret-named option and its value as lm-eval writes model_args: ``api_key=v`` in a
# --model_args string, ``'api_key': 'v'`` in a printed dict.
_SECRET_PAIR = re.compile(
    r"(?P<name>['\"]?\b\w*(?:api_key|password|secret|auth_token|hf_token)['\"]?\s*[:=]\s*)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|[^'\",}\s]+)"
)
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


def redact_in_place(model_args: dict[str, Any]) -> None:
    """Replace the secret values of the caller's ``model_args`` dict (its copy already read)."""
    for name, value in model_args.items():
        if is_secret(str(name)) and value not in (None, ""):
            model_args[name] = REDACTED


def redact_text(text: str) -> str:
    """``text`` with the value of every secret-named option (``name=value``, ``'name': 'value'``)
    and every noted secret replaced."""

    def redacted(match: re.Match[str]) -> str:
        quote = match["value"][0] if match["value"][0] in "'\"" else ""
        return f"{match['name']}{quote}{REDACTED}{quote}"

    return scrub(_SECRET_PAIR.sub(redacted, text))


class RedactingFilter(logging.Filter):
    """Rewrites a log record's message without secrets (lm-eval logs model_args at INFO
    before any model, and so before :func:`remember_secrets`, has seen them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
