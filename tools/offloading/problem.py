"""Instance and decision files of specs/offloading.md: pydantic models, readers, writers.

Everything that crosses a module boundary (CLI, API, agents, benchmarks) goes through these
models, so a malformed file is refused here with one line naming the field, and fast code
reads the same numbers through `Instance.arrays` (read-only numpy views).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import numpy as np
from edgeai.errors import EdgeAIError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

Objective = Literal["min_latency", "min_energy"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)
LOCAL = "local"  # reserved target name: never a server id

# Numbers in the files: ints or floats, never bools or numeric strings, never NaN/inf.
PositiveNum = Annotated[float, Field(strict=True, gt=0)]
NonNegativeNum = Annotated[float, Field(strict=True, ge=0)]
Num = Annotated[float, Field(strict=True)]


class InstanceError(EdgeAIError):
    """An instance or decision file (or dict) is malformed; the message names the field."""


def _field_error(field: str, message: str) -> PydanticCustomError:
    # Raised inside validators so that direct construction and file loading report alike.
    return PydanticCustomError(
        "offloading_field", "{message}", {"field": field, "message": message}
    )


_MODEL_CONFIG = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)


class Server(BaseModel):
    """An edge server; `capacity_hz` is the CPU it divides among the tasks offloaded to it."""

    model_config = _MODEL_CONFIG

    id: Annotated[str, Field(strict=True, min_length=1)]
    capacity_hz: PositiveNum


class UE(BaseModel):
    """A user equipment with its one indivisible task."""

    model_config = _MODEL_CONFIG

    id: Annotated[str, Field(strict=True, min_length=1)]
    data_bits: NonNegativeNum
    cycles: PositiveNum
    local_hz: PositiveNum
    tx_power_w: NonNegativeNum
    local_power_w: NonNegativeNum
    deadline_s: PositiveNum


@dataclass(frozen=True)
class InstanceArrays:
    """Read-only numpy view of an instance, named as in the spec (d c f p q D per UE, F, R)."""

    d: np.ndarray  # (N,) data_bits
    c: np.ndarray  # (N,) cycles
    f: np.ndarray  # (N,) local_hz
    p: np.ndarray  # (N,) tx_power_w
    q: np.ndarray  # (N,) local_power_w
    D: np.ndarray  # (N,) deadline_s
    F: np.ndarray  # (M,) capacity_hz
    R: np.ndarray  # (N, M) rate_bps

    @property
    def n(self) -> int:
        return int(self.d.shape[0])

    @property
    def m(self) -> int:
        return int(self.F.shape[0])


def _frozen(values: list[Any], shape: tuple[int, ...] | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if shape is not None:
        array = array.reshape(shape)
    array.flags.writeable = False
    return array


class Instance(BaseModel):
    """N UEs, M servers and the N x M uplink rates; unknown extra keys are kept and written back."""

    model_config = _MODEL_CONFIG

    objective: Objective
    servers: list[Server]
    ues: Annotated[list[UE], Field(min_length=1)]
    rate_bps: list[list[NonNegativeNum]]

    @model_validator(mode="after")
    def _check_structure(self) -> Instance:
        m = len(self.servers)
        if len(self.rate_bps) != len(self.ues):
            raise _field_error(
                "rate_bps", f"has {len(self.rate_bps)} rows, expected {len(self.ues)} (one per UE)"
            )
        for i, row in enumerate(self.rate_bps):
            if len(row) != m:
                raise _field_error(
                    "rate_bps", f"row {i} has {len(row)} entries, expected {m} (one per server)"
                )
        for kind, items in (("servers", self.servers), ("ues", self.ues)):
            seen: set[str] = set()
            for k, item in enumerate(items):
                if item.id in seen:
                    raise _field_error(f"{kind}[{k}].id", f"duplicate id '{item.id}'")
                seen.add(item.id)
        for k, server in enumerate(self.servers):
            if server.id == LOCAL:
                raise _field_error(
                    f"servers[{k}].id", f"'{LOCAL}' is reserved and cannot be a server id"
                )
        return self

    @property
    def n(self) -> int:
        return len(self.ues)

    @property
    def m(self) -> int:
        return len(self.servers)

    @cached_property
    def arrays(self) -> InstanceArrays:
        """The instance as float64 arrays (computed once; the model is frozen)."""
        ues = self.ues
        return InstanceArrays(
            d=_frozen([u.data_bits for u in ues]),
            c=_frozen([u.cycles for u in ues]),
            f=_frozen([u.local_hz for u in ues]),
            p=_frozen([u.tx_power_w for u in ues]),
            q=_frozen([u.local_power_w for u in ues]),
            D=_frozen([u.deadline_s for u in ues]),
            F=_frozen([s.capacity_hz for s in self.servers]),
            R=_frozen(self.rate_bps, (self.n, self.m)),
        )

    @cached_property
    def server_index(self) -> dict[str, int]:
        return {s.id: j for j, s in enumerate(self.servers)}

    @cached_property
    def ue_index(self) -> dict[str, int]:
        return {u.id: i for i, u in enumerate(self.ues)}

    def with_objective(self, objective: str | None) -> Instance:
        """The same instance under another objective (None keeps the file's)."""
        if objective is None or objective == self.objective:
            return self
        return self.model_copy(update={"objective": _check_objective(objective)})

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Assignment(BaseModel):
    """Where one UE's task runs; `share` is the fraction of the target server's CPU."""

    model_config = _MODEL_CONFIG

    ue: Annotated[str, Field(strict=True, min_length=1)]
    target: Annotated[str, Field(strict=True, min_length=1)]
    # Range (0, 1] is a feasibility constraint the scorer reports, not a parse error.
    share: Num | None = None

    @property
    def is_local(self) -> bool:
        return self.target == LOCAL


class Decision(BaseModel):
    """A solver's answer for one instance under one objective."""

    model_config = _MODEL_CONFIG

    objective: Objective
    solver: Annotated[str, Field(strict=True, min_length=1)]
    assignments: list[Assignment]
    solve_seconds: NonNegativeNum

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        for item in data["assignments"]:
            if item.get("share") is None:  # absent when local, as the spec writes it
                item.pop("share", None)
        return data


def _check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise InstanceError(
            f"field 'objective': unknown objective '{objective}' "
            f"(expected one of {', '.join(OBJECTIVES)})"
        )
    return objective


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def error_line(exc: ValidationError, source: str | None = None) -> str:
    """One line for a validation error: where (file and field) and what; the first error only."""
    errors = exc.errors()
    first = errors[0]
    if first["type"] == "offloading_field":
        field, message = first["ctx"]["field"], first["ctx"]["message"]
    else:
        field, message = _format_loc(first["loc"]) or "(top level)", first["msg"]
        if first["type"] == "missing":
            message = "missing required key"
        elif first["type"] == "literal_error" and first["loc"][-1] == "objective":
            message = (
                f"unknown objective {first['input']!r} (expected one of {', '.join(OBJECTIVES)})"
            )
    more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
    prefix = f"{source}: " if source else ""
    return f"{prefix}field '{field}': {message}{more}"


def instance_from_dict(
    data: dict[str, Any], objective: str | None = None, *, source: str | None = None
) -> Instance:
    """Validate a dict as an instance; `objective` overrides (or supplies) the file's objective."""
    if not isinstance(data, dict):
        raise InstanceError(f"{source + ': ' if source else ''}an instance must be a JSON object")
    if objective is not None:
        data = {**data, "objective": _check_objective(objective)}
    try:
        return Instance.model_validate(data)
    except ValidationError as exc:
        raise InstanceError(error_line(exc, source)) from None


def decision_from_dict(data: dict[str, Any], *, source: str | None = None) -> Decision:
    """Validate a dict as a decision (feasibility is the scorer's business, not this one's)."""
    if not isinstance(data, dict):
        raise InstanceError(f"{source + ': ' if source else ''}a decision must be a JSON object")
    try:
        return Decision.model_validate(data)
    except ValidationError as exc:
        raise InstanceError(error_line(exc, source)) from None


def _read_json(path: str | Path) -> Any:
    from edgeai.errors import UserInputError
    from edgeai.inputs import read_json_file

    try:
        return read_json_file(Path(path))
    except UserInputError as exc:
        raise InstanceError(str(exc)) from None


def load_instance(path: str | Path, objective: str | None = None) -> Instance:
    """Read and validate an instance file; errors name the file and the field."""
    return instance_from_dict(_read_json(path), objective, source=str(path))


def load_decision(path: str | Path) -> Decision:
    """Read and validate a decision file; errors name the file and the field."""
    return decision_from_dict(_read_json(path), source=str(path))


def _write_json(data: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Plain JSON only: the validators already refused NaN and inf.
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return path


def write_instance(instance: Instance, path: str | Path) -> Path:
    return _write_json(instance.to_dict(), path)


def write_decision(decision: Decision, path: str | Path) -> Path:
    return _write_json(decision.to_dict(), path)

