"""Runs of the request graph for the API: started in a background thread, streamed, joined.

`Runs` owns the live runs of this process: each `Run` executes `graph.stream` on its thread with
the modes the API serves (values, updates, custom; messages-tuple is made from the answering
node's update), keeps its parts in order and wakes whoever listens (an SSE stream, a `wait`, a
`join`). A thread runs one run at a time: a second one is refused (409, the SDK's default
`multitask_strategy="reject"`) here and, across processes and the CLI, by the thread's file lock
(graphs/app.py). Status and reason of every run go to `records.Records`, so a restarted server
still answers for them; a run cancelled stops at the next node boundary (the node running when
the cancel came finishes and is checkpointed).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from edgeai.errors import EdgeAIError, UserInputError
from edgeai.graphs.api.records import ACTIVE, Records
from edgeai.graphs.api.views import (
    answer_message,
    interrupts_of,
    jsonable,
    parse_input,
    public,
    run_context,
    state_view,
)
from edgeai.graphs.app import App
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

ASSISTANT = "edgeai"
MODES = {"values": "values", "updates": "updates", "custom": "custom", "messages-tuple": "messages"}
UNSUPPORTED = ("interrupt_before", "interrupt_after", "webhook", "checkpoint", "checkpoint_id",
               "after_seconds")
WAITING = "waiting for a person's answer: resume with command={'resume': ...}"


class Conflict(EdgeAIError):
    """The thread or run is not in a state that allows this (busy, finished, nothing to resume)."""


class NotFound(EdgeAIError):
    """No such assistant, thread or run."""


class RunCreate(BaseModel):
    """A run as the SDK sends it (runs.create, runs.stream, runs.wait)."""

    model_config = ConfigDict(extra="allow")
    assistant_id: str = Field(description=f"'{ASSISTANT}', the one graph served")
    input: dict[str, Any] | None = None
    command: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: str | list[str] = "values"
    multitask_strategy: str | None = None
    if_not_exists: str | None = None

    def modes(self) -> list[str]:
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else self.stream_mode
        bad = [m for m in modes if m not in MODES]
        if bad:
            raise UserInputError(f"stream_mode {bad[0]!r} is not served (choose from "
                                 f"{', '.join(MODES)})")
        return [MODES[m] for m in modes]

    def check(self) -> None:
        """Refuse what this server does not do, before anything is written."""
        if self.assistant_id != ASSISTANT:
            raise NotFound(f"unknown assistant '{self.assistant_id}' (this server has "
                           f"'{ASSISTANT}')")
        used = [k for k in UNSUPPORTED if (self.model_extra or {}).get(k) is not None]
        if used:
            raise UserInputError(f"'{used[0]}' is not supported by this server")
        if self.multitask_strategy not in (None, "reject"):
            raise UserInputError("multitask_strategy: only 'reject' is supported (one run at a "
                                 "time per thread)")
        if self.input is not None and self.command is not None:
            raise UserInputError("send either 'input' or 'command' (with 'resume'), not both "
                                 "(neither: continue a run that was cut off)")
        if self.command is not None and set(self.command) != {"resume"}:
            raise UserInputError("command: only {'resume': ...} is supported")


class Run:
    """One live run: its parts in order, whoever waits on them, and a cancel flag."""

    def __init__(self, record: dict[str, Any], modes: list[str]) -> None:
        self.record, self.modes = record, modes
        self.id, self.thread_id = record["run_id"], record["thread_id"]
        self.parts: list[tuple[str, Any]] = [("metadata", {"run_id": self.id, "attempt": 1})]
        self.done = threading.Event()
        self.cancelled = threading.Event()
        self._cond = threading.Condition()

    def publish(self, event: str, data: Any) -> None:
        if event in ("metadata", "error") or event in self.modes:
            with self._cond:
                self.parts.append((event, data))
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.done.set()
            self._cond.notify_all()

    def parts_from(self, start: int, timeout: float) -> tuple[list[tuple[str, Any]], bool]:
        """The parts after `start` (waiting up to `timeout` for one) and whether the run ended."""
        with self._cond:
            if len(self.parts) <= start and not self.done.is_set():
                self._cond.wait(timeout)
            return self.parts[start:], self.done.is_set()


class Runs:
    """The live runs of this process over one app, and the records of all runs."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.records = Records.for_app(app)
        self.live: dict[str, Run] = {}
        self._lock = threading.Lock()

    def config(self, thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}}

    def thread_or_404(self, thread_id: str) -> dict[str, Any]:
        thread = self.records.thread(thread_id)
        if thread is None:
            raise NotFound(f"unknown thread '{thread_id}'")
        return thread

    def start(self, thread_id: str, body: RunCreate) -> Run:
        """Check the run, record it and start it; nothing is written when it is refused."""
        body.check()
        modes = body.modes()
        ctx = run_context(body.context, body.config)
        graph_input = self._graph_input(thread_id, body)
        with self._lock:
            if self.records.thread(thread_id) is None:
                if body.if_not_exists != "create":
                    raise NotFound(f"unknown thread '{thread_id}'")
                self.records.add_thread(thread_id, {})
            if self.records.active_run(thread_id) is not None:
                raise Conflict(f"thread '{thread_id}' is busy with a run (one at a time)")
            run_id = str(uuid.uuid4())
            if body.input is not None:
                graph_input = graph_input | {"run": run_id}
            kwargs = jsonable({"input": body.input, "command": body.command,
                               "context": ctx.model_dump(exclude_defaults=True),
                               "stream_mode": body.stream_mode})
            record = self.records.add_run(run_id, thread_id, ASSISTANT, body.metadata or {},
                                          kwargs, "reject")
            run = self.live[run_id] = Run(record, modes)
        context = self.app.context(**ctx.model_dump(exclude={"approve", "fl"}),
                                   approve=ctx.approve, fl=ctx.fl,
                                   progress=lambda event: run.publish("custom",
                                                                      {"progress": jsonable(event)}))
        threading.Thread(target=self._execute, args=(run, graph_input, context),
                         name=f"edgeai-run-{run_id[:8]}", daemon=True).start()
        return run

    def _graph_input(self, thread_id: str, body: RunCreate) -> Any:
        from edgeai.agents.planning.read import validate_request
        from langgraph.types import Command

        if body.input is not None:
            return {"request": validate_request(parse_input(body.input))}
        snapshot = self.app.graph.get_state(self.config(thread_id))
        if body.command is None:
            # neither input nor command: continue a run that was cut off (a killed server) from
            # the thread's last checkpoint; LangGraph runs the nodes left with input None
            if interrupts_of(snapshot):
                raise Conflict(f"thread '{thread_id}' waits for an answer: send "
                               "command={'resume': ...}")
            if not snapshot.next:
                raise Conflict(f"thread '{thread_id}' has no run to continue")
            return None
        if not interrupts_of(snapshot):
            raise Conflict(f"thread '{thread_id}' has no pending interrupt to resume")
        return Command(resume=body.command["resume"])

    def _execute(self, run: Run, graph_input: Any, context: Any) -> None:
        status, reason = "success", None
        config = self.config(run.thread_id)
        try:
            with self.app.thread_lock(run.thread_id):
                self.records.set_status(run.id, "running")
                # cancelled while it waited for the thread (another turn held it): never starts
                chunks = () if run.cancelled.is_set() else self.app.graph.stream(
                    graph_input, config, context=context,
                    stream_mode=["values", "updates", "custom"])
                if run.cancelled.is_set():
                    status, reason = "interrupted", "cancelled"
                for mode, chunk in chunks:
                    if run.cancelled.is_set():
                        status, reason = "interrupted", "cancelled"
                        break
                    self._publish(run, mode, chunk)
            if status == "success" and interrupts_of(self.app.graph.get_state(config)):
                status, reason = "interrupted", WAITING
        except Exception as exc:  # any failure: the run's error goes to its record and stream
            if not isinstance(exc, EdgeAIError):
                log.exception("run %s failed", run.id)
            status, reason = "error", public(str(exc))[:500]
            run.publish("error", {"error": type(exc).__name__, "message": reason})
        finally:
            self.records.finish(run.id, status, reason)
            self.records.touch_thread(run.thread_id)
            with self._lock:
                self.live.pop(run.id, None)
            run.close()

    def _publish(self, run: Run, mode: str, chunk: Any) -> None:
        if mode == "values":
            run.publish("values", state_view(chunk))
        elif mode == "custom":
            run.publish("custom", jsonable(chunk))
        else:
            run.publish("updates", jsonable(chunk))
            for node, update in (chunk or {}).items():
                if isinstance(update, dict) and (part := answer_message(update, run.id, node)):
                    run.publish("messages", part)

    def get(self, thread_id: str, run_id: str) -> dict[str, Any]:
        record = self.records.run(thread_id, run_id)
        if record is None:
            raise NotFound(f"unknown run '{run_id}' on thread '{thread_id}'")
        return record

    def join(self, thread_id: str, run_id: str) -> dict[str, Any]:
        """Wait for the run to end (live here, or in a sibling worker); the thread's values."""
        self.get(thread_id, run_id)
        run = self.live.get(run_id)
        if run is not None:
            run.done.wait()
        while self.get(thread_id, run_id)["status"] in ACTIVE:
            time.sleep(0.2)
        return self.final_values(thread_id)

    def final_values(self, thread_id: str) -> dict[str, Any]:
        """What `runs.wait`/`join` return: the thread's values, with `__interrupt__` if one waits."""
        snapshot = self.app.graph.get_state(self.config(thread_id))
        values = state_view(snapshot.values)
        pending = interrupts_of(snapshot)
        return values | {"__interrupt__": pending} if pending else values

    def cancel(self, thread_id: str, run_id: str, action: str, wait: bool) -> None:
        record = self.get(thread_id, run_id)
        if action != "interrupt":
            raise UserInputError("cancel: only action='interrupt' is supported")
        run = self.live.get(run_id)
        if record["status"] not in ACTIVE or run is None:
            raise Conflict(f"run '{run_id}' is not running here (status {record['status']})")
        run.cancelled.set()
        if wait:
            run.done.wait()
