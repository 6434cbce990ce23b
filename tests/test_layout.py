"""The design card's layering: tools never import agents or graphs."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_tools_never_import_agents_or_graphs() -> None:
    offenders = []
    files = sorted((ROOT / "tools").rglob("*.py"))
    assert files, "no tools found"
    for path in files:
        for name in imported_modules(path):
            if name.startswith(
                ("edgeai.agents", "edgeai.graphs", "agents", "graphs", "edgeai.cli")
            ):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_agents_never_import_graphs() -> None:
    for path in sorted((ROOT / "agents").rglob("*.py")):
        assert not any(n.startswith("edgeai.graphs") for n in imported_modules(path)), path
