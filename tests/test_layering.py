"""The package's shape, read from the source: the layering of DESIGN.md and no import circle.

Every `import` counts, also those inside functions (a lazy import is still a dependency; it
only hides a circle from the interpreter). Imports under `if TYPE_CHECKING:` are left out.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "priorlab"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return out


# Circles through lazy (in-function) imports that exist today, each a module pair to untangle; a
# new circle fails the test. Remove an entry when its circle is cut.
KNOWN_CIRCLES = {
    frozenset({"priorlab.tasks.inputs", "priorlab.tasks.images"}),
    frozenset({"priorlab.tasks.stylegan.jobs.common", "priorlab.tasks.inputs", "priorlab.tasks.stylegan.jobs.direction"}),
    frozenset({"priorlab.cluster.expand", "priorlab.cluster.search"}),
}

SOURCES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
IMPORTS = {name: imports(path) for name, path in SOURCES.items()}


def offenders(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{name} imports {imp}" for name, imps in IMPORTS.items()
                  if name == layer or name.startswith(layer + ".")
                  for imp in imps if imp in forbidden or imp.startswith(tuple(f + "." for f in forbidden)))


def test_tasks_and_analysis_never_import_ray():
    assert offenders("priorlab.tasks", ("ray",)) == []
    assert offenders("priorlab.analysis", ("ray",)) == []


def test_analysis_and_dashboard_never_import_torch():
    for layer in ("priorlab.analysis", "priorlab.dashboard"):
        assert offenders(layer, ("torch", "torchvision")) == []


def test_nothing_imports_cluster_or_dashboard():
    for target in ("priorlab.cluster", "priorlab.dashboard"):
        outside = {n: i for n, i in IMPORTS.items() if not (n == target or n.startswith(target + "."))}
        bad = sorted(f"{n} imports {imp}" for n, imps in outside.items() for imp in imps
                     if imp == target or imp.startswith(target + "."))
        assert bad == [], bad


def test_the_vocabulary_is_a_standard_library_leaf():
    third_party = sorted(i for i in IMPORTS["priorlab.vocab"]
                         if i.split(".")[0] not in sys.stdlib_module_names and i != "__future__")
    assert third_party == []


def test_no_import_circle_across_the_package():
    # Edges between priorlab modules only; `from pkg import name` counts when `pkg.name` is a module.
    graph = {name: sorted(i for i in imps if i in SOURCES and i != name) for name, imps in IMPORTS.items()}
    # A package's __init__ re-exporting its own modules is not a circle through them.
    graph = {n: [i for i in deps if not (i.startswith(n + ".") and SOURCES[n].name == "__init__.py")]
             for n, deps in graph.items()}
    graph = {n: [i for i in deps if not n.startswith(i + ".")] for n, deps in graph.items()}  # parent package
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in graph[n]:
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n)
    cycles = [c for c in cycles if frozenset(c) not in KNOWN_CIRCLES]
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)
