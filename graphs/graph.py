"""The request graph: plan -> choose models -> place work -> run models -> respond.

A plan that nothing in the store can serve branches to the training sub-graph (graphs/training.py:
codegen -> validate -> approve -> run -> tune -> register) when the request asks for a task the
shipped template can train, and then plans the request again with the new model; otherwise to
`report_missing`, which says what model would be needed. Nodes read the
typed `EdgeState` and write JSON (state.py says why); `build_graph` compiles the wiring and
`sqlite_checkpointer` is the default place threads are kept. The app's assembly around it
(store, planner, checkpointer) is graphs/app.py.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path
from typing import Any, Literal

from edgeai.agents.codegen import LANGUAGE_ADAPTATION, trainable_task
from edgeai.agents.conversation import day_of, looks_like_followup
from edgeai.agents.model_selector import select_models
from edgeai.agents.offloading import place_work
from edgeai.agents.planning.visual import route_visual_question
from edgeai.agents.responder import (
    RunResult,
    compose_answer,
    missing_model_answer,
    result_record,
)
from edgeai.errors import EdgeAIError
from edgeai.graphs.fedtune import fedtune_language_model
from edgeai.graphs.state import EdgeContext, EdgeState, Turn
from edgeai.graphs.state import trace_step as _step
from edgeai.graphs.training import add_training_nodes, training_summary
from edgeai.tools.runtimes import ModelNotInstalledError, RunCall, run_installed
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel


def _json(items: list[BaseModel]) -> list[dict[str, Any]]:
    """What a node writes to the state: plain JSON, so checkpoints stay JSON (see state.py)."""
    return [i.model_dump(mode="json") for i in items]


def plan_request(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    """Plan the request; an elliptical follow-up re-plans the thread's previous request."""
    started = time.perf_counter()
    ctx = runtime.context
    effective = state.request
    day = day_of(state.request, ctx.today)
    plan = ctx.planner.plan(state.request)
    followup = False
    if not plan.subtasks and state.history and looks_like_followup(state.request):
        # "and what about yesterday?": no task of its own, so re-ask the previous one
        previous = state.history[-1]
        followup = True
        effective = previous.effective_request
        if day == ctx.today:  # no day word of its own: keep the previous day
            day = dt.date.fromisoformat(previous.day)
        plan = ctx.planner.plan(effective)
    plan = route_visual_question(plan, ctx.store.models, effective, state.image is not None)
    trained_now = state.training is not None and state.training.graph_run == state.run
    update = {
        "train": bool(not plan.subtasks and ctx.home is not None and not trained_now
                      and trainable_task(effective)),
        "effective_request": effective,
        "day": day.isoformat(),
        "plan": plan.model_dump(mode="json"),
        "selection": [],
        "placements": [],
        "offloading": None,
        "results": [],
    }
    return update | _step(
        "plan_request",
        started,
        state,
        planner=ctx.planner.name,
        followup=followup,
        effective_request=effective,
        day=day.isoformat(),
        plan=update["plan"],
    )


def route_after_plan(
    state: EdgeState,
) -> Literal["choose_models", "prepare_training", "fedtune_language_model", "report_missing"]:
    if state.plan is None:
        raise ValueError("route_after_plan reached without a plan in the state")
    if state.plan.subtasks:
        return "choose_models"
    if not state.train:
        return "report_missing"
    if trainable_task(state.effective_request or state.request) == LANGUAGE_ADAPTATION:
        return "fedtune_language_model"
    return "prepare_training"


def _trained_now(state: EdgeState) -> str:
    """The training summary when this run trained (answers start with it), else ""."""
    t = state.training
    return training_summary(t) + "\n\n" if t is not None and t.graph_run == state.run else ""


def choose_models(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    started = time.perf_counter()
    rows = _json(select_models(state.plan, runtime.context.store))
    return {"selection": rows} | _step("choose_models", started, state, selection=rows)


def place_work_node(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    started = time.perf_counter()
    ctx = runtime.context
    placements, record = place_work(state.selection, ctx.store, ctx.objective, ctx.solver)
    rows = _json(placements)
    return {"placements": rows, "offloading": record} | _step(
        "place_work", started, state, placements=rows, offloading=record
    )


def run_models(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    """Run each sub-task after its producers; a consumer gets its producers' outputs."""
    started = time.perf_counter()
    ctx = runtime.context
    day = dt.date.fromisoformat(state.day)
    outputs: dict[int, dict[str, Any]] = {}
    results: list[RunResult] = []
    # runtimes take the placement as the JSON the offloading agent wrote (the runtime contract)
    placements = {p.subtask: p.model_dump(mode="json") for p in state.placements}
    for s in state.selection:
        upstream: dict[str, Any] = {}
        for d in s.deps:
            upstream.update(outputs.get(d, {}))
        try:
            outcome = run_installed(
                RunCall(
                    s.model,
                    day,
                    ctx.seed,
                    upstream=upstream,
                    placement=placements.get(s.subtask),
                    request=state.effective_request or state.request,
                    image=state.image,
                )
            )
        except ModelNotInstalledError as exc:
            results.append(result_record(s.subtask, s.model, error=f"not installed yet: {exc}"))
            continue
        except EdgeAIError as exc:  # a missing input (upstream did not run), an unreachable edge
            results.append(result_record(s.subtask, s.model, error=str(exc)))
            continue
        outputs[s.subtask] = outcome.outputs
        results.append(result_record(s.subtask, s.model, outcome))
    rows = _json(results)
    return {"results": rows} | _step("run_models", started, state, results=rows)


def respond(state: EdgeState) -> dict[str, Any]:
    started = time.perf_counter()
    answer = compose_answer(state.day, state.plan, state.placements, state.results)
    return _finish(state, _trained_now(state) + answer, "respond", started)


def report_missing(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    """No registered model fits: say so and what would be needed (the codegen/FL path's seat)."""
    started = time.perf_counter()
    needed = [f'a model that serves "{state.effective_request}"']
    answer = missing_model_answer(state.plan, needed)
    return _finish(state, _trained_now(state) + answer, "report_missing", started)


def _finish(state: EdgeState, answer: str, node: str, started: float) -> dict[str, Any]:
    turn = Turn(
        request=state.request,
        effective_request=state.effective_request,
        day=state.day,
        answer=answer,
    )
    return {"answer": answer, "history": [turn.model_dump()]} | _step(
        node, started, state, answer=answer
    )


def build_graph(checkpointer: Any = None):
    """Compile the graph; pass a checkpointer to keep threads across calls."""
    builder = StateGraph(EdgeState, context_schema=EdgeContext)
    builder.add_node(plan_request)
    builder.add_node(choose_models)
    builder.add_node("place_work", place_work_node)
    builder.add_node(run_models)
    builder.add_node(respond)
    builder.add_node(report_missing)
    builder.add_edge(START, "plan_request")
    builder.add_conditional_edges(
        "plan_request", route_after_plan,
        ["choose_models", "prepare_training", "fedtune_language_model", "report_missing"],
    )
    builder.add_node(fedtune_language_model)
    builder.add_edge("fedtune_language_model", END)
    add_training_nodes(builder, after_register="plan_request", after_decline="report_missing")
    builder.add_edge("choose_models", "place_work")
    builder.add_edge("place_work", "run_models")
    builder.add_edge("run_models", "respond")
    builder.add_edge("respond", END)
    builder.add_edge("report_missing", END)
    return builder.compile(checkpointer=checkpointer)


def sqlite_checkpointer(path: Path) -> SqliteSaver:
    """The default checkpointer: one SQLite file under the data home."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))
