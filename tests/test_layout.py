"""The layout holds: no import cycle, no private module used outside its package, a
top level of about a dozen entries. (The layers are import-linter's contract in
pyproject.toml, checked by ``lint-imports`` in scripts/test.)"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "crawler"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path) -> Iterator[str]:
    """Modules imported where the code runs: TYPE_CHECKING blocks are annotations only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target in imports(path):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                edges[name].add(target)
    return edges


def test_no_import_cycle() -> None:
    edges = graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for target in edges[name]:
            visit(target, [*path, name])
        done.add(name)

    for name in edges:
        visit(name, [])


def test_private_modules_are_used_only_inside_their_package() -> None:
    outside = []
    for name, targets in graph().items():
        for target in targets:
            package, _, last = target.rpartition(".")
            if (
                last.startswith("_")
                and not last.startswith("__")
                and not (name == package or name.startswith(package + "."))
            ):
                outside.append(f"{name} imports {target}")
    assert not outside


def test_the_top_level_shows_the_architecture() -> None:
    entries = [p.name for p in PACKAGE.iterdir() if p.name not in {"__pycache__", "py.typed"}]
    assert len([e for e in entries if e not in {"__init__.py", "__main__.py"}]) <= 14
