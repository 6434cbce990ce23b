"""The Agent Server API's HTTP edge: assistants, threads and runs, as `langgraph_sdk` calls them.

Each resource has its router and its request schemas; the work is in `runs.Runs` (runs, records)
and `views` (what clients read). Typed errors from there become HTTP statuses here and only here:
unknown assistant/thread/run 404, busy or finished 409, refused input 422. One assistant is
served, `edgeai` (graph_id `edgeai`): the request graph of graphs/graph.py.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import anyio
from edgeai.graphs.api.records import now
from edgeai.graphs.api.runs import ASSISTANT, NotFound, Run, RunCreate, Runs
from edgeai.graphs.api.views import RunContext, RunInput, jsonable, state_keys, thread_state
from edgeai.graphs.state import EdgeState
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette.sse import EventSourceResponse

ThreadId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")]
CREATED = now()


def get_runs(request: Request) -> Runs:
    """The run manager, made with the warmed app (server.py's Warmup)."""
    return request.app.state.warmup.get_runs()


RunsDep = Annotated[Runs, Depends(get_runs)]
assistants = APIRouter(prefix="/assistants", tags=["assistants"])
threads = APIRouter(prefix="/threads", tags=["threads"])
runs = APIRouter(prefix="/threads/{thread_id}/runs", tags=["runs"])


# assistants
def _assistant() -> dict[str, Any]:
    return {"assistant_id": ASSISTANT, "graph_id": ASSISTANT, "name": ASSISTANT,
            "description": "plan a request, choose models from device manuals, place, run, fuse",
            "config": {}, "context": {}, "metadata": {}, "version": 1,
            "created_at": CREATED, "updated_at": CREATED}


def _known(assistant_id: str) -> None:
    if assistant_id != ASSISTANT:
        raise NotFound(f"unknown assistant '{assistant_id}' (this server has '{ASSISTANT}')")


class AssistantSearch(BaseModel):
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


@assistants.post("/search")
def search_assistants(body: AssistantSearch) -> list[dict[str, Any]]:
    match = (body.graph_id in (None, ASSISTANT) and body.name in (None, ASSISTANT)
             and not body.metadata and body.offset == 0)
    return [_assistant()] if match else []


@assistants.get("/{assistant_id}")
def get_assistant(assistant_id: str) -> dict[str, Any]:
    _known(assistant_id)
    return _assistant()


@assistants.get("/{assistant_id}/graph")
def get_graph(assistant_id: str, r: RunsDep, xray: bool | int = False) -> dict[str, Any]:
    _known(assistant_id)
    return r.app.graph.get_graph(xray=xray).to_json()


@assistants.get("/{assistant_id}/schemas")
def get_schemas(assistant_id: str) -> dict[str, Any]:
    _known(assistant_id)
    return {"graph_id": ASSISTANT, "input_schema": RunInput.model_json_schema(),
            "output_schema": EdgeState.model_json_schema(),
            "state_schema": EdgeState.model_json_schema(),
            "config_schema": {}, "context_schema": RunContext.model_json_schema()}


# threads
class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    thread_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,80}$")
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"


class ThreadPatch(BaseModel):
    metadata: dict[str, Any]


class ThreadSearch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metadata: dict[str, Any] | None = None
    ids: list[str] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_order: Literal["asc", "desc"] = "desc"


class StateUpdate(BaseModel):
    values: dict[str, Any] | None = None
    as_node: str | None = None


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(10, ge=1, le=1000)
    before: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


def _thread(r: Runs, thread_id: str) -> dict[str, Any]:
    """A thread as the SDK's Thread: its record, status, values and pending interrupts."""
    thread = r.thread_or_404(thread_id)
    snapshot = r.app.graph.get_state(r.config(thread_id))
    interrupts = {t.id: [jsonable(i) for i in t.interrupts] for t in snapshot.tasks
                  if t.interrupts}
    if r.records.active_run(thread_id):
        status = "busy"
    elif interrupts or snapshot.next:
        status = "interrupted"
    else:
        status = "error" if r.records.last_status(thread_id) == "error" else "idle"
    return thread | {"status": status, "values": thread_state(snapshot)["values"],
                     "interrupts": interrupts}


