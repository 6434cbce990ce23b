"""Where a model id actually runs: dispatch to the installed runtimes (healthcare home so far).

A runtime is a module with `known_model_ids()` and `run_model(model_id, upstream, day, seed)`.
Models declared in manuals but not installed in any runtime raise ModelNotInstalledError, and the
answer says so: an output is never invented.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Mapping
from typing import Any

from edgeai.tools.healthcare.errors import ModelNotInstalledError
from edgeai.tools.healthcare.runtime import ModelResult

RUNTIME_MODULES = ["edgeai.tools.healthcare.runtime"]


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
    model_id: str, upstream: Mapping[str, Any], day: dt.date, seed: int
) -> ModelResult:
    module = installed_models().get(model_id)
    if module is None:
        raise ModelNotInstalledError(model_id, "not installed in any runtime yet")
    return importlib.import_module(module).run_model(model_id, upstream, day, seed)


__all__ = ["ModelNotInstalledError", "ModelResult", "installed_models", "run_installed"]
