"""Several server workers share threads through Postgres: `edgeai serve --workers 2
--checkpointer postgres://...` (a real subprocess over a real, throw-away PostgreSQL) answers a
thread's state and history identically from both workers, and a follow-up turn, wherever it
lands, continues the thread; a malformed URL is one line and exit 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest
from edgeai.tools.postgres import PostgresUnavailable, throwaway_postgres
from langgraph_sdk import get_sync_client


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    try:
        with throwaway_postgres() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server can start here: {exc}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answering(server: subprocess.Popen, port: int) -> set[int]:
    """The processes of the server holding an accepted connection on `port` right now."""
    procs = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
    out = set()
    for p in procs:
        try:
            conns = p.net_connections("tcp")
        except psutil.NoSuchProcess:
            continue
        if any(c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED for c in conns):
            out.add(p.pid)
    return out


class Served(NamedTuple):
    url: str
    server: subprocess.Popen
    port: int


def _read(served: Served, tid: str) -> tuple[dict, list, set[int]]:
    """One fresh connection: the thread's state and history, and which worker served them."""
    c = get_sync_client(url=served.url, api_key=None)
    try:
        state = c.threads.get_state(tid)
        history = c.threads.get_history(tid, limit=100)
        return state, history, _answering(served.server, served.port)
    finally:
        c.close()


@pytest.fixture
def served(fresh_home: Path, postgres_url: str, tmp_path: Path, ready) -> Iterator[Served]:
    port, log = _free_port(), tmp_path / "serve.log"
    env = os.environ | {"EDGEAI_API_TOKEN": ""}
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "edgeai.cli", "serve", "--home", str(fresh_home), "--port",
             str(port), "--workers", "2", "--checkpointer", postgres_url],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while not _up(url):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server never started"
            time.sleep(0.3)
        ready(url)
        yield Served(url, server, port)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def _up(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_two_workers_serve_one_threads_history_from_postgres(served: Served) -> None:
    c = get_sync_client(url=served.url, api_key=None)
    tid = c.threads.create(metadata={"who": "pg"})["thread_id"]
    first = c.runs.wait(tid, "edgeai", input={"request": "How is my mood today?"})
    assert first["answer"]

    workers: set[int] = set()
    seen_states = []
    for _ in range(40):
        state, history, who = _read(served, tid)
        workers |= who
        seen_states.append((state["checkpoint"]["checkpoint_id"], len(history),
                            state["values"]["answer"]))
        if len(workers) >= 2 and len(seen_states) >= 10:
            break
    assert len(workers) == 2, f"only {workers} answered"
    assert len(set(seen_states)) == 1, set(seen_states)
    assert seen_states[0][2] == first["answer"]

    follow = c.runs.wait(tid, "edgeai", input={"request": "and what about yesterday?"})
    assert follow["answer"] and len(follow["history"]) == 2
    after = set()
    for _ in range(10):
        state, history, _who = _read(served, tid)
        after.add((state["checkpoint"]["checkpoint_id"], len(history)))
        assert [t["answer"] for t in state["values"]["history"]] == [first["answer"],
                                                                     follow["answer"]]
    assert len(after) == 1 and next(iter(after))[1] > seen_states[0][1]
    runs = c.runs.list(tid)
    assert [r["status"] for r in runs] == ["success", "success"]
    assert c.threads.get(tid)["metadata"] == {"who": "pg"}


def test_workers_setting_up_one_new_database_together_do_not_deadlock(postgres_url: str) -> None:
    """LangGraph's migrations build indexes CONCURRENTLY; a worker blocked on the set-up lock
    inside a statement would stall them for ever (seen with two workers: the lock is polled)."""
    import psycopg
    from edgeai.graphs.api.records import PostgresTables, Records
    from edgeai.graphs.persistence import open_pool, postgres_checkpointer

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE setup_race")
    url = postgres_url.rsplit("/", 1)[0] + "/setup_race"
    pools, errors = [], []

    def start() -> None:
        try:
            pool = open_pool(url)
            pools.append(pool)
            postgres_checkpointer(pool)
            Records(PostgresTables(pool))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=start, daemon=True) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    try:
        assert not any(w.is_alive() for w in workers), "schema set-up deadlocked"
        assert errors == []
    finally:
        for pool in pools:
            pool.close(timeout=5)


def test_a_malformed_checkpointer_url_is_one_line_and_exit_2(fresh_home: Path) -> None:
    for bad in ("mysql://x@h/db", "postgres://", "postgres://h:99999/db", "postgres://h"):
        done = subprocess.run(
            [sys.executable, "-m", "edgeai.cli", "serve", "--home", str(fresh_home),
             "--checkpointer", bad], check=False, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, (bad, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "--checkpointer" in done.stderr
