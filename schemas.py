"""Cross-module shapes from ../shared/specs/planning.md: the plan that planner and selector produce.

A plan's provenance (which planner, how long it took, why the LLM planner fell back, a sub-task's
calibrated relevance) is declared as optional fields that are left out of the dump while unset,
so a plan dumps to the same JSON, key for key and in the same order, as when these were extra
keys; `extra="allow"` still keeps any other provenance a planner attaches.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _unset(value: Any) -> bool:
    return value is None


def _provenance(description: str) -> Any:
    """An optional field that is not dumped while None (absent from older plans' JSON)."""
    return Field(None, exclude_if=_unset, description=description)


class Subtask(BaseModel):
    """One sub-task routed to one registered model; `deps` are ids whose outputs it consumes."""

    model_config = ConfigDict(extra="allow")

    id: int = Field(ge=1)
    model: str
    device: str
    goal: str
    deps: list[int] = Field(default_factory=list)
    relevance: float | None = _provenance("the planner's calibrated relevance of this model")


class Plan(BaseModel):
    """A request decomposed into sub-tasks (spec: "Plan (JSON)"); extra keys carry provenance."""

    model_config = ConfigDict(extra="allow")

    request: str
    subtasks: list[Subtask] = Field(default_factory=list)
    combine: str | None = None
    unsupported: list[str] = Field(default_factory=list)
    planner: str | None = _provenance("which planner made the plan")
    seconds: float | None = _provenance("how long planning took")
    fallback_reason: str | None = _provenance("why the LLM's proposal was rejected, if it was")

    def model_ids(self) -> list[str]:
        return [s.model for s in self.subtasks]

    def edges(self) -> set[tuple[str, str]]:
        """(producer model, consumer model) pairs, the unit of dependency-edge F1."""
        by_id = {s.id: s.model for s in self.subtasks}
        return {(by_id[d], s.model) for s in self.subtasks for d in s.deps if d in by_id}


class Selection(BaseModel):
    """One sub-task with its model's manual entry and its device's tier and speeds."""

    subtask: int
    model: str
    device: str
    tier: str
    goal: str
    deps: list[int]
    inputs: list[str]
    outputs: list[str]
    compute_hz: float | None = None
    uplink_bps: float | None = None
    input_bits: float | None = None
    cycles: float | None = None


class Placement(BaseModel):
    """Where one sub-task runs and why."""

    subtask: int
    model: str
    runs_on: str
    mode: str  # "local" | "offloaded" | "hosted"
    share: float | None = None
    latency_s: float | None = None
    local_latency_s: float | None = None
    energy_j: float | None = None
    reason: str
    split: int | None = None  # split inference: the device runs stages [0, split)
