"""The app's assembly: one data home's store, planner, checkpointer and compiled graph.

`App.open(settings)` is the one place these are opened together; `edgeai ask`, `edgeai demo` and
the API server (server.py) all go through it. A chat model can be handed in (`chat_model=`) to
plan with the LLM planner over it instead of the one the settings select: tests of the graph's
wiring pass LangChain's fake chat models this way, and the real LLM keeps its own tests.

A thread runs one turn at a time, whoever asks (CLI processes, server workers): `ask` holds the
thread's file lock (`<home>/locks/`) from reading its state to the last checkpoint, so a second
turn waits for the first and no acknowledged turn is lost. A turn killed half way leaves the
thread's checkpoint with nodes still to run; the next turn says so (`interrupted`), and each
turn's trace is filtered by its own run id, never by turn number, so a killed run's steps never
show up in the next one's trace.

Threads are checkpointed in the home's SQLite file, or in PostgreSQL when a checkpointer URL is
given (`checkpointer_url=`, or the settings' `checkpointer`, $EDGEAI_CHECKPOINTER): then `pool`
is the connection pool the API's records share too (graphs/persistence.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeai.config import Settings, require_home
from edgeai.errors import UnknownThreadError
from edgeai.graphs.graph import build_graph, sqlite_checkpointer
from edgeai.graphs.state import EdgeContext, FLOptions, Planner, check_thread_state
from edgeai.knowledge.store import KnowledgeStore, open_store

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


class App:
    """A store, a planner and the checkpointed graph of one data home, opened once."""

    def __init__(
        self, settings: Settings, store: KnowledgeStore, planner: Planner, checkpointer: Any,
        pool: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.planner = planner
        self.checkpointer = checkpointer
        self.pool = pool  # the Postgres connection pool, or None (SQLite under the home)
        self.graph = build_graph(checkpointer)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        chat_model: BaseChatModel | None = None,
        method: str = "json_schema",
        checkpointer_url: str | None = None,
    ) -> App:
        """Open the home's store (refusing a home that does not exist), build its planner and
        open its checkpoint database: `checkpointer_url` (default: the settings') names a
        Postgres database, else the home's SQLite file."""
        from edgeai.graphs import persistence

        url = persistence.parse_checkpointer(checkpointer_url or settings.checkpointer)
        require_home(settings)
        store = open_store(settings.home, url=settings.store)
        from edgeai.agents.planning.planner import make_planner

        planner = make_planner(settings, store, method=method, chat_model=chat_model)
        if url is None:
            app = cls(settings, store, planner, sqlite_checkpointer(settings.checkpoint_db))
        else:
            pool = persistence.open_pool(url)
            app = cls(settings, store, planner, persistence.postgres_checkpointer(pool), pool)
        app._chat_model, app._method = chat_model, method
        from edgeai.tools.federated.served import TrainedRuntime
        from edgeai.tools.runtimes import register

        register(TrainedRuntime(settings.home))  # models trained here, served from the home
        return app

    def replan(self) -> Planner:
        """A planner over the store as it is now (after a model was registered)."""
        from edgeai.agents.planning.planner import make_planner

        self.planner = make_planner(self.settings, self.store, method=getattr(self, "_method", "json_schema"),
                                    chat_model=getattr(self, "_chat_model", None))
        return self.planner

    def warm_up(self) -> None:
        """Pay the planner's first-call costs (encoders, indexes) now rather than on a request;
        an LLM planner warms its embedded fallback, not the LLM."""
        from edgeai.agents.planning.planner import Planner as Pipeline

        chooser = self.planner.chooser
        Pipeline(getattr(chooser, "fallback", chooser)).plan("warm up")

    def ask(
        self,
        request: str,
        thread: str | None,
        *,
        today: dt.date | None = None,
        seed: int = 0,
        objective: str = "min_latency",
        solver: str | None = None,
        approve: bool = False,
        fl: FLOptions | None = None,
        codegen_model: Any = None,
        progress: Any = None,
        resume: Any = None,
        image: bytes | None = None,
    ) -> dict[str, Any]:
        """One request through the graph on a thread (a new one when `thread` is None); the
        answer with its plan, placements, results and this turn's trace, as JSON. A turn that
        needs a person's approval (generated code about to run) returns with `interrupt` set;
        `resume=` (the person's answer) on the same thread continues it."""
        from edgeai.agents.planning.read import validate_request

        request = validate_request(request)
        photo = self.keep_photo(image) if image is not None else None
        new = thread is None
        thread = thread if thread is not None else uuid.uuid4().hex[:12]
        context = {"approve": approve, "fl": fl, "codegen_model": codegen_model, "progress": progress}
        with nullcontext() if new else self._thread_lock(thread):
            return self._turn(request, thread, new, today=today, seed=seed, objective=objective,
                              solver=solver, extra=context, resume=resume, photo=photo)

    def keep_photo(self, data: bytes, source: str = "image") -> str:
        """A person's photo, checked and scaled down (`imagecodecs.photo_from_bytes`), kept as a
        PNG named by its content under the home's photos/ (written whole, then renamed); its
        path. Bad bytes raise one clear ImageDecodeError and write nothing."""
        import hashlib
        import os
        import tempfile

        from edgeai.tools.split_inference.imagecodecs import encode_png, photo_from_bytes

        png = encode_png(photo_from_bytes(data, source=source), compress_level=6)
        folder = self.settings.photos_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(png).hexdigest()[:16]}.png"
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
            with os.fdopen(fd, "wb") as fh:
                fh.write(png)
            os.replace(tmp, path)
        return str(path)

    def sources(self, plan: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The manuals a plan relied on (its devices'): file name (no folder: answers travel to
        API clients), digest and when it was added."""
        devices = sorted({s["device"] for s in (plan or {}).get("subtasks", [])})
        provenance = self.store.provenance()
        out = []
        for d in devices:
            p = provenance.get(d, {})
            name = Path(p["source"]).name if p.get("source") else None
            out.append({"device": d, "manual": name, "sha256": p.get("sha256"),
                        "added_at": p.get("added_at")})
        return out

    def context(self, *, today: dt.date | None = None, seed: int = 0,
                objective: str = "min_latency", solver: str | None = None,
                **extra: Any) -> EdgeContext:
        """One run's context over this home's store and planner (`ask` and the API's runs)."""
        return EdgeContext(store=self.store, planner=self.planner, today=today or dt.date.today(),
                           seed=seed, objective=objective, solver=solver, home=self.settings.home,
                           replan=self.replan, **extra)

    def thread_lock(self, thread: str) -> Any:
        """The thread's file lock: one turn at a time, across processes (see the docstring)."""
        return self._thread_lock(thread)

    def _thread_lock(self, thread: str) -> Any:
        from edgeai.knowledge.lock import file_lock

        path = thread_lock_path(self.settings.home, thread)
        path.parent.mkdir(exist_ok=True)
        return file_lock(path, f"thread '{thread}' is busy with a turn")

    def _turn(
        self,
        request: str,
        thread: str,
        new: bool,
        *,
        today: dt.date | None,
        seed: int,
        objective: str,
        solver: str | None,
        extra: dict[str, Any],
        resume: Any = None,
        photo: str | None = None,
    ) -> dict[str, Any]:
        from langgraph.types import Command

        config = {"configurable": {"thread_id": thread}}
        interrupted = None
        if not new:
            snapshot = self.graph.get_state(config)
            if not snapshot.values:  # other threads are never listed: they may be other people's
                raise UnknownThreadError(
                    f"unknown thread '{thread}' (omit --thread to start a new one)"
                )
            check_thread_state(thread, snapshot.values)
            if snapshot.next and resume is None:  # a run stopped before its last node: killed, or crashed
                interrupted = {
                    "request": snapshot.values.get("request"),
                    "stopped_before": list(snapshot.next),
                }
        context = self.context(today=today, seed=seed, objective=objective, solver=solver,
                               **extra)
        if resume is not None:
            run = self.graph.get_state(config).values.get("run", "")
            state = self.graph.invoke(Command(resume=resume), config, context=context)
        else:
            run = uuid.uuid4().hex[:12]
            state = self.graph.invoke(
                {"request": request, "run": run, "image": photo}, config, context=context
            )
        pending = [i.value for i in state.get("__interrupt__", [])]
        return {
            "interrupt": pending[0] if pending else None,
            "thread": thread,
            "interrupted": interrupted,
            "request": request,
            "effective_request": state.get("effective_request"),
            "day": state.get("day"),
            "answer": state.get("answer"),
            "plan": state.get("plan"),
            "placements": state.get("placements"),
            "offloading": state.get("offloading"),
            "results": state.get("results"),
            "trace": [s for s in state.get("trace", []) if s.get("run") == run],
            "sources": self.sources(state.get("plan")),
            "training": _training_public(state.get("training"), run),
        }


def thread_lock_path(home: Path, thread: str) -> Path:
    """The file whose lock a thread's turn holds (`<home>/locks/thread-<digest>.lock`)."""
    digest = hashlib.sha256(thread.encode("utf-8")).hexdigest()[:20]
    return Path(home) / "locks" / f"thread-{digest}.lock"


def _training_public(training: Any, run: str) -> dict[str, Any] | None:
    """What a caller sees of this turn's training: trials' summaries, rejections, the model."""
    if training is None:
        return None
    t = training if isinstance(training, dict) else training.model_dump(mode="json")
    if t.get("graph_run") != run:
        return None
    from edgeai.tools.federated.trial import TrialRecord

    trials = [TrialRecord.model_validate(r) for r in t.get("trials", [])]
    return {"model": t.get("model"), "stop": t.get("stop"), "dir": t.get("dir"),
            "trials": [r.summary() | {"config": r.config} for r in trials],
            "rejections": t.get("rejections", [])}
