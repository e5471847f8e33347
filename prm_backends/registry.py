"""Finding PRM specs: a name is the stem of a YAML file in ``yaml_configs/prm/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prm_backends.spec import PRMConfigError, PRMSpec, read_spec
from tts_eval.resources import resource_dir


def prm_config_dir() -> Path:
    """The folder of the shipped PRM YAML files."""
    return resource_dir("yaml_configs") / "prm"


def list_prms() -> list[str]:
    """Names of the shipped PRMs (``load_prm`` accepts each)."""
    return sorted(path.stem for path in prm_config_dir().glob("*.yaml"))


def find_spec_file(name_or_path: str | Path) -> Path:
    """The YAML file for a shipped PRM's name, or ``name_or_path`` itself if it is a file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise PRMConfigError(f"{path}: no such PRM spec file; give an existing YAML path or a PRM name")
        return path
    shipped = prm_config_dir() / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise PRMConfigError(
        f"unknown PRM {str(name_or_path)!r}: it is neither a YAML file nor one of the shipped PRMs "
        f"({', '.join(list_prms())}) in {prm_config_dir()}. Pass one of those names or the path "
        "of a YAML spec (see docs/prms.md)."
    )


def load_spec(name_or_path: str | Path, **overrides: Any) -> PRMSpec:
    """The validated spec of a shipped PRM name or YAML path, with ``overrides`` applied."""
    return read_spec(find_spec_file(name_or_path), **overrides)
