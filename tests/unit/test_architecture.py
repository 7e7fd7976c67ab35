"""What may import what, checked on every file (docs/architecture.md, "Layers").

The layers, lowest first: the models; the access rules and settings; the Mattermost
gateway and the processes' plumbing; the activities (the only side effects); the
workflows (which call the activities); the application service; the adapters in `api/`;
the worker; the dev runner and the benchmarks; the tests. A module imports from its own
layer or below, never above (inside functions too); no two modules import each other,
directly or around a circle; no two modules of the product share a name; the service
knows nothing of FastAPI; the stand-in, a Mattermost of its own, imports nothing of ours.
"""

from __future__ import annotations

import ast
import gc
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
RANKS = {
    "models": 0,
    "permissions": 1,
    "settings": 1,
    "signing": 1,
    "mattermost_client": 2,
    "process_exit": 2,
    "process_logging": 2,
    "temporal_connection": 2,
    "payload_sealing": 2,
    "webhook_targets": 2,
    "activities": 3,
    "workflows": 4,
    "service": 5,
    "api": 6,
    "worker": 7,
    "devstack": 8,
    "bench": 8,
    "tests": 9,
}
PRODUCT = ("models", "permissions", "settings", "signing", "mattermost_client", "process_exit", "process_logging",
           "temporal_connection", "payload_sealing", "webhook_targets", "activities", "workflows", "service", "api",
           "worker")  # fmt: skip
STANDIN = "mattermost_standin"


def python_files(top: str) -> list[Path]:
    path = PROJECT / top
    return [path.with_suffix(".py")] if path.with_suffix(".py").exists() else sorted(path.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def parse(path: Path) -> ast.Module:
    """`ast.parse`, with no garbage collection meanwhile. CPython 3.11 (3.11.7 here; gh-106905)
    can raise "SystemError: AST constructor recursion depth mismatch" when a finalizer runs while
    the tree is built; in the suite one did: an earlier test's asyncio future, collected here."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(path.read_text(), filename=str(path))
    finally:
        if collecting:
            gc.enable()


def imports(path: Path, *, module_level_only: bool = False) -> Iterator[str]:
    """Every module a file imports: `from a import b` imports `a.b` when that is a module, else `a`."""
    tree = parse(path)
    nodes = list(tree.body) if module_level_only else list(ast.walk(tree))
    if module_level_only:
        # `with workflow.unsafe.imports_passed_through():` holds a workflow's imports.
        nodes += [inner for node in tree.body if isinstance(node, ast.With) for inner in node.body]
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield submodule if _is_module(submodule) else node.module


def _is_module(name: str) -> bool:
    path = PROJECT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def ours(name: str) -> str | None:
    top = name.split(".")[0]
    return top if top in RANKS or top == STANDIN else None


def test_no_import_runs_upward() -> None:
    upward = []
    for top, rank in RANKS.items():
        for path in python_files(top):
            for name in imports(path):
                target = ours(name)
                if target in RANKS and RANKS[target] > rank:
                    upward.append(f"{path.relative_to(PROJECT)} imports {name}")
    assert upward == []


def test_no_two_modules_import_each_other() -> None:
    known = {module_name(p) for top in (*RANKS, STANDIN) for p in python_files(top)}
    graph: dict[str, set[str]] = {}
    for top in (*RANKS, STANDIN):
        for path in python_files(top):
            graph[module_name(path)] = {n for n in imports(path, module_level_only=True) if n in known}
    cycles = [cycle for cycle in _cycles(graph) if len(cycle) > 1]
    assert cycles == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components (Tarjan), each a set of modules importing one another."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_two_modules_of_the_product_share_a_name() -> None:
    seen: dict[str, list[str]] = {}
    for top in PRODUCT:
        for path in python_files(top):
            if path.stem not in ("__init__", "__main__"):
                seen.setdefault(path.stem, []).append(str(path.relative_to(PROJECT)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}


def test_the_service_knows_nothing_of_the_web() -> None:
    web = [
        f"{path.relative_to(PROJECT)} imports {name}"
        for path in python_files("service")
        for name in imports(path)
        if name.split(".")[0] in ("fastapi", "starlette", "uvicorn", "jinja2")
    ]
    assert web == []


def test_the_stand_in_imports_nothing_of_ours() -> None:
    borrowed = [
        f"{path.relative_to(PROJECT)} imports {name}"
        for path in python_files(STANDIN)
        for name in imports(path)
        if ours(name) not in (None, STANDIN)
    ]
    assert borrowed == []


def test_the_check_sees_imports_inside_functions_and_workflow_blocks(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    code = "import tests.harness\n\nwith x():\n    from api import app\n\ndef later():\n    from tests import harness\n"
    sample.write_text(code)
    assert set(imports(sample)) == {"tests.harness", "api.app"}
    assert set(imports(sample, module_level_only=True)) == {"tests.harness", "api.app"}
