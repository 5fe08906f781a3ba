"""The shape of the code, as ARCHITECTURE.md states it, for the three packages (the library, the
application and the benchmarks): no import circles, the library never imports the application,
the CPU speed layer imports nothing of the model, the experiments' core and analyses import no
method, no method imports another, no module over 400 lines, every import inside a function says
why, and ``import bntt_jax`` / ``import experiments`` load no JAX."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("bntt_jax", "experiments", "benchmarks")


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imports(path: Path, inner: bool) -> list[tuple[str, ast.AST]]:
    """``(module, node)`` of every import of ours in ``path``: at module level, or (``inner``)
    inside functions."""
    tree = ast.parse(path.read_text())
    top = set(tree.body)
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or (node in top) == inner:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                package = _name(path).split(".")[: None if path.name == "__init__.py" else -1]
                base = ".".join(package[: len(package) - node.level + 1] + [base]).strip(".")
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        out += [(_resolve(n), node) for n in names if n.split(".")[0] in PACKAGES]
    return out


def _resolve(name: str) -> str:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


#: Every import of ours, at module level and inside functions (a lazy import closes a circle
#: as surely as an eager one).
GRAPH = {
    m: {d for d, _ in _imports(p, inner=False) + _imports(p, inner=True)} - {m}
    for m, p in MODULES.items()
}


def test_no_import_circles():
    """Tarjan's strongly connected components of the import graph are single."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert circles == []


def test_an_import_circle_is_found():  # the check above can fail
    GRAPH["bntt_jax.lif"].add("bntt_jax.train")
    try:
        with pytest.raises(AssertionError):
            test_no_import_circles()
    finally:
        GRAPH["bntt_jax.lif"].discard("bntt_jax.train")


def _imports_of(prefix: str) -> set[tuple[str, str]]:
    """``(module, imported)`` of every import, inside functions too, of the modules under
    ``prefix``."""
    return {
        (m, d)
        for m, path in MODULES.items()
        if m == prefix or m.startswith(prefix + ".")
        for d, _ in _imports(path, inner=False) + _imports(path, inner=True)
    }


def test_the_library_never_imports_the_application_or_the_benchmarks():
    up = ("experiments", "benchmarks")
    assert {(m, d) for m, d in _imports_of("bntt_jax") if d.startswith(up)} == set()
    assert {(m, d) for m, d in _imports_of("experiments") if d.startswith("benchmarks")} == set()


def test_the_cpu_layer_imports_nothing_of_the_model():
    model = {
        (m, d) for m, d in _imports_of("bntt_jax.cpu") if d.split(".")[:2] != ["bntt_jax", "cpu"]
    }
    assert model == set()


def test_the_experiments_core_imports_no_method():
    methods = ("experiments.bntt", "experiments.ttfs", "experiments.ann", "experiments.analyses")
    assert {(m, d) for m, d in _imports_of("experiments.core") if d.startswith(methods)} == set()


METHODS = ("experiments.bntt", "experiments.ttfs", "experiments.ann")


def test_the_analyses_import_no_method():
    """What an analysis needs of a method comes through its interface (``Method.subjects``)."""
    assert {
        (m, d) for m, d in _imports_of("experiments.analyses") if d.startswith(METHODS)
    } == set()


def test_no_method_imports_another():
    crossing = {
        (m, d)
        for method in METHODS
        for m, d in _imports_of(method)
        if d.startswith(METHODS) and not d.startswith(method)
    }
    assert crossing == set()


def test_no_module_over_400_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_every_import_inside_a_function_says_why():
    """A lazy import (JAX or matplotlib once a command is checked, an optional dependency)
    carries its reason as a comment on one of the function's import lines."""
    silent = []
    for module, path in MODULES.items():
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            imports = [n for n in ast.walk(function) if isinstance(n, ast.Import | ast.ImportFrom)]
            if imports and not any("#" in lines[n.lineno - 1] for n in imports):
                silent.append(f"{module}.{function.name}")
    assert silent == []


def test_importing_the_packages_loads_no_jax():
    code = "import sys, bntt_jax, experiments, experiments.run; print('jax' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "False"
