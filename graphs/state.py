"""Graph state (checkpointed per thread) and per-run context (not checkpointed).

`EdgeState` is a pydantic model: LangGraph validates the checkpointed channels into it before each
node runs, so nodes read typed fields (`state.plan.subtasks`, `s.model`), never dict keys. Nodes
write plain JSON (`model_dump(mode="json")`) back, so what the SQLite checkpointer stores is the
same JSON the graph wrote before the state was typed: threads written by older versions load as
they are, and a thread whose stored shape no longer validates is refused with one line
(`CheckpointShapeError`, raised by `check_thread_state`).
"""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from edgeai.agents.responder import RunResult
from edgeai.errors import EdgeAIError
from edgeai.knowledge.store import KnowledgeStore
from edgeai.schemas import Placement, Plan, Selection
from pydantic import BaseModel, Field, ValidationError


class Planner(Protocol):
    name: str

    def plan(self, request: str) -> Plan: ...


class CheckpointShapeError(EdgeAIError):
    """A checkpointed thread whose stored state this version cannot read."""


class Turn(BaseModel):
    """One finished exchange of the thread: what was asked, what it meant, what was answered."""

    request: str
    effective_request: str
    day: str
    answer: str


class EdgeState(BaseModel):
    """Only what changes between nodes; lists that grow across turns have a reducer."""

    request: str = ""
    run: str = ""
    """id of the run (one `ask`) now writing: trace steps carry it, so a turn's trace never
    holds the steps of a run killed before it (older threads: "")."""
    effective_request: str = ""
    day: str = ""
    plan: Plan | None = None
    selection: list[Selection] = Field(default_factory=list)
    placements: list[Placement] = Field(default_factory=list)
    offloading: dict[str, Any] | None = None  # the solved instance, decision and score (spec JSON)
    results: list[RunResult] = Field(default_factory=list)
    answer: str = ""
    history: Annotated[list[Turn], operator.add] = Field(default_factory=list)
    trace: Annotated[list[dict[str, Any]], operator.add] = Field(default_factory=list)


def check_thread_state(thread: str, values: dict[str, Any]) -> EdgeState:
    """The stored state of a thread as this version reads it, or a one-line refusal."""
    try:
        return EdgeState.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CheckpointShapeError(
            f"thread '{thread}' was saved in a shape this version cannot read "
            f"(field '{where}': {first['msg']}); start a new thread (omit --thread)"
        ) from None


@dataclass
class EdgeContext:
    """Per-run settings and handles, passed as `context=` (nodes never read the environment)."""

    store: KnowledgeStore
    planner: Planner
    today: dt.date = field(default_factory=dt.date.today)
    seed: int = 0
    objective: str = "min_latency"
    solver: str | None = None
