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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol

from edgeai.agents.codegen import Proposal, Rejection
from edgeai.agents.responder import RunResult
from edgeai.errors import EdgeAIError
from edgeai.knowledge.store import KnowledgeStore
from edgeai.schemas import Placement, Plan, Selection
from edgeai.tools.federated.template import SearchSpace
from edgeai.tools.federated.trial import PreparedData, TrialRecord
from pydantic import BaseModel, Field, ValidationError, field_validator


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


class FLOptions(BaseModel):
    """How automatic federated learning trains (per run: `edgeai fl auto` flags, `ask --yes`)."""

    data: str = Field("generated", description="generated, digits or cifar10:PATH")
    clients: int = Field(10, ge=1, description="the paper's set-up: 10 clients")
    rounds: int = Field(10, ge=1, description="global rounds per trial")
    trials: int = Field(3, ge=1, description="at most this many trials")
    scheme: str = Field("iid", description="iid or dirichlet")
    alpha: float = Field(0.5, gt=0, description="Dirichlet concentration (non-IID)")
    n_train: int | None = Field(None, ge=1, description="use only this many training examples")
    seed: int = 0
    target: float | None = Field(None, description="stop once validation accuracy reaches it")
    patience: int = Field(2, ge=1, description="stop after this many trials without gain")
    budget: int | None = Field(
        None, ge=1, description="most client-epochs the trials may spend together (one client "
        "training one local epoch); None: no cap beyond the trials' own ranges")
    seconds: float = Field(1800.0, gt=0, description="time limit of one sandboxed trial")
    memory_mb: int = Field(6144, ge=256, description="memory cap of one sandboxed trial")
    template: str = "image_classification"
    # federated fine-tuning of the language model (a request to adapt the assistant)
    fedtune_base: str | None = Field(None, description="local LM folder or .gguf (default SmolLM2)")
    fedtune_users: int = Field(4, ge=1, description="simulated users whose text adapts the model")
    fedtune_rounds: int = Field(3, ge=1, description="federated fine-tuning rounds")
    fedtune_corpus: str = Field("auto", description="auto, fortunes or generated (offline text)")

    @field_validator("data")
    @classmethod
    def _data(cls, value: str) -> str:
        from edgeai.tools.federated.data import check_spec

        return check_spec(value)


class Training(BaseModel):
    """The training loop's record in the state: data, trials, the open proposal, the outcome."""

    graph_run: str = Field(description="the graph run (one ask) that started it")
    run_id: str
    dir: str
    purpose: str
    options: FLOptions
    data: PreparedData
    trials: list[TrialRecord] = Field(default_factory=list)
    space: SearchSpace = Field(default_factory=SearchSpace)
    proposal: Proposal | None = None
    rejections: list[Rejection] = Field(default_factory=list)
    approved: bool = False
    stop: str | None = None
    model: str | None = None
    best_trial: int | None = None


class EdgeState(BaseModel):
    """Only what changes between nodes; lists that grow across turns have a reducer."""

    request: str = ""
    run: str = ""
    """id of the run (one `ask`) now writing: trace steps carry it, so a turn's trace never
    holds the steps of a run killed before it (older threads: "")."""
    effective_request: str = ""
    image: str | None = None
    """the person's photo for this turn (a PNG under the data home's photos/), or None"""
    day: str = ""
    plan: Plan | None = None
    selection: list[Selection] = Field(default_factory=list)
    placements: list[Placement] = Field(default_factory=list)
    offloading: dict[str, Any] | None = None  # the solved instance, decision and score (spec JSON)
    results: list[RunResult] = Field(default_factory=list)
    train: bool = False
    """the plan found no model but the request names a task the template can train"""
    training: Training | None = None
    """automatic federated learning, when the request asked for a model nobody serves"""
    answer: str = ""
    history: Annotated[list[Turn], operator.add] = Field(default_factory=list)
    trace: Annotated[list[dict[str, Any]], operator.add] = Field(default_factory=list)


def trace_step(node: str, started: float, state: EdgeState, **data: Any) -> dict[str, Any]:
    """A node's trace entry (node, turn, run, seconds since `started`, what it decided)."""
    import time

    seconds = round(time.perf_counter() - started, 4)
    step = {"node": node, "turn": len(state.history), "run": state.run, "seconds": seconds, **data}
    _write(step)
    return {"trace": [step]}


def _write(step: dict[str, Any]) -> None:
    """The step as a `custom` stream part too (a no-op unless the caller streams "custom"), so
    a client sees the plan, the chosen models, the offloading decision and each model's output
    as each node finishes rather than at the end."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except RuntimeError:  # called outside a graph run (a node called by hand)
        return
    writer({"step": step})


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
    home: Path | None = None
    """the data home (training writes its runs and registered models there)"""
    approve: bool = False
    """approve generated code without asking (`--yes`); otherwise the graph interrupts"""
    fl: FLOptions | None = None
    """how to train when a request needs a new model (None: the defaults)"""
    codegen_model: Any = None
    """a LangChain chat model for the codegen agent (None: the embedded Optuna search)"""
    progress: Callable[[dict[str, Any]], None] | None = None
    """called with training events (trial start, each round, registration) for progress bars"""
    replan: Callable[[], Any] | None = None
    """rebuilds the planner after a model is registered (the store changed)"""
