"""The design card's rooms, enforced: who may import whom, and sizes a reader can follow.

tools/ imports nothing from agents/, graphs/ or cli/ (engines work without LangGraph);
knowledge/ imports nothing from agents/, graphs/ or cli/ (it stores and retrieves);
agents/ (planning included) imports no graph and no CLI; server.py imports nothing from cli/.
No function in planning is longer than 80 lines and no module in agents/ over 500 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import edgeai
import pytest

ROOT = Path(edgeai.__file__).resolve().parent  # the repository root is the package


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def offenders(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    assert files, "no files found"
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in sorted(imported_modules(path))
        if name.startswith(forbidden)
    ]


def package(room: str) -> list[Path]:
    return sorted((ROOT / room).rglob("*.py"))


@pytest.mark.parametrize(
    ("room", "forbidden"),
    [
        ("tools", ("edgeai.agents", "edgeai.graphs", "edgeai.cli", "edgeai.server")),
        ("knowledge", ("edgeai.agents", "edgeai.graphs", "edgeai.cli", "edgeai.server")),
        ("agents", ("edgeai.graphs", "edgeai.cli", "edgeai.server")),
    ],
)
def test_rooms_import_only_downwards(room: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(package(room), forbidden) == []


def test_server_imports_nothing_from_the_cli() -> None:
    assert offenders([ROOT / "server.py"], ("edgeai.cli",)) == []


def test_an_agent_never_imports_another_agent() -> None:
    """Planning is one package; the graph's deciders (model_selector, offloading, responder,
    ...) import neither each other nor planning's choosers."""
    deciders = sorted((ROOT / "agents").glob("*.py"))
    names = {f"edgeai.agents.{p.stem}" for p in deciders if p.stem != "__init__"}
    for path in deciders:
        own = f"edgeai.agents.{path.stem}"
        assert offenders([path], tuple(n for n in names if n != own)) == []


def test_planning_functions_fit_on_a_screen() -> None:
    long = []
    for path in package("agents/planning"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []


def test_agent_modules_stay_under_500_lines() -> None:
    big = [
        f"{p.relative_to(ROOT)} ({n} lines)"
        for p in package("agents")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500
    ]
    assert big == []