@threads.post("")
def create_thread(body: ThreadCreate, r: RunsDep) -> dict[str, Any]:
    thread_id = body.thread_id or str(uuid.uuid4())
    if r.records.thread(thread_id) is not None:
        if body.if_exists == "raise":
            raise HTTPException(409, f"thread '{thread_id}' exists")
    else:
        r.records.add_thread(thread_id, body.metadata)
    return _thread(r, thread_id)


@threads.post("/search")
def search_threads(body: ThreadSearch, r: RunsDep) -> list[dict[str, Any]]:
    rows = r.records.threads(ids=body.ids, limit=10_000, offset=0,
                             order=body.sort_order.upper())
    rows = [t for t in rows if all(t["metadata"].get(k) == v
                                   for k, v in (body.metadata or {}).items())]
    out = [_thread(r, t["thread_id"]) for t in rows]
    out = [t for t in out if body.status in (None, t["status"])]
    return out[body.offset: body.offset + body.limit]


@threads.get("/{thread_id}")
def get_thread(thread_id: ThreadId, r: RunsDep) -> dict[str, Any]:
    return _thread(r, thread_id)


@threads.patch("/{thread_id}")
def patch_thread(thread_id: ThreadId, body: ThreadPatch, r: RunsDep) -> dict[str, Any]:
    thread = r.thread_or_404(thread_id)
    r.records.touch_thread(thread_id, thread["metadata"] | body.metadata)
    return _thread(r, thread_id)


@threads.delete("/{thread_id}", status_code=204)
def delete_thread(thread_id: ThreadId, r: RunsDep) -> Response:
    r.thread_or_404(thread_id)
    if r.records.active_run(thread_id):
        raise HTTPException(409, f"thread '{thread_id}' is busy with a run; cancel it first")
    r.app.checkpointer.delete_thread(thread_id)
    r.records.delete_thread(thread_id)
    return Response(status_code=204)


@threads.get("/{thread_id}/state")
def get_state(thread_id: ThreadId, r: RunsDep) -> dict[str, Any]:
    r.thread_or_404(thread_id)
    return thread_state(r.app.graph.get_state(r.config(thread_id)))


@threads.get("/{thread_id}/state/{checkpoint_id}")
def get_state_at(thread_id: ThreadId, checkpoint_id: str, r: RunsDep) -> dict[str, Any]:
    r.thread_or_404(thread_id)
    config = r.config(thread_id)
    config["configurable"]["checkpoint_id"] = checkpoint_id
    snapshot = r.app.graph.get_state(config)
    if not snapshot.created_at:
        raise NotFound(f"unknown checkpoint '{checkpoint_id}' on thread '{thread_id}'")
    return thread_state(snapshot)


@threads.post("/{thread_id}/state")
def update_state(thread_id: ThreadId, body: StateUpdate, r: RunsDep) -> dict[str, Any]:
    """Write state keys as if `as_node` had (default: the last node that ran)."""
    r.thread_or_404(thread_id)
    values = body.values or {}
    unknown = sorted(set(values) - state_keys())
    if unknown:
        raise HTTPException(422, f"'{unknown[0]}' is not a state key (keys: "
                                 f"{', '.join(sorted(state_keys()))})")
    if body.as_node is not None and body.as_node not in r.app.graph.nodes:
        raise HTTPException(422, f"as_node: no node '{body.as_node}' in the graph")
    try:
        EdgeState.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise HTTPException(422, f"values: field '{'.'.join(map(str, first['loc']))}': "
                                 f"{first['msg']}") from None
    if r.records.active_run(thread_id):
        raise HTTPException(409, f"thread '{thread_id}' is busy with a run")
    from langgraph.errors import InvalidUpdateError

    try:
        config = r.app.graph.update_state(r.config(thread_id), values, as_node=body.as_node)
    except InvalidUpdateError as exc:
        raise HTTPException(422, str(exc).splitlines()[0]) from None
    r.records.touch_thread(thread_id)
    cfg = config["configurable"]
    return {"checkpoint": {"thread_id": thread_id, "checkpoint_ns": cfg.get("checkpoint_ns", ""),
                           "checkpoint_id": cfg.get("checkpoint_id"), "checkpoint_map": None}}


