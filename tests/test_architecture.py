"""The house rules, checked on the source: imports in one direction, small modules, no dead dependency.

- No import cycle among vcheck's modules, counting imports anywhere in a file (inside functions too);
  imports under `if TYPE_CHECKING:` are left out (they never run).  `import a.b.c` and `from a.b import
  c` (c a module) are an edge to `a.b.c`; the packages above it are not counted (Python initialises
  them first, so a package cannot be in a cycle with its own modules that way).
- No module of `vcheck/core` imports a vcheck module outside `vcheck.core`; the reference imports only
  the core, the audit only the core and the reference, but for the few outward imports in `OUTWARD`.
- No module over 500 lines.
- Every dependency pyproject.toml declares (run time, the `r` and `audit` extras) is imported by vcheck.

The checker is tested on a small synthetic package with a planted cycle, so it can fail.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vcheck"
MAX_LINES = 500

#: tools of the dev extra that are run, not imported
TOOLS = {"nox", "ruff", "mypy", "pandas-stubs", "scipy-stubs", "pytest", "pytest-xdist", "pdoc", "hatchling"}


# --- the checker -------------------------------------------------------------------------------------------
def modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package (a package is its __init__)."""
    out: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(path: Path, module: str) -> set[str]:
    """Every module name this file imports, anywhere in it (TYPE_CHECKING blocks left out).

    `from a.b import c` yields both `a.b` and `a.b.c`; the caller keeps those that are modules.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join([*here, base] if base else here)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a `from a.b import c` of a function counts as a.b)."""
    mods = modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets = {n for n in imported_names(path, name) if n in mods}
        # `from a.b import c` with c a module: the edge is to a.b.c, not to the package a.b
        precise = {t for t in targets if not any(o.startswith(t + ".") for o in targets)}
        graph[name] = (precise | {t for t in targets if mods[t].name != "__init__.py"}) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def connect(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
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

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def _import_name(distribution: str) -> set[str]:
    """The top-level names a distribution installs (its normalised name when it is not installed)."""
    wanted = re.sub(r"[-_.]+", "-", distribution).lower()
    names = {
        top
        for top, dists in metadata.packages_distributions().items()
        for d in dists
        if re.sub(r"[-_.]+", "-", d).lower() == wanted
    }
    return names or {wanted.replace("-", "_")}


def declared_dependencies(pyproject: Path, skip: Iterable[str] = ("dev",)) -> list[str]:
    """Distribution names pyproject.toml declares: run time and every extra but `skip`."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    specs = list(project.get("dependencies", []))
    for extra, deps in project.get("optional-dependencies", {}).items():
        if extra not in skip:
            specs.extend(deps)
    return [re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0] for spec in specs]


def unused_dependencies(pyproject: Path, package: Path) -> list[str]:
    """Declared distributions whose top-level module no file of the package imports."""
    imported: set[str] = set()
    for name, path in modules(package).items():
        imported.update(n.split(".")[0] for n in imported_names(path, name))
    return [d for d in declared_dependencies(pyproject) if not (_import_name(d) & imported)]


# --- vcheck ------------------------------------------------------------------------------------------------
def test_no_import_cycle() -> None:
    assert cycles(import_graph(PACKAGE)) == []


def test_the_core_imports_only_the_core() -> None:
    graph = import_graph(PACKAGE)
    outside = {
        (m, t)
        for m, targets in graph.items()
        if m.startswith("vcheck.core")
        for t in targets
        if not t.startswith("vcheck.core")
    }
    assert outside == set()


#: the layers, inside out: a module may import its own layer and the ones before it (the shipped JSON
#: Schemas are a leaf that every layer may read)
LAYERS = ("vcheck.schemas", "vcheck.core", "vcheck.reference", "vcheck.auditing")
#: the imports that go outward, each for a reason: the result types' summary() texts live in report/
#: (so every text renderer is there), and the audit's own entry points load a target by its name as the
#: command line does (a sweep's target travels between processes as that name)
OUTWARD = {
    ("vcheck.auditing.plan", "vcheck.report.text"),
    ("vcheck.auditing.results", "vcheck.report.text"),
    ("vcheck.auditing.worker", "vcheck.adapters"),
    ("vcheck.auditing.__main__", "vcheck.adapters"),
}


def _layer(module: str) -> int:
    for rank, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return len(LAYERS)  # report, adapters, cli, bench: the outside


def test_imports_run_from_the_outside_in() -> None:
    graph = import_graph(PACKAGE)
    outward = {
        (m, t)
        for m, targets in graph.items()
        if m != "vcheck"  # the package's lazy names reach every layer by design
        for t in targets
        if _layer(t) > _layer(m)
    }
    assert outward == OUTWARD


def test_no_module_over_500_lines() -> None:
    long = {
        name: n
        for name, path in modules(PACKAGE).items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_declared_dependency_is_imported() -> None:
    assert unused_dependencies(ROOT / "pyproject.toml", PACKAGE) == []


def test_dev_tools_are_the_only_dependencies_left_out() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dev = {re.split(r"[\s\[<>=!~;]", s, maxsplit=1)[0] for s in project["optional-dependencies"]["dev"]}
    assert dev <= TOOLS


# --- the checker on a synthetic package --------------------------------------------------------------------
def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "toy"


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    toy = _package(
        tmp_path,
        {
            "toy/__init__.py": "",
            "toy/core/__init__.py": "",
            "toy/core/a.py": "from toy.core import b\n",
            "toy/core/b.py": "def f():\n    from toy.outer import c\n    return c\n",
            "toy/outer/__init__.py": "",
            "toy/outer/c.py": "import toy.core.a\n",
            "toy/outer/d.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy.outer import c\n"
            ),
        },
    )
    graph = import_graph(toy)
    assert graph["toy.core.a"] == {"toy.core.b"}
    assert graph["toy.core.b"] == {"toy.outer.c"}
    assert graph["toy.outer.d"] == set()  # TYPE_CHECKING imports never run
    assert cycles(graph) == [["toy.core.a", "toy.core.b", "toy.outer.c"]]


def test_the_checker_passes_a_package_without_cycles(tmp_path: Path) -> None:
    toy = _package(
        tmp_path,
        {
            "toy/__init__.py": "from toy.core.a import g\n",
            "toy/core/__init__.py": "",
            "toy/core/a.py": "from .b import h as g\n",
            "toy/core/b.py": "def h():\n    return 1\n",
        },
    )
    graph = import_graph(toy)
    assert graph["toy.core.a"] == {"toy.core.b"}  # a relative import resolved
    assert cycles(graph) == []


def test_the_checker_finds_an_unused_dependency(tmp_path: Path) -> None:
    toy = _package(tmp_path, {"toy/__init__.py": "def f():\n    import numpy\n"})
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "toy"\ndependencies = ["numpy>=1", "formulaic>=1"]\n'
        '[project.optional-dependencies]\naudit = ["dask[distributed]>=2024.1"]\ndev = ["ruff"]\n',
        encoding="utf-8",
    )
    assert unused_dependencies(pyproject, toy) == ["formulaic", "dask"]


@pytest.mark.parametrize("planted", ["import toy.a", "from toy import a", "from . import a"])
def test_the_checker_sees_each_spelling_of_an_import(tmp_path: Path, planted: str) -> None:
    toy = _package(
        tmp_path,
        {"toy/__init__.py": "", "toy/a.py": "def f():\n    import toy.b\n", "toy/b.py": f"{planted}\n"},
    )
    assert cycles(import_graph(toy)) == [["toy.a", "toy.b"]]
