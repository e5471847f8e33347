"""The packages stand on floors: a module imports only from its own floor or the floors below,
and nothing imports in a circle. Imports inside functions count too (a deferred import is
still a dependency); those under ``if TYPE_CHECKING:`` do not (annotations only).
docs/architecture.md explains what lives on each floor."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tts_eval", "prm_backends", "leaderboard")

# Bottom to top. A name covers a module, or a package with everything in it; "tts_eval" is
# only the package's facade (its __init__), so every other module of it must be placed.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    (
        "core",
        (
            "tts_eval.types",
            "tts_eval.steps",
            "tts_eval.seeding",
            "tts_eval.jsonl",
            "tts_eval.resources",
            "tts_eval.validation",
            "tts_eval.statistics",
            "tts_eval.serialization",
            "tts_eval.grading",
            "tts_eval.scoring",
            "tts_eval.voting",
            "tts_eval.flops",
            "tts_eval.protocols",
            "tts_eval.processbench",
            "tts_eval.benchmarks",
        ),
    ),
    # The strategy contract and registry, the compute-optimal tables that read it, the
    # strategies (one registers itself per module), the search that runs them.
    (
        "engine",
        (
            "tts_eval.search_options",
            "tts_eval.strategies.base",
            "tts_eval.strategies.registry",
            "tts_eval.strategies.names",
            "tts_eval.compute_optimal",
            "tts_eval.strategies",
            "tts_eval.estimators",
            "tts_eval.search",
        ),
    ),
    ("serving", ("tts_eval.serving",)),
    ("backends", ("tts_eval.policies", "prm_backends")),
    ("runs", ("tts_eval.planning", "tts_eval.memory_plan", "tts_eval.preflight")),
    ("front ends", ("tts_eval.lm_eval", "tts_eval.toy", "leaderboard")),
    ("commands", ("tts_eval.cli", "tts_eval")),
]
FACADE = "tts_eval"


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its file (``from p import m``
    counts as importing module ``p.m`` where that is a module, else ``p``)."""
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: list[str] = []
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for block in [n for n in ast.walk(tree) if isinstance(n, ast.If) and _type_checking(n.test)]:
            block.body = []  # imports for annotations only: no dependency when the code runs
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        edges[name] = set()
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges[name].add(target)
    return edges


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _unit(module: str) -> str | None:
    """The FLOORS entry that holds ``module``."""
    best = None
    for _, units in FLOORS:
        for unit in units:
            covers = module == unit if unit == FACADE else module == unit or module.startswith(unit + ".")
            if covers and (best is None or len(unit) > len(best)):
                best = unit
    return best


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_stands_on_a_floor_and_imports_only_downwards_without_cycles():
    modules = _modules()
    edges = _imports(modules)
    floor_of = {unit: i for i, (_, units) in enumerate(FLOORS) for unit in units}
    unplaced = sorted(m for m in modules if _unit(m) is None)
    assert not unplaced, f"place these modules on a floor in FLOORS (and docs/architecture.md): {unplaced}"

    upward, unit_edges = [], {}
    for module, targets in edges.items():
        source = _unit(module)
        for target in targets:
            dest = _unit(target)
            if dest == source:
                continue
            unit_edges.setdefault(source, set()).add(dest)
            if floor_of[dest] > floor_of[source]:
                upward.append(
                    f"{module} ({FLOORS[floor_of[source]][0]}) imports {target} ({FLOORS[floor_of[dest]][0]})"
                )
    assert not upward, "imports up the floors:\n" + "\n".join(sorted(upward))
    assert not _cycles(unit_edges), f"packages importing each other: {_cycles(unit_edges)}"
    # Inside a package too, modules import in one direction. A package's __init__ is its public
    # face and registry (it gathers its modules), so imports of it are left out here.
    inner = {
        m: {t for t in ts if modules[t].name != "__init__.py"}
        for m, ts in edges.items()
        if modules[m].name != "__init__.py"
    }
    assert not _cycles(inner), f"modules importing each other: {_cycles(inner)}"


def test_the_scan_sees_imports_inside_functions_and_finds_upward_imports_and_cycles(tmp_path, monkeypatch):
    """The checker itself: a deferred import up the floors and a cycle are both found."""
    (tmp_path / "tts_eval").mkdir()
    (tmp_path / "tts_eval" / "__init__.py").write_text("")
    (tmp_path / "tts_eval" / "types.py").write_text("def f():\n    from tts_eval.search import search\n")
    (tmp_path / "tts_eval" / "search.py").write_text(
        "from typing import TYPE_CHECKING\nfrom .types import f\nif TYPE_CHECKING:\n    from tts_eval.cli import app\n"
    )
    (tmp_path / "tts_eval" / "cli.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    modules = _modules()
    edges = _imports(modules)
    assert edges["tts_eval.types"] == {"tts_eval.search"} and edges["tts_eval.search"] == {"tts_eval.types"}
    assert _cycles(edges) == [["tts_eval.search", "tts_eval.types"]]
    assert _unit("tts_eval.types") == "tts_eval.types" and _unit("tts_eval.new_module") is None
