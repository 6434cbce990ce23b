"""The validator: generated code is checked before anything runs it, and a rejection says why.

`validate(text, manifest)` accepts a generated task.py only when
1. its region markers are the template's, in the template's order, and nothing outside the
   regions differs from the template (the first changed line is quoted);
2. it parses as Python;
3. every import is on the allow-list (torch, numpy, math and the template's appkit), and no
   code reaches the usual escape hatches: builtins that run or open things (eval, exec, open,
   __import__, getattr, ...), dunder attributes (`().__class__.__subclasses__()`), or library
   entry points that load code or files (torch.hub, torch.load, numpy.load, ...);
4. every region still assigns each of its configurations a literal value inside the manifest's
   range, and still defines the functions the template's fixed code calls.
Everything wrong is reported (not only the first problem), so the agent can fix it in one go.
"""

from __future__ import annotations

import ast
import difflib
from typing import Any

from edgeai.errors import EdgeAIError
from edgeai.tools.federated.template import Manifest, RegionError, split_regions

ALLOWED_IMPORTS = frozenset({"math", "numpy", "torch", "torch.nn", "torch.nn.functional",
                             "edgeai.tools.federated.appkit", "edgeai.tools.federated"})
FORBIDDEN_NAMES = frozenset({
    "eval", "exec", "compile", "open", "__import__", "globals", "locals", "vars", "getattr",
    "setattr", "delattr", "input", "breakpoint", "exit", "quit", "help", "memoryview",
    "__builtins__", "__loader__", "__spec__",
})
FORBIDDEN_ATTRIBUTES = frozenset({
    "hub", "load", "save", "load_library", "from_file", "system", "popen", "spawn", "fork",
    "fromfile", "tofile", "memmap", "ctypeslib", "classes", "ops", "_C",
})


class CodeRejected(EdgeAIError):
    """Generated code failed validation; `reasons` lists every problem found."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("generated code rejected: " + "; ".join(reasons))


def validate(text: str, manifest: Manifest) -> dict[str, Any]:
    """The configuration values the code sets, or CodeRejected with every reason."""
    reasons: list[str] = []
    try:
        outside, bodies = split_regions(text)
    except RegionError as exc:
        raise CodeRejected([f"region markers: {exc}"]) from None
    expected_outside, default_bodies = manifest.skeleton()
    if list(bodies) != list(default_bodies):
        reasons.append(f"regions are {list(bodies)}, the template has {list(default_bodies)}")
    changed = _first_change(expected_outside, outside)
    if changed:
        reasons.append(f"changed outside the marked regions: {changed}")
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise CodeRejected(reasons + [f"syntax error at line {exc.lineno}: {exc.msg}"]) from None
    reasons += _unsafe(tree)
    values: dict[str, Any] = {}
    for region, body in bodies.items():
        if region not in default_bodies:
            continue
        region_values, problems = _region_values(region, body, default_bodies[region], manifest)
        values.update(region_values)
        reasons += problems
    if reasons:
        raise CodeRejected(reasons)
    return values


def _first_change(expected: str, got: str) -> str | None:
    a, b = expected.splitlines(), got.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if j1 < j2:
            return f"'{b[j1].strip()}' (was: '{a[i1].strip()}')" if i1 < i2 else f"added '{b[j1].strip()}'"
        return f"removed '{a[i1].strip()}'"
    return None


def _unsafe(tree: ast.AST) -> list[str]:
    out: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in ALLOWED_IMPORTS:
                    out.append(f"line {line}: import of '{alias.name}' is not allowed "
                               f"(allowed: {', '.join(sorted(ALLOWED_IMPORTS))})")
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            full = [f"{module}.{a.name}" for a in node.names]
            if module not in ALLOWED_IMPORTS and not all(f in ALLOWED_IMPORTS for f in full):
                out.append(f"line {line}: import from '{module}' is not allowed "
                           f"(allowed: {', '.join(sorted(ALLOWED_IMPORTS))})")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            out.append(f"line {line}: '{node.id}' is not allowed in generated code")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("__") or node.attr in FORBIDDEN_ATTRIBUTES:
                out.append(f"line {line}: attribute '.{node.attr}' is not allowed in generated code")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            out.append(f"line {line}: '{type(node).__name__.lower()}' is not allowed")
    return out


def _region_values(region: str, body: str, default: str,
                   manifest: Manifest) -> tuple[dict[str, Any], list[str]]:
    """The literal values a region assigns and what is wrong with them."""
    problems: list[str] = []
    try:
        tree = ast.parse(body)
    except SyntaxError:
        return {}, []  # reported once for the whole file
    assigned: dict[str, ast.expr] = {}
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            assigned[node.targets[0].id] = node.value
        elif isinstance(node, ast.FunctionDef):
            defined.add(node.name)
    needed = {n.name for n in ast.parse(default).body if isinstance(n, ast.FunctionDef)}
    for name in sorted(needed - defined):
        problems.append(f"region '{region}' no longer defines {name}() (the template calls it)")
    values: dict[str, Any] = {}
    for c in manifest.configurations:
        if c.region != region:
            continue
        if c.name not in assigned:
            problems.append(f"region '{region}' no longer sets {c.name}")
            continue
        try:
            value = ast.literal_eval(assigned[c.name])
        except ValueError:
            problems.append(f"{c.name} must be a literal value ({c.describe()})")
            continue
        problem = c.problem(value)
        if problem:
            problems.append(f"{problem} (allowed: {c.describe()})")
        values[c.name] = value
    return values, problems
