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


# ``pkg://PACKAGE/RELATIVE/PATH``: a file or folder shipped inside an installed Python package
# (the toy world's models), so a YAML file or a model argument can name it wherever the
# package is installed.
PACKAGE_SCHEME = "pkg://"

# What to do when a referenced folder is missing, for packages whose data is built by a
# command rather than written by hand.
_REBUILD_HINTS = {
    "tts_eval.toy": (
        "the toy world's models are built by `tts-eval toy train --out DIR`; run it and point at "
        "DIR/models/<name> instead (e.g. load_prm('toy-prm', model='DIR/models/prm')), or install "
        "a tts-eval wheel, which ships them"
    ),
}


class PackagePathError(ValueError):
    """A ``pkg://`` reference is malformed, or names a package or path that is not installed."""


def is_package_reference(text: str) -> bool:
    return text.startswith(PACKAGE_SCHEME)


def package_path(reference: str) -> Path:
    """The file or folder on disk that ``pkg://PACKAGE/RELATIVE/PATH`` names: RELATIVE/PATH
    inside the importable package PACKAGE (found by the import system's finders, so a
    checkout, an editable install and a wheel all work). Nothing is imported: naming a
    package never runs its code."""
    package, _, relative = reference.removeprefix(PACKAGE_SCHEME).partition("/")
    parts = relative.split("/")
    if (
        not is_package_reference(reference)
        or not all(name.isidentifier() for name in package.split("."))
        or not all(part not in ("", ".", "..") for part in parts)
    ):
        raise PackagePathError(
            f"{reference!r} is not of the form pkg://PACKAGE/RELATIVE/PATH (a dotted package name, then "
            "a path inside it without empty, '.' or '..' parts), e.g. pkg://tts_eval.toy/models/prm"
        )
    folders = _package_folders(package)
    if folders is None:
        raise PackagePathError(f"{reference}: no installed Python package '{package}'; install it or fix the name")
    if not folders:
        raise PackagePathError(
            f"{reference}: package '{package}' is not a folder on disk (a zip import?); install it unpacked"
        )
    path = next((f.joinpath(*parts) for f in folders if f.joinpath(*parts).exists()), folders[0].joinpath(*parts))
    if not path.exists():
        hint = _REBUILD_HINTS.get(package, f"reinstall '{package}' or fix the path")
        raise PackagePathError(f"{reference}: nothing at {path} in package '{package}'; {hint}")
    return path


def _package_folders(package: str) -> list[Path] | None:
    """The folders of the package ``package`` (several for a namespace package; empty when
    it is not on disk), found without importing it or its parents; None if there is none."""
    import importlib.machinery
    import importlib.util

    parts = package.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name: finders only, no import
    except (ImportError, ValueError):
        return None
    for depth in range(1, len(parts)):
        if spec is None or spec.submodule_search_locations is None:
            return None
        name = ".".join(parts[: depth + 1])
        spec = importlib.machinery.PathFinder.find_spec(name, list(spec.submodule_search_locations))
    if spec is None or spec.submodule_search_locations is None:
        return None  # no such module, or a module that is not a package
    return [Path(p) for p in spec.submodule_search_locations if Path(p).is_dir()]
