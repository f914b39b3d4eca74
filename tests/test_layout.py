"""The house rules of the layout: imports go one way, and no module imports itself in a circle.

``attres`` (PyTorch, NumPy, scikit-learn) <- ``featurize`` (Ray Data) <- ``workflows``; inside
``workflows``, ``grid`` and ``use`` stand on ``runs`` and ``record`` alone, ``results`` may
use both (check re-runs a grid, report draws attention maps), and ``demo`` and the CLI sit
on top. Every import statement counts, the ones inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("attres", "featurize", "workflows")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports (``from a import b``: a.b when b is a module,
    else a)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module in modules and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_three_packages(graph) -> None:
    assert cycles(graph) == []


ALLOWED = {  # what a part may import, besides itself
    "attres": (),
    "featurize": ("attres",),
    "workflows.record": (),
    "workflows.runs": ("attres", "featurize", "workflows.record"),
    "workflows.grid": ("attres", "featurize", "workflows.record", "workflows.runs"),
    "workflows.use": ("attres", "featurize", "workflows.record", "workflows.runs"),
    "workflows.results": (
        "attres",
        "featurize",
        "workflows.record",
        "workflows.runs",
        "workflows.grid",
        "workflows.use",
    ),  # fmt: skip
}


def part_of(module: str) -> str:
    return max(
        (p for p in ALLOWED if module == p or module.startswith(f"{p}.")), key=len, default=""
    )


def test_imports_go_one_way(graph) -> None:
    wrong = []
    for module, imported in graph.items():
        part = part_of(module)
        if not part:  # the CLI and the demo sit on top of everything
            continue
        for other in imported:
            target = part_of(other) or other
            if target != part and target not in ALLOWED[part]:
                wrong.append(f"{module} imports {other}")
    assert wrong == []


def test_attres_and_featurize_import_no_workflow_and_attres_no_ray() -> None:
    for path in (ROOT / "attres").rglob("*.py"):
        text = path.read_text()
        assert "import ray" not in text and "from ray" not in text, path
