"""Loading the models a command names, with a mistake reported as one line naming the flag."""

from __future__ import annotations

from typing import Any, NoReturn

import typer


def fail(message: str) -> NoReturn:
    """End the command with ``Error: message`` on stderr (exit code 2)."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=2)


def load_models(policy: str, backend: str, options: dict[str, Any], prm: str | None, prm_model: str | None):
    """(policy, PRM or None) as ``--policy`` / ``--backend`` and ``--prm`` / ``--prm-model`` name them."""
    from tts_eval.policies import load_policy

    try:
        loaded = load_policy(policy, backend=backend, **options)
    except (OSError, ValueError, ImportError) as err:  # a missing folder, an unknown backend, ...
        fail(f"--policy {policy}: {err}")
    if prm is None:
        return loaded, None
    from prm_backends import PRMConfigError, load_prm

    try:
        return loaded, load_prm(prm, **({} if prm_model is None else {"model": prm_model}))
    except PRMConfigError as err:  # names the YAML file, the field and the fix
        fail(f"--prm {prm}: {err}")
