"""What API clients read and send: LangChain messages, run inputs and context, thread states.

The graph keeps a request and the thread's finished turns (`history`); chat clients expect a
`messages` list in LangChain's format. `state_view` adds it to every state a client sees (values
parts, thread states, history), a human message per request and an AI message per answer, with
ids stable across calls. `parse_input` accepts either our `{"request": ...}` or a chat client's
`{"messages": [{"role": "user", "content": ...}]}`; `RunContext` is what a run may set (FL
options, approval, seed, ...), from `context` or `config["configurable"]`. `jsonable` makes any
part (pydantic models, LangGraph interrupts, dates) plain JSON, with the absolute paths of this
machine cut out of its strings (`public`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any, Literal

from edgeai.errors import UserInputError
from edgeai.graphs.state import EdgeState, FLOptions
from pydantic import BaseModel, ConfigDict, Field

FINAL_NODES = ("respond", "report_missing")
_ABS_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"/]+/)*[^\s'\"/]*")


def public(message: str) -> str:
    """An error message fit for any client: absolute paths of this machine cut out."""
    return _ABS_PATH.sub("<path>", message)


class RunContext(BaseModel):
    """What one run may set: the fields of `edgeai ask`'s flags, no handles."""

    model_config = ConfigDict(extra="forbid")
    approve: bool = Field(False, description="run generated training code without asking")
    fl: FLOptions | None = Field(None, description="how to train when no model fits")
    seed: int = Field(0, description="which simulated household")
    objective: Literal["min_latency", "min_energy"] = "min_latency"
    solver: str | None = Field(None, description="offloading solver (default: by size)")
    today: dt.date | None = Field(None, description="the date 'today' means")


class RunInput(BaseModel):
    """A run's input: a request, or chat messages whose last human one is the request."""

    request: str | None = Field(None, description="what the person wants")
    messages: list[dict[str, Any]] | None = Field(None, description="LangChain/OpenAI messages")


def run_context(context: dict[str, Any] | None, config: dict[str, Any] | None) -> RunContext:
    """`config["configurable"]`'s known keys, then `context` (strict) over them."""
    configurable = (config or {}).get("configurable") or {}
    known = {k: v for k, v in configurable.items() if k in RunContext.model_fields}
    return RunContext.model_validate(known | (context or {}))


def parse_input(raw: dict[str, Any]) -> str:
    """The request of a run's input (validated by the caller), or a UserInputError saying why."""
    body = RunInput.model_validate(raw)
    if body.request is not None:
        return body.request
    for message in reversed(body.messages or []):
        if message.get("role", message.get("type")) in ("user", "human"):
            return _text(message.get("content"))
    raise UserInputError("the input has no request: send {\"request\": \"...\"} or "
                         "{\"messages\": [{\"role\": \"user\", \"content\": \"...\"}]}")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks: keep the text ones
        return " ".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    raise UserInputError("a message's content must be text or a list of text blocks")


def _message(kind: str, content: str, mid: str) -> dict[str, Any]:
    from langchain_core.messages import AIMessage, HumanMessage

    cls = HumanMessage if kind == "human" else AIMessage
    return cls(content=content, id=mid).model_dump(mode="json")


def messages_of(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The thread as LangChain messages: each finished turn, then the request in flight."""
    out = []
    for i, turn in enumerate(values.get("history") or []):
        turn = turn if isinstance(turn, dict) else turn.model_dump()
        out.append(_message("human", turn["request"], f"turn-{i}-human"))
        out.append(_message("ai", turn["answer"], f"turn-{i}-ai"))
    trace = values.get("trace") or []
    last = trace[-1] if trace else {}
    finished = last.get("run") == values.get("run") and last.get("node") in FINAL_NODES
    if values.get("request") and not finished:
        out.append(_message("human", values["request"], f"turn-{len(out) // 2}-human"))
    return out


def state_view(values: Any) -> dict[str, Any]:
    """A state as clients read it: plain JSON with `messages` added."""
    values = jsonable(values) if values else {}
    if not isinstance(values, dict):
        return values
    if "__interrupt__" in values and len(values) == 1:
        return values
    return values | {"messages": messages_of(values)}


def answer_message(update: dict[str, Any], run_id: str, node: str) -> list[Any] | None:
    """A `messages-tuple` part for a node's update that wrote the answer, else None."""
    answer = (update or {}).get("answer")
    if not answer or node not in FINAL_NODES:
        return None
    message = _message("ai", answer, f"run-{run_id}-ai")
    return [message, {"langgraph_node": node, "run_id": run_id}]


def jsonable(value: Any) -> Any:
    """Plain JSON of a stream part: models dumped, interrupts as {value, id}, dates ISO."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, str):  # answers name run folders: no path of this machine goes out
        return public(value) if "/" in value else value
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return str(value)


def interrupts_of(snapshot: Any) -> list[dict[str, Any]]:
    return [jsonable(i) for task in snapshot.tasks for i in task.interrupts]


def thread_state(snapshot: Any) -> dict[str, Any]:
    """A checkpoint as the SDK's ThreadState."""
    cfg = snapshot.config["configurable"]
    parent = snapshot.parent_config["configurable"] if snapshot.parent_config else None
    return {
        "values": state_view(snapshot.values),
        "next": list(snapshot.next),
        "checkpoint": _checkpoint(cfg),
        "metadata": jsonable(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "parent_checkpoint": _checkpoint(parent) if parent else None,
        "tasks": [{"id": t.id, "name": t.name, "error": str(t.error) if t.error else None,
                   "interrupts": [jsonable(i) for i in t.interrupts], "checkpoint": None,
                   "state": None, "result": jsonable(t.result)} for t in snapshot.tasks],
        "interrupts": interrupts_of(snapshot),
    }


def _checkpoint(cfg: dict[str, Any]) -> dict[str, Any]:
    return {"thread_id": cfg["thread_id"], "checkpoint_ns": cfg.get("checkpoint_ns", ""),
            "checkpoint_id": cfg.get("checkpoint_id"), "checkpoint_map": None}


def state_keys() -> set[str]:
    """The state keys a client may write with `update_state`."""
    return set(EdgeState.model_fields)
