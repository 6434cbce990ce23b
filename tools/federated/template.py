"""The Flower template and its manifest: which key configurations exist, where they live in the
code (marked regions), what values they may take, and how a configuration becomes an app folder.

A template is a folder under templates/ holding `manifest.yaml`, the generated file's jinja2
source (`task.py.j2`, whose `# edgeai:region NAME` ... `# edgeai:end NAME` blocks hold the
configurations) and the fixed files (client_app.py, server_app.py) copied as they are. The
codegen agent proposes values (Optuna or an LLM), `render` writes them into the regions, an LLM
may rewrite a region's code instead, and validate.py checks the result against `skeleton` before
anything runs.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from edgeai.errors import UserInputError
from pydantic import BaseModel, Field

TEMPLATES_DIR = Path(__file__).parent / "templates"
GENERATED = "task.py"
_START = re.compile(r"^# edgeai:region (\w+)\s*$")
_END = re.compile(r"^# edgeai:end (\w+)\s*$")


class RegionError(UserInputError):
    """The region markers of a generated file are missing, renamed, nested or out of order."""


@dataclass(frozen=True)
class Configuration:
    """One key configuration: the name assigned in its region and its allowed values."""

    name: str
    region: str
    kind: str  # "categorical" | "float" | "int"
    default: Any
    help: str = ""
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False

    def problem(self, value: Any) -> str | None:
        """Why `value` is not allowed (None when it is)."""
        if self.kind == "categorical":
            if any(value == c and type(value) is type(c) for c in self.choices):
                return None
            return f"{self.name} = {value!r} is not one of {list(self.choices)}"
        number = (int,) if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, number):
            return f"{self.name} = {value!r} must be {'an integer' if self.kind == 'int' else 'a number'}"
        if not math.isfinite(value) or not self.low <= value <= self.high:
            return f"{self.name} = {value!r} is outside [{self.low}, {self.high}]"
        return None

    def describe(self) -> str:
        """The allowed values in words (for prompts and error messages)."""
        if self.kind == "categorical":
            return f"one of {list(self.choices)}"
        scale = ", log scale" if self.log else ""
        return f"{self.kind} in [{self.low}, {self.high}]{scale}"


@dataclass(frozen=True)
class Manifest:
    """A template's manifest (templates/NAME/manifest.yaml)."""

    name: str
    version: int
    task: str
    folder: Path
    configurations: tuple[Configuration, ...]
    fixed_files: tuple[str, ...]

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.region for c in self.configurations))

    def configuration(self, name: str) -> Configuration:
        for c in self.configurations:
            if c.name == name:
                return c
        raise UserInputError(f"unknown configuration '{name}' (template {self.name})")

    def defaults(self) -> dict[str, Any]:
        return {c.name: c.default for c in self.configurations}

    def problems(self, values: dict[str, Any]) -> list[str]:
        """Every reason `values` is not a complete, allowed configuration."""
        out = [f"unknown configuration '{k}'" for k in values if k not in self.names()]
        for c in self.configurations:
            if c.name not in values:
                out.append(f"{c.name} is missing")
            elif (p := c.problem(values[c.name])) is not None:
                out.append(p)
        return out

    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.configurations)

    def render(self, values: dict[str, Any], *, check: bool = True) -> str:
        """The generated file with `values` in its regions; refuses values out of range unless
        check=False (an LLM's proposal is written as given and the validator says what is wrong;
        missing values take their defaults)."""
        if check:
            problems = self.problems(values)
            if problems:
                raise UserInputError(f"configuration refused: {'; '.join(problems)}")
        else:
            values = {**self.defaults(), **values}
        return _environment(self.folder).get_template(f"{GENERATED}.j2").render(**values)

    def skeleton(self) -> tuple[str, dict[str, str]]:
        """(the generated file with every region emptied, the default regions' text)."""
        return split_regions(self.render(self.defaults()))

    def write_app(self, text: str, app_dir: Path) -> Path:
        """An app folder: the generated task.py, the fixed files and the app's pyproject.toml."""
        app_dir.mkdir(parents=True, exist_ok=True)
        for name in self.fixed_files:
            shutil.copyfile(self.folder / name, app_dir / name)
        (app_dir / GENERATED).write_text(text, encoding="utf-8")
        # Flower app names: letters, digits and hyphens, at most 32 characters
        app = re.sub(r"[^A-Za-z0-9]+", "-", self.name)[:22].strip("-")
        (app_dir / "pyproject.toml").write_text(pyproject_text(self.name, app), encoding="utf-8")
        return app_dir


