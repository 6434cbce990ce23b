"""Graph state (checkpointed per thread) and per-run context (not checkpointed)."""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, TypedDict

from edgeai.knowledge.store import KnowledgeStore
from edgeai.schemas import Plan


class Planner(Protocol):
    name: str

    def plan(self, request: str) -> Plan: ...


class Turn(TypedDict):
    """One finished exchange of the thread: what was asked, what it meant, what was answered."""

    request: str
    effective_request: str
    day: str
    answer: str


class EdgeState(TypedDict, total=False):
    """Only what changes between nodes; lists that grow across turns have a reducer."""

    request: str
    effective_request: str
    day: str
    plan: dict[str, Any]
    selection: list[dict[str, Any]]
    placements: list[dict[str, Any]]
    offloading: dict[str, Any] | None
    results: list[dict[str, Any]]
    answer: str
    history: Annotated[list[Turn], operator.add]
    trace: Annotated[list[dict[str, Any]], operator.add]


@dataclass
class EdgeContext:
    """Per-run settings and handles, passed as `context=` (nodes never read the environment)."""

    store: KnowledgeStore
    planner: Planner
    today: dt.date = field(default_factory=dt.date.today)
    seed: int = 0
    objective: str = "min_latency"
    solver: str | None = None
