"""Where the shipped YAML configs and lm-eval tasks live, in a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The folder ``name`` (``"yaml_configs"`` or ``"tasks"``).

    A wheel ships it inside the package as ``tts_eval/_data/<name>`` (looked at first, so an
    unrelated top-level folder in site-packages is never picked up); in a source checkout or
    editable install it is the top-level folder of the repository.
    """
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"tts-eval's '{name}' folder is missing (looked in {_PACKAGE_DIR / '_data' / name} and "
        f"{_PACKAGE_DIR.parent / name}); reinstall tts-eval"
    )
