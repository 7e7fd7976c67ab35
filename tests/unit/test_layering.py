"""What may import what: the dev runner and the benchmarks stand on their own, without `tests/`.

One stack builder (`devstack.stack`) and one world maker (`devstack.worlds`) serve `make
dev`, the tests and the benchmarks; the tests import them, never the other way round.
"""

from __future__ import annotations

import ast
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code (functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def from_tests(package: str) -> dict[str, list[str]]:
    files = sorted((PROJECT / package).rglob("*.py"))
    assert files, f"no Python files in {package}/"
    return {
        str(path.relative_to(PROJECT)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "tests")
        for path in files
        if any(m.split(".")[0] == "tests" for m in imported_modules(path))
    }


def test_the_benchmarks_import_nothing_from_the_tests() -> None:
    assert from_tests("bench") == {}


def test_the_dev_stack_imports_nothing_from_the_tests() -> None:
    assert from_tests("devstack") == {}


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The walk would catch an import hidden in a function, `import tests...` or `from tests...`."""
    sample = tmp_path / "sample.py"
    sample.write_text("import tests.harness\n\ndef later():\n    from tests.integration import slash_helpers\n")
    assert {"tests.harness", "tests.integration", "tests.integration.slash_helpers"} <= imported_modules(sample)
