"""The one contract every model that really runs implements, and where a model id runs.

A `ModelRuntime` says which model ids it serves and runs one of them as a `RunCall` asks: for a
day and a household seed, given its producers' outputs (`upstream`), where the offloading agent
placed it (`placement`) and the person's words (`request`); it returns a `ModelResult`. The runtimes this
package ships (the healthcare home, the photo pool's split inference) are listed explicitly in
`builtin_runtimes`; anything else (a model trained later) joins with `register`. Models declared
in manuals but served by no runtime raise ModelNotInstalledError, and the answer says so: an
output is never invented. Importing this module is cheap (no torch, no models): the built-in
runtimes are imported on the first look-up and load their weights on their first run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from edgeai.errors import EdgeAIError
from pydantic import BaseModel, Field


class ModelResult(BaseModel):
    """What one model run returns."""

    model: str
    device: str
    outputs: dict[str, Any] = Field(description="keyed by the model's declared output names")
    summary: str = Field(description="one sentence for a person")
    details: dict[str, Any] = Field(default_factory=dict, description="signal stats, ground truth")
    seconds: float = Field(description="wall time of the run")


@dataclass(frozen=True)
class RunCall:
    """One run of one model: everything a runtime is told."""

    model_id: str
    day: dt.date
    seed: int
    """the household / camera seed the day's inputs are drawn from"""
    upstream: Mapping[str, Any] = field(default_factory=dict)
    """outputs of the sub-tasks this one depends on, by output name"""
    placement: Mapping[str, Any] | None = None
    """the offloading agent's placement as JSON (schemas.Placement); None: run where it is"""
    request: str | None = None
    """the person's words, for models that read them (a question about a photo)"""
    image: str | None = None
    """the person's own photo (a PNG kept in the data home), for models that read a photo;
    None: the household camera's photo of the day"""


class ModelNotInstalledError(EdgeAIError):
    """The model id is unknown here, declared by a device but has no runtime, or lacks its weights."""

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        super().__init__(f"model '{model}' is not installed: {reason}")


@runtime_checkable
class ModelRuntime(Protocol):
    """A family of models that runs here; `run` may ignore `placement` and `request`."""

    name: str
    """who serves the models, for listings ("healthcare home", "photo split inference")"""

    def model_ids(self) -> Sequence[str]:
        """The model ids this runtime executes (cheap: no weights are loaded)."""
        ...

    def run(self, call: RunCall) -> ModelResult:
        """Run `call.model_id` once; typed EdgeAIErrors for bad inputs or missing weights."""
        ...


_REGISTERED: list[ModelRuntime] = []


def register(runtime: ModelRuntime) -> ModelRuntime:
    """Add a runtime after the built-in ones (a model id already served keeps its runtime)."""
    if not isinstance(runtime, ModelRuntime):
        raise TypeError(f"{runtime!r} does not implement ModelRuntime (name, model_ids, run)")
    if all(r is not runtime for r in _REGISTERED):
        _REGISTERED.append(runtime)
    return runtime


def builtin_runtimes() -> list[ModelRuntime]:
    """The runtimes this package ships (imported here, on first use: the photo one needs torch)."""
    from edgeai.tools.healthcare.runtime import RUNTIME as healthcare
    from edgeai.tools.split_inference.service import RUNTIME as photo

    return [healthcare, photo]


def runtimes() -> list[ModelRuntime]:
    """Every runtime, built-in first, then registered ones in registration order."""
    return [*builtin_runtimes(), *_REGISTERED]


def installed_models() -> dict[str, ModelRuntime]:
    """{model id: the runtime that executes it} for every model some runtime can execute."""
    out: dict[str, ModelRuntime] = {}
    for runtime in runtimes():
        for mid in runtime.model_ids():
            out.setdefault(mid, runtime)
    return out


def run_installed(call: RunCall) -> ModelResult:
    """`ModelRuntime.run` on the runtime that serves `call.model_id` (the graph's one call);
    raises ModelNotInstalledError when none does."""
    runtime = installed_models().get(call.model_id)
    if runtime is None:
        raise ModelNotInstalledError(call.model_id, "not installed in any runtime yet")
    return runtime.run(call)


__all__ = [
    "ModelNotInstalledError",
    "ModelResult",
    "ModelRuntime",
    "RunCall",
    "builtin_runtimes",
    "installed_models",
    "register",
    "run_installed",
    "runtimes",
]