@threads.post("/{thread_id}/history")
def get_history(thread_id: ThreadId, body: HistoryQuery, r: RunsDep) -> list[dict[str, Any]]:
    r.thread_or_404(thread_id)
    before = ({"configurable": {"thread_id": thread_id, **body.before}}
              if body.before else None)
    states = r.app.graph.get_state_history(r.config(thread_id), limit=body.limit, before=before,
                                           filter=body.metadata)
    return [thread_state(s) for s in states]


# runs
def _located(run: Run, body: Any) -> JSONResponse:
    return JSONResponse(body, headers={"Content-Location":
                                       f"/threads/{run.thread_id}/runs/{run.id}"})


@runs.post("")
def create_run(thread_id: ThreadId, body: RunCreate, r: RunsDep) -> JSONResponse:
    run = r.start(thread_id, body)
    return _located(run, r.get(thread_id, run.id))


@runs.post("/wait")
def wait_run(thread_id: ThreadId, body: RunCreate, r: RunsDep) -> JSONResponse:
    run = r.start(thread_id, body)
    run.done.wait()
    errors = [data for event, data in run.parts if event == "error"]
    return _located(run, {"__error__": errors[0]} if errors else r.final_values(thread_id))


async def _sse(run: Run):
    """The run's parts as SSE events, from the first, until the run ends."""
    sent = 0
    while True:
        parts, done = await anyio.to_thread.run_sync(run.parts_from, sent, 1.0)
        for event, data in parts:
            yield {"event": event, "data": _dumps(data)}
        sent += len(parts)
        if done and not parts:
            return


def _dumps(data: Any) -> str:
    import json

    return json.dumps(data, ensure_ascii=False)


@runs.post("/stream")
def stream_run(thread_id: ThreadId, body: RunCreate, r: RunsDep) -> EventSourceResponse:
    run = r.start(thread_id, body)
    return EventSourceResponse(_sse(run), headers={
        "Content-Location": f"/threads/{thread_id}/runs/{run.id}"})


@runs.get("")
def list_runs(thread_id: ThreadId, r: RunsDep, limit: int = 10, offset: int = 0,
              status: str | None = None) -> list[dict[str, Any]]:
    r.thread_or_404(thread_id)
    return r.records.runs(thread_id, limit=max(1, min(limit, 1000)), offset=max(0, offset),
                          status=status)


@runs.get("/{run_id}")
def get_run(thread_id: ThreadId, run_id: str, r: RunsDep) -> dict[str, Any]:
    return r.get(thread_id, run_id)


@runs.get("/{run_id}/join")
def join_run(thread_id: ThreadId, run_id: str, r: RunsDep) -> dict[str, Any]:
    return r.join(thread_id, run_id)


@runs.get("/{run_id}/stream")
def join_stream(thread_id: ThreadId, run_id: str, r: RunsDep) -> EventSourceResponse:
    """A live run's parts from its first; a finished run's stream is empty."""
    r.get(thread_id, run_id)
    run = r.live.get(run_id)

    async def empty():
        return
        yield

    return EventSourceResponse(_sse(run) if run is not None else empty())


@runs.post("/{run_id}/cancel", status_code=202)
def cancel_run(thread_id: ThreadId, run_id: str, r: RunsDep, wait: int = 0,
               action: str = "interrupt") -> Response:
    r.cancel(thread_id, run_id, action, bool(wait))
    return Response(status_code=202 if not wait else 200)


@runs.delete("/{run_id}", status_code=204)
def delete_run(thread_id: ThreadId, run_id: str, r: RunsDep) -> Response:
    if r.get(thread_id, run_id)["status"] in ("pending", "running"):
        raise HTTPException(409, f"run '{run_id}' is still going; cancel it first")
    r.records.delete_run(run_id)
    return Response(status_code=204)


ROUTERS = (assistants, threads, runs)
