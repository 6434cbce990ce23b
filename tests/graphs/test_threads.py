"""Threads under kill -9 and concurrent turns (issue 35): real `edgeai ask` processes on one
SQLite checkpointer, one killed half way through its graph run; ten follow-ups at once."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from edgeai.config import Settings
from edgeai.graphs.app import App

EXE = [sys.executable, "-m", "edgeai.cli"]


def checkpoints(home: Path, thread: str) -> int:
    try:
        with sqlite3.connect(home / "checkpoints.sqlite", timeout=30) as conn:
            return conn.execute(
                "select count(*) from checkpoints where thread_id = ?", (thread,)
            ).fetchone()[0]
    except sqlite3.Error:
        return 0


def test_a_killed_turn_is_reported_and_its_steps_stay_out_of_the_next_trace(
    fresh_home: Path,
) -> None:
    app = App.open(Settings(home=fresh_home))
    thread = app.ask("What's my heart rate right now?", None)["thread"]
    for _attempt in range(3):  # the killed run must stop after its first step, before its last
        before = checkpoints(fresh_home, thread)
        proc = subprocess.Popen(
            [*EXE, "ask", "how is my mood today?", "--thread", thread, "--home", str(fresh_home)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None and checkpoints(fresh_home, thread) < before + 2:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.returncode == -signal.SIGKILL and app.graph.get_state(
            {"configurable": {"thread_id": thread}}
        ).next:
            break
    else:
        raise AssertionError("the ask process finished before it could be killed three times")
    killed_runs = {s["run"] for s in app.graph.get_state(
        {"configurable": {"thread_id": thread}}).values["trace"]}
    out = subprocess.run(
        [*EXE, "ask", "is the front door camera seeing anyone?", "--thread", thread, "--json",
         "--home", str(fresh_home)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "was interrupted" in out.stderr and "how is my mood today?" in out.stderr
    body = json.loads(out.stdout)
    assert body["interrupted"]["request"] == "how is my mood today?"
    runs = {s["run"] for s in body["trace"]}
    assert len(runs) == 1 and not runs & killed_runs
    assert body["trace"][0]["node"] == "plan_request" and body["trace"][-1]["node"] in (
        "respond", "report_missing")
    history = app.graph.get_state({"configurable": {"thread_id": thread}}).values["history"]
    assert [t["request"] for t in history] == [
        "What's my heart rate right now?", "is the front door camera seeing anyone?"]


def test_concurrent_turns_on_one_thread_are_all_kept(fresh_home: Path) -> None:
    app = App.open(Settings(home=fresh_home))
    thread = app.ask("What's my heart rate right now?", None)["thread"]
    asks = [f"and what about {n} days ago?" for n in range(1, 11)]
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        done = list(pool.map(lambda r: app.ask(r, thread), asks))
    assert all(d["thread"] == thread and d["answer"] for d in done)
    history = app.graph.get_state({"configurable": {"thread_id": thread}}).values["history"]
    assert sorted(t["request"] for t in history[1:]) == sorted(asks)  # none lost
    for d in done:  # each turn's trace is its own run, whole
        assert len({s["run"] for s in d["trace"]}) == 1 and d["trace"][-1]["node"] == "respond"
