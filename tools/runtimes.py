"""Where a model id actually runs: dispatch to the installed runtimes (healthcare home, photo pool).

A runtime is a module with `known_model_ids()` and `run_model(model_id, upstream, day, seed)`.
Models declared in manuals but not installed in any runtime raise ModelNotInstalledError, and the
answer says so: an output is never invented.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from edgeai.tools.healthcare.errors import ModelNotInstalledError
from edgeai.tools.healthcare.runtime import ModelResult

RUNTIME_MODULES = [
    "edgeai.tools.healthcare.runtime",
    "edgeai.tools.split_inference.service",  # photo pool: device/edge split inference
]


def _runtimes() -> list[Any]:
    return [importlib.import_module(name) for name in RUNTIME_MODULES]


def installed_models() -> dict[str, str]:
    """{model id: runtime module} for every model some runtime can execute."""
    out: dict[str, str] = {}
    for runtime in _runtimes():
        for mid in runtime.known_model_ids():
            out.setdefault(mid, runtime.__name__)
    return out


def run_installed(
    model_id: str,
    upstream: Mapping[str, Any],
    day: dt.date,
    seed: int,
    placement: Mapping[str, Any] | None = None,
    request: str | None = None,
) -> ModelResult:
    """Run a model in the runtime that installs it; `placement` (where the offloading agent put
    it) and `request` (the person's words) reach runtimes whose run_model takes them."""
    module = installed_models().get(model_id)
    if module is None:
        raise ModelNotInstalledError(model_id, "not installed in any runtime yet")
    run = importlib.import_module(module).run_model
    accepted = inspect.signature(run).parameters
    extra = {
        name: value
        for name, value in (("placement", placement), ("request", request))
        if name in accepted
    }
    return run(model_id, upstream, day, seed, **extra)


__all__ = ["ModelNotInstalledError", "ModelResult", "installed_models", "run_installed"]
