"""Scripted runs over HTTP: `POST /scenarios/runs` takes the scenario `edgeai run` reads (its
text, YAML or JSON, or the same fields as a JSON object) and runs it in the background.

The scenario is checked with the CLI's schema (graphs/scenario.py's `parse_scenario`) before
anything is written: a bad field is 422 with the one line naming it and its line (for an object
body, the line of its 2-space-indented JSON). Over the network a pool must be a shipped pool's
name, never a path of this machine, and the scenario's `report:` is ignored (said so in `notes`):
the server decides where files go, always under its data home. Each run gets a fresh home of its
own, `<home>/scenarios/<name>-<run_id>/`, opened with `App.open` like any home (SQLite
checkpoints in it, its embedding cache started from the server's), so the scenario's manuals
never reach the server's own store; the report (report.json, report.md) and the run's status
(status.json) go to `<home>/runs/scenarios/<run_id>/` and are read back from there, so a
restarted server, or a sibling worker, answers for every run (one whose process stopped reads
as an error). One scenario runs at a time per server process (a
queue of at most `MAX_QUEUED` waiting runs; more is 429); each run's turns go through `App.ask`,
training is never approved. `GET /scenarios/runs/{id}` is the status (pending, running, success,
error) and, once done, the report; `.../join` and `POST /scenarios/runs/wait` block until done
(bounded by `timeout`). Imports nothing from cli/.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

from edgeai.config import Settings, require_home
from edgeai.graphs.api.records import HOST, _alive
from edgeai.graphs.api.runs import NotFound
from edgeai.graphs.api.views import jsonable, public
from edgeai.graphs.scenario import (
    MAX_SCENARIO_BYTES,
    Scenario,
    ScenarioError,
    parse_scenario,
    prepare_home,
    run_scenario,
    slug,
    write_report,
)
from edgeai.knowledge.embeddings import copy_caches
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"^[0-9a-f]{12}$")
ACTIVE = ("pending", "running")
MAX_QUEUED = 16
SOURCE = "scenario"  # the "file" a body's errors name
STOPPED = "the server stopped while the scenario was running; post it again"
PRIVATE = ("pid", "host")  # kept in status.json, never sent


class ScenarioRunCreate(BaseModel):
    """A scenario to run: its text (YAML or JSON) or its fields as a JSON object."""

    model_config = ConfigDict(extra="forbid")
    scenario: str | dict[str, Any] = Field(
        description="the scenario `edgeai run` reads: pools (shipped names), requests, ...")

    def parse(self) -> tuple[Scenario, list[str]]:
        """The validated scenario and what of it was ignored, or a 422 with the one line."""
        text = self.scenario if isinstance(self.scenario, str) else json.dumps(
            self.scenario, indent=2, ensure_ascii=False)
        if len(text.encode("utf-8")) > MAX_SCENARIO_BYTES:
            raise HTTPException(413, f"scenario: over {MAX_SCENARIO_BYTES:,} bytes")
        try:
            scenario = parse_scenario(text, SOURCE, paths=False)
        except ScenarioError as exc:
            raise HTTPException(422, public(str(exc))) from None
        notes = []
        if scenario.report is not None:
            scenario.report = None
            notes.append("report: ignored; the server writes the report under its data home "
                         "(read it with GET /scenarios/runs/{run_id})")
        return scenario, notes


class ScenarioRuns:
    """This process's scenario runs: a queue, one worker thread, a status file per run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._queue: queue.Queue[tuple[str, Scenario]] = queue.Queue()
        self._done: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    @property
    def root(self) -> Path:
        return self.settings.runs_dir / "scenarios"

    def submit(self, scenario: Scenario, notes: list[str]) -> dict[str, Any]:
        """Queue a validated scenario; its status as a client reads it (pending)."""
        require_home(self.settings)  # the server's home: 503 when it is gone
        if self._queue.qsize() >= MAX_QUEUED:
            raise HTTPException(429, f"{MAX_QUEUED} scenario runs are waiting already; "
                                     "try again when one is done")
        run_id = uuid.uuid4().hex[:12]
        stamp = _now()
        status = {"run_id": run_id, "name": scenario.name, "status": "pending",
                  "created_at": stamp, "updated_at": stamp,
                  "home": f"scenarios/{slug(scenario.name or SOURCE)}-{run_id}",
                  "report_dir": f"runs/scenarios/{run_id}", "checks": len(scenario.requests),
                  "passed": None, "failed": None, "error": None, "notes": notes,
                  "pid": os.getpid(), "host": HOST}
        self._write(status)
        with self._lock:
            self._done[run_id] = threading.Event()
            self._queue.put((run_id, scenario))
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="edgeai-scenarios",
                                                daemon=True)
                self._worker.start()
        return self._public(status)

    def get(self, run_id: str) -> dict[str, Any]:
        """A run's status and, once it succeeded, its report; NotFound for an unknown id."""
        status = self._read(run_id)
        view = self._public(status)
        if status["status"] == "success":
            report = json.loads((self.root / run_id / "report.json").read_text(encoding="utf-8"))
            view["report"] = jsonable(report) | {"home": status["home"]}  # no absolute path
        return view

    def list(self, limit: int = 100) -> list[dict[str, Any]]:
        """Every run's status, newest first (no reports)."""
        ids = [p.parent.name for p in self.root.glob("*/status.json")
               if RUN_ID.match(p.parent.name)] if self.root.is_dir() else []
        rows = [self._public(self._read(i)) for i in ids]
        return sorted(rows, key=lambda r: r["created_at"], reverse=True)[:limit]

    def join(self, run_id: str, timeout: float) -> tuple[bool, dict[str, Any]]:
        """Wait up to `timeout` s for a run to end; (done, its view). A run of another worker
        process (`--workers N`) is watched on disk."""
        deadline = time.monotonic() + timeout
        while self._read(run_id)["status"] in ACTIVE and time.monotonic() < deadline:
            event = self._done.get(run_id)
            left = deadline - time.monotonic()
            if event is not None:
                event.wait(left)
            else:
                time.sleep(min(0.5, max(left, 0)))
        view = self.get(run_id)
        return view["status"] not in ACTIVE, view

    def _work(self) -> None:
        while True:
            run_id, scenario = self._queue.get()
            try:
                self._run(run_id, scenario)
            finally:
                self._done[run_id].set()

    def _run(self, run_id: str, scenario: Scenario) -> None:
        from edgeai.graphs.app import App

        status = self._read(run_id)
        self._write(status | {"status": "running", "updated_at": _now()})
        try:
            home = self.settings.home / status["home"]
            # vectors the server's home has computed are reused (the same texts' vectors only)
            copy_caches(self.settings.store_dir, home / "store")
            prepare_home(scenario, home, paths=False)
            settings = self.settings.model_copy(update={"home": home, "checkpointer": "sqlite"})
            app = App.open(settings)
            try:
                report = run_scenario(scenario, app)
            finally:
                app.checkpointer.conn.close()
            write_report(report, self.root / run_id)
            done = {"status": "success", "passed": report.passed, "checks": report.checks,
                    "failed": report.failed}
        except Exception as exc:  # any failure: the run's status says what went wrong
            log.warning("scenario run %s failed", run_id, exc_info=True)
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            done = {"status": "error", "error": public(lines[0])[:500]}
        self._write(status | done | {"updated_at": _now()})

    def _read(self, run_id: str) -> dict[str, Any]:
        if not RUN_ID.match(run_id):
            raise NotFound("unknown scenario run (a run id is 12 hex digits)")
        path = self.root / run_id / "status.json"
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"unknown scenario run '{run_id}'") from None
        if status["status"] in ACTIVE and not self._owned(status):
            status |= {"status": "error", "error": STOPPED}
        return status

    def _owned(self, status: dict[str, Any]) -> bool:
        """Whether the process that queued the run is still there to run it."""
        if status.get("host") != HOST:
            return True  # another machine's: it cannot be checked from here
        return _alive(status.get("pid"))

    def _write(self, status: dict[str, Any]) -> None:
        folder = self.root / status["run_id"]
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "status.json.tmp"
        tmp.write_text(json.dumps(status, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, folder / "status.json")

    @staticmethod
    def _public(status: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in status.items() if k not in PRIVATE}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def get_scenarios(request: Request) -> ScenarioRuns:
    """This server's scenario runs (made by server.py's create_app)."""
    return request.app.state.scenarios


ScenariosDep = Annotated[ScenarioRuns, Depends(get_scenarios)]
Timeout = Annotated[float, Query(gt=0, le=3600, description="longest wait, in seconds")]
scenarios = APIRouter(prefix="/scenarios/runs", tags=["scenarios"])


def _located(view: dict[str, Any], status_code: int) -> JSONResponse:
    return JSONResponse(view, status_code=status_code,
                        headers={"Content-Location": f"/scenarios/runs/{view['run_id']}"})


@scenarios.post("", status_code=202)
def create_scenario_run(body: ScenarioRunCreate, s: ScenariosDep) -> JSONResponse:
    """Queue a scenario; 202 with its run id (poll GET /scenarios/runs/{run_id})."""
    return _located(s.submit(*body.parse()), 202)


@scenarios.post("/wait")
def wait_scenario_run(body: ScenarioRunCreate, s: ScenariosDep,
                      timeout: Timeout = 600) -> JSONResponse:
    """Queue a scenario and wait for it: 200 with the report, or 202 if `timeout` came first."""
    run_id = s.submit(*body.parse())["run_id"]
    done, view = s.join(run_id, timeout)
    return _located(view, 200 if done else 202)


@scenarios.get("")
def list_scenario_runs(s: ScenariosDep,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    return s.list(limit)


@scenarios.get("/{run_id}")
def get_scenario_run(run_id: str, s: ScenariosDep) -> dict[str, Any]:
    return s.get(run_id)


@scenarios.get("/{run_id}/join")
def join_scenario_run(run_id: str, s: ScenariosDep, timeout: Timeout = 600) -> JSONResponse:
    """Wait for a run to end: 200 with the report, or 202 if `timeout` came first."""
    done, view = s.join(run_id, timeout)
    return _located(view, 200 if done else 202)
