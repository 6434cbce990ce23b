"""Threads and runs outlive the server: `edgeai serve` (a real subprocess) is killed with SIGKILL
in the middle of a run and started again on the same data home; the thread's checkpointed history
is intact, the killed run is reported as interrupted, with why, and a run with neither input
nor command continues it from the last checkpoint."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from langgraph_sdk import get_sync_client

# approved up front, so the run goes straight into the sandboxed trial, where it is killed; the
# trial's own time limit ends its sandbox soon after, whoever its parent was
LONG_TRAINING = {"data": "digits", "clients": 2, "rounds": 20, "trials": 1, "n_train": 300,
                 "seconds": 30}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(home: Path, port: int, log: Path) -> subprocess.Popen:
    env = os.environ | {"EDGEAI_API_TOKEN": ""}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edgeai.cli", "serve", "--home", str(home), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _until(predicate, what: str, timeout_s: float = 600):
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.2)
    return value


@pytest.fixture
def served_home(healthcare_home: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(healthcare_home, home)
    return home


def test_a_killed_server_keeps_the_thread_and_reports_the_run_interrupted(
    served_home: Path, tmp_path: Path, ready
) -> None:
    port, log = _free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    server = _serve(served_home, port, log)
    try:
        _until(lambda: _alive(url) or server.poll() is not None, "the server start")
        assert server.poll() is None, log.read_text()
        ready(url)
        c = get_sync_client(url=url, api_key=None)
        tid = c.threads.create(metadata={"who": "durable"})["thread_id"]
        first = c.runs.wait(tid, "edgeai", input={"request": "What's my heart rate right now?"})
        run = c.runs.create(tid, "edgeai", input={"request": "recognise the handwritten digit "
                                                  "in my image"},
                            context={"approve": True, "fl": LONG_TRAINING})
        _until(lambda: c.threads.get_state(tid)["next"] == ["run_training"], "the trial start")
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the group this test started: server + sandbox
        server.wait()

    server = _serve(served_home, port, log)
    try:
        _until(lambda: _alive(url), "the restart")
        ready(url)
        c = get_sync_client(url=url, api_key=None)
        killed = c.runs.get(tid, run["run_id"])
        assert killed["status"] == "interrupted" and "server stopped" in killed["reason"]
        thread = c.threads.get(tid)
        assert thread["status"] == "interrupted" and thread["metadata"] == {"who": "durable"}
        state = c.threads.get_state(tid)
        assert state["next"] == ["run_training"]
        assert state["values"]["history"][0]["answer"] == first["answer"]
        nodes = [s["node"] for s in state["values"]["trace"]]
        assert nodes[-3:] == ["prepare_training", "generate_code", "approve_code"]
        assert len(c.threads.get_history(tid, limit=100)) > 8
        statuses = [r["status"] for r in c.runs.list(tid)]
        assert statuses == ["interrupted", "success"]
        # and it can be resumed: a run with neither input nor command continues from the
        # checkpoint (the sandboxed trial runs again, under its own 30 s limit)
        done = c.runs.wait(tid, "edgeai", context={"approve": True, "fl": LONG_TRAINING})
        assert done.get("answer") and c.threads.get_state(tid)["next"] == []
        assert [r["status"] for r in c.runs.list(tid)] == ["success", "interrupted", "success"]
        assert "run_training" in [s["node"] for s in c.threads.get_state(tid)["values"]["trace"]]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def _alive(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
