"""The package's import graph, read from the source: no cycle, the API never reaches up to the
node that composes it (it sees the node's roles through ``api/parts.py``), each engine library is
imported by its bridge only; and the house's size rule (no module over 400 lines).

Every import counts: at module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ringrift_cluster

PACKAGE = Path(ringrift_cluster.__file__).resolve().parent
ROOT = PACKAGE.name


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (``from .x import y`` counts ``x.y`` when y is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
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


def test_the_graph_is_read() -> None:
    edges = graph()
    assert f"{ROOT}.api.app" in edges[f"{ROOT}.node"]
    assert f"{ROOT}.config.load" in edges[f"{ROOT}.config"]


def test_no_import_cycle() -> None:
    edges = graph()
    # A package's __init__ re-exporting its own modules is not a cycle of ideas: leave the
    # edges from a package to its children out, keep every other.
    edges = {m: {t for t in targets if not t.startswith(m + ".")} for m, targets in edges.items()}
    assert cycles(edges) == []


def test_the_api_never_imports_the_node() -> None:
    edges = graph()
    upward = {m: sorted(t for t in targets if t == f"{ROOT}.node")
              for m, targets in edges.items() if m.startswith(f"{ROOT}.api")}
    assert {m: t for m, t in upward.items() if t} == {}


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# Modules others work on, kept out of this rule for now (the adapters mirror the host's files).
LARGE_ALLOWED: set[str] = set()  # none: every module is under the bound
MAX_LINES = 400


def test_no_module_over_400_lines() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES and n not in LARGE_ALLOWED} == {}


def test_each_engine_is_imported_by_its_bridge_only() -> None:
    """swim-p2p (imported as ``swim``) only from ``membership/swim/bridge.py``; pysyncobj only from
    ``consensus/raft/bridge.py``: every other module reaches the engines through them."""
    engines = {"swim": f"{ROOT}.membership.swim.bridge", "pysyncobj": f"{ROOT}.consensus.raft.bridge"}
    importers: dict[str, set[str]] = {engine: set() for engine in engines}
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                found = {(node.module or "").split(".")[0]}
            else:
                continue
            for engine in found & set(engines):
                importers[engine].add(name)
    assert importers == {engine: {bridge} for engine, bridge in engines.items()}


def test_no_test_or_script_edits_sys_path() -> None:
    """Tests and scripts import the package as installed, the tests' helpers and the benchmark
    scripts through pytest's ``pythonpath`` (pyproject.toml)."""
    repo = PACKAGE.parent
    edit = re.compile(r"sys\.path\.(insert|append)\(")
    edits = sorted(str(p.relative_to(repo)) for folder in ("tests", "scripts") for p in (repo / folder).rglob("*.py")
                   if edit.search(p.read_text(encoding="utf-8")))
    assert edits == []
