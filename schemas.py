"""Cross-module shapes from ../shared/specs/planning.md: the plan that planner and selector produce."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Subtask(BaseModel):
    """One sub-task routed to one registered model; `deps` are ids whose outputs it consumes."""

    model_config = ConfigDict(extra="allow")

    id: int = Field(ge=1)
    model: str
    device: str
    goal: str
    deps: list[int] = Field(default_factory=list)


class Plan(BaseModel):
    """A request decomposed into sub-tasks (spec: "Plan (JSON)"); extra keys carry provenance."""

    model_config = ConfigDict(extra="allow")

    request: str
    subtasks: list[Subtask] = Field(default_factory=list)
    combine: str | None = None
    unsupported: list[str] = Field(default_factory=list)

    def model_ids(self) -> list[str]:
        return [s.model for s in self.subtasks]

    def edges(self) -> set[tuple[str, str]]:
        """(producer model, consumer model) pairs, the unit of dependency-edge F1."""
        by_id = {s.id: s.model for s in self.subtasks}
        return {(by_id[d], s.model) for s in self.subtasks for d in s.deps if d in by_id}
