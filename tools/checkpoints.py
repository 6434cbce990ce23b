"""Reading and writing model checkpoints: the one place tools/ turns a file into weights.

Every checkpoint the tools ship or train (the AED and DROO offloading networks, the photo models
and feature codecs of split inference, the healthcare classifiers) is read through `load`: it
reads a torch file (`weights_only=True`) or a joblib file, checks the fields the caller names
(`expect`: a task or kind the file must hold), hands the payload to the caller's `build`, and
turns every way this can fail (missing file, corrupt or truncated bytes, a field or tensor shape
that does not fit this code) into one `edgeai.errors.WeightsError` whose message is one line and
names the file; `load_cached` keeps one copy per file and modification time. `save_torch` writes
the format the offloading networks share (config, float32 state dict, metadata) and `module_from`
rebuilds a module from it. torch and joblib are imported only when a checkpoint is read or written.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from edgeai.errors import WeightsError

T = TypeVar("T")

# What torch.load / joblib.load / load_state_dict raise on a corrupt, truncated or mismatched file.
_LOAD_ERRORS = (
    RuntimeError,
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    EOFError,
    OSError,
    pickle.UnpicklingError,
)


def one_line(text: object) -> str:
    """`text` with every run of whitespace (torch's multi-line messages) folded to one space."""
    return " ".join(str(text).split())


def _read(path: str | Path, what: str, *, hint: str = "",
         fmt: Literal["torch", "joblib"] = "torch") -> Any:
    """The raw payload of the checkpoint at `path`; WeightsError when it is missing or unreadable.

    `what` names the checkpoint in the message ("AED checkpoint"); `hint` says how to make one.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{what} '{path}' not found" + (f" ({hint})" if hint else ""))
    try:
        if fmt == "joblib":
            import joblib

            return joblib.load(path)
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    except _LOAD_ERRORS as exc:
        raise WeightsError(f"{what} '{path}' does not load: {one_line(exc)}") from None


def load(
    path: str | Path,
    what: str,
    build: Callable[[Any], T],
    *,
    hint: str = "",
    expect: Mapping[str, Any] | None = None,
    fmt: Literal["torch", "joblib"] = "torch",
) -> T:
    """Read `path`, check the payload's `expect` fields, and return `build(payload)`.

    A payload that is not a dict, lacks an expected field or holds another value ("a 'caption'
    model, not 'classify'"), and any error `build` raises while fitting the weights into this
    code's model, become one WeightsError naming the file.
    """
    payload = _read(path, what, hint=hint, fmt=fmt)
    if not isinstance(payload, dict):
        raise WeightsError(f"{what} '{path}' holds a {type(payload).__name__}, not a checkpoint")
    for key, want in (expect or {}).items():
        if payload.get(key) != want:
            raise WeightsError(
                f"{what} '{path}' holds {key} '{payload.get(key)}', not '{want}'"
            )
    try:
        return build(payload)
    except WeightsError:
        raise
    except _LOAD_ERRORS as exc:
        raise WeightsError(f"{what} '{path}' does not fit this code: {one_line(exc)}") from None


def load_cached(path: str | Path, what: str, build: Callable[[Any], T], *, hint: str = "") -> T:
    """`load` a torch checkpoint once per process, per file and modification time (a retrained
    file is read again); `build` is part of the key, so keep it a module-level function."""
    path = Path(path).resolve()
    mtime = path.stat().st_mtime if path.exists() else 0.0
    return _cached(str(path), mtime, what, build, hint)


@lru_cache(maxsize=8)
def _cached(path: str, mtime: float, what: str, build: Callable[[Any], T], hint: str) -> T:
    del mtime  # part of the cache key only
    return load(path, what, build, hint=hint)


def module_from(data: Mapping[str, Any], make: Callable[[Any], Any], config: type) -> Any:
    """The torch module a `save_torch` payload describes: `make(config(**data["config"]))` with
    the stored weights, in eval mode (a KeyError/RuntimeError here is "does not fit this code")."""
    module = make(config(**data["config"]))
    module.load_state_dict(data["state_dict"])
    return module.eval()


def save_torch(model: Any, path: str | Path, meta: dict[str, Any]) -> Path:
    """Weights (float32) + config + how they were made, in one torch file (any model with a
    dataclass `cfg`: the AED and the DROO network share this format)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    torch.save({"config": asdict(model.cfg), "state_dict": state, "meta": meta}, path)
    return path


__all__ = ["WeightsError", "load", "load_cached", "module_from", "one_line", "save_torch"]