def pyproject_text(name: str, app: str,
                   description: str = "A Flower app written by edgeai's codegen agent") -> str:
    """The pyproject.toml of a Flower app folder whose components are server_app:app and
    client_app:app (the job file's path comes as the run config's "job")."""
    return _PYPROJECT.format(name=name, app=app, description=description)


_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
license = "Apache-2.0"
name = "edgeai-fl-{app}"
version = "1.0.0"
description = "{description} ({name})"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "edgeai"

[tool.flwr.app.components]
serverapp = "server_app:app"
clientapp = "client_app:app"

[tool.flwr.app.config]
job = ""
"""


def _pyfloat(value: Any) -> str:
    return repr(float(value))


def _pybool(value: Any) -> str:
    return "True" if value else "False"


@lru_cache(maxsize=4)
def _environment(folder: Path) -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pyfloat"] = _pyfloat
    env.filters["pybool"] = _pybool
    env.filters["tojson"] = json.dumps
    return env


def split_regions(text: str) -> tuple[str, dict[str, str]]:
    """(text with each region's body removed, {region: body}); RegionError on bad markers."""
    outside: list[str] = []
    bodies: dict[str, str] = {}
    current: str | None = None
    body: list[str] = []
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        start, end = _START.match(line), _END.match(line)
        if start:
            if current is not None:
                raise RegionError(f"line {n}: region '{start[1]}' opens inside region '{current}'")
            if start[1] in bodies:
                raise RegionError(f"line {n}: region '{start[1]}' appears twice")
            current, body = start[1], []
            outside.append(line)
        elif end:
            if end[1] != current:
                raise RegionError(f"line {n}: 'end {end[1]}' does not close region '{current}'")
            bodies[current] = "".join(body)
            current = None
            outside.append(line)
        elif current is not None:
            body.append(line)
        else:
            outside.append(line)
    if current is not None:
        raise RegionError(f"region '{current}' is never closed")
    return "".join(outside), bodies


def join_regions(skeleton: str, bodies: dict[str, str]) -> str:
    """The inverse of split_regions: put region bodies back into an emptied file."""
    out: list[str] = []
    for line in skeleton.splitlines(keepends=True):
        out.append(line)
        start = _START.match(line)
        if start:
            body = bodies.get(start[1], "")
            out.append(body if not body or body.endswith("\n") else body + "\n")
    return "".join(out)


class SearchSpace(BaseModel):
    """The part of the manifest's space still open: per configuration, a fixed value, a list of
    choices or a [low, high] window (the FL-tuner narrows it between trials)."""

    fixed: dict[str, Any] = Field(default_factory=dict)
    choices: dict[str, list[Any]] = Field(default_factory=dict)
    windows: dict[str, tuple[float, float]] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


@lru_cache(maxsize=4)
def load_manifest(name: str = "image_classification") -> Manifest:
    """The manifest of a shipped template."""
    folder = TEMPLATES_DIR / name
    path = folder / "manifest.yaml"
    if not path.is_file():
        known = sorted(p.name for p in TEMPLATES_DIR.iterdir() if (p / "manifest.yaml").is_file())
        raise UserInputError(f"unknown template '{name}' (known: {', '.join(known)})")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    configs = tuple(
        Configuration(
            name=c["name"], region=c["region"], kind=c["kind"], default=c["default"],
            help=c.get("help", ""), choices=tuple(c.get("choices", ())), low=c.get("low"),
            high=c.get("high"), log=bool(c.get("log", False)),
        )
        for c in raw["configurations"]
    )
    return Manifest(name=raw["template"], version=int(raw["version"]), task=raw["task"],
                    folder=folder, configurations=configs,
                    fixed_files=tuple(raw["files"]["fixed"]))
