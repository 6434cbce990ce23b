"""`edgeai bench serve`: the Agent Server API under load, measured from outside, as clients see it.

It starts `edgeai serve` as a subprocess (on a free loopback port, with a fresh API token) over a
throw-away home under the bench folder that holds the shipped sample pools (healthcare, photo;
filled as `edgeai demo` fills its home), with the chosen checkpointer (SQLite under that home,
a Postgres URL, or a throw-away PostgreSQL started here, tools/postgres.py), store of manuals
(embedded in that home, a throw-away chromadb server started here, tools/chroma_server.py, or a
chromadb server's URL, which the pools are added to) and number of workers; waits for `/ok`; pays a few uncounted warm-up turns; then, for each N of `--chats`, runs
N concurrent chats (threads.create, then K runs.wait turns: a request drawn from the pools'
labelled requests, an elliptical follow-up, another request, ...) bounded by `--timeout`. Per N
it reports p50/p95 latency per turn, throughput (turns/s) and errors (should be 0), with the
machine and date: a table on stdout, `serve.csv` (one row per N), `serve-turns.csv` (every
turn) and `serve.png` under `<home>/bench/`. It lives in graphs/ because filling the home needs
the planner's unit builder (agents) and the store (knowledge); the server is only talked to
over HTTP, as any client would.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
import random
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

POOLS = ("healthcare", "photo")
FOLLOWUPS = ("and what about yesterday?", "what about this morning?", "and the day before?")
ASSISTANT = "edgeai"


@dataclass
class Turn:
    """One measured runs.wait: which chat and turn, what was asked, how long, what went wrong."""

    chats: int
    chat: int
    turn: int
    request: str
    seconds: float
    ok: bool
    error: str = ""


def fill_home(home: Path, store: str | None = None) -> list[str]:
    """A fresh home holding the sample pools' manuals (what `edgeai demo` registers), in its
    embedded store or on the chromadb server at `store`."""
    from edgeai.agents.planning.units import build_units
    from edgeai.knowledge.pools import resolve_pool
    from edgeai.knowledge.store import add_to_home

    shutil.rmtree(home, ignore_errors=True)
    report = add_to_home(home, [resolve_pool(p) / "manuals" for p in POOLS], build_units,
                         url=store)
    return report["added"] + report["replaced"]


def pool_requests() -> list[str]:
    """The labelled requests of the pools that something in them can serve."""
    from edgeai.knowledge.pools import resolve_pool

    out = []
    for pool in POOLS:
        for line in (resolve_pool(pool) / "requests.jsonl").read_text("utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            if row and not row.get("unsupported") and row.get("models"):
                out.append(row["request"])
    return out


def conversations(n: int, k: int, seed: int) -> list[list[str]]:
    """n chats of k turns: a pool request, then a follow-up and a new request in turn."""
    rng, pool = random.Random(seed), pool_requests()
    chats = []
    for _ in range(n):
        turns = [rng.choice(pool)]
        for t in range(1, k):
            turns.append(rng.choice(FOLLOWUPS) if t % 2 else rng.choice(pool))
        chats.append(turns)
    return chats


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(home: Path, *, workers: int, checkpointer: str | None, token: str, log: Path,
           timeout_s: float, env: dict[str, str] | None = None,
           store: str | None = None) -> Iterator[str]:
    """`edgeai serve` on a free loopback port until the block ends; yields its URL once /ok."""
    port = free_port()
    cmd = [sys.executable, "-m", "edgeai.cli", "serve", "--home", str(home), "--port", str(port),
           "--workers", str(workers), "--checkpointer", checkpointer or "sqlite",
           "--store", store or "embedded"]
    env = os.environ | (env or {}) | {"EDGEAI_API_TOKEN": token}
    with log.open("wb") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ok(url, server, log, timeout_s)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, 15)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


def _wait_ok(url: str, server: subprocess.Popen, log: Path, timeout_s: float) -> None:
    from edgeai.errors import EdgeAIError

    deadline = time.monotonic() + timeout_s
    while True:
        if server.poll() is not None:
            raise EdgeAIError(f"edgeai serve exited ({server.returncode}) before it was ready: "
                              f"{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            r = httpx.get(f"{url}/ok", timeout=5)
            if r.status_code == 200:
                return
            if r.json().get("status") == "failed":
                raise EdgeAIError(f"the server's warm-up failed: {r.json().get('detail')}")
        if time.monotonic() > deadline:
            raise EdgeAIError(f"the server was not ready within {timeout_s:.0f} s: {_tail(log)}")
        time.sleep(0.5)


def _tail(log: Path) -> str:
    lines = log.read_text("utf-8", errors="replace").strip().splitlines() if log.exists() else []
    return " | ".join(lines[-3:]) or "(no output)"


def chat(url: str, token: str, turns: list[str], *, n: int, index: int, deadline: float,
         stop: threading.Event) -> list[Turn]:
    """One chat: a thread, then its turns one after another until the deadline."""
    out: list[Turn] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers) as c:
        try:
            tid = c.post("/threads", json={}, timeout=_left(deadline)).raise_for_status().json()[
                "thread_id"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            return [Turn(n, index, 0, "threads.create", 0.0, False, _short(exc))]
        for t, request in enumerate(turns):
            if time.monotonic() >= deadline or stop.is_set():
                break
            started = time.perf_counter()
            error = _turn(c, tid, request, deadline)
            out.append(Turn(n, index, t + 1, request, time.perf_counter() - started,
                            not error, error))
    return out


def _turn(c: httpx.Client, tid: str, request: str, deadline: float) -> str:
    """One runs.wait; '' when it answered, else what went wrong (one line)."""
    try:
        r = c.post(f"/threads/{tid}/runs/wait", timeout=_left(deadline),
                   json={"assistant_id": ASSISTANT, "input": {"request": request}})
    except httpx.HTTPError as exc:
        return _short(exc)
    if r.status_code != 200:
        return f"HTTP {r.status_code}: {r.text[:120]}"
    body = r.json()
    if body.get("__error__"):
        return f"run error: {str(body['__error__'])[:120]}"
    return "" if body.get("answer") else "no answer"


def _left(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:120]}"


def run_load(url: str, token: str, n: int, k: int, *, seed: int,
             timeout_s: float) -> tuple[list[Turn], float]:
    """N concurrent chats of K turns; every turn measured, and the batch's wall time. Stopped
    early (Ctrl-C, SIGTERM), the chats start no further turn."""
    chats = conversations(n, k, seed)
    deadline = time.monotonic() + timeout_s
    stop = threading.Event()
    started = time.perf_counter()
    ex = ThreadPoolExecutor(max_workers=n, thread_name_prefix="bench-chat")
    try:
        futures = [ex.submit(chat, url, token, turns, n=n, index=i, deadline=deadline, stop=stop)
                   for i, turns in enumerate(chats)]
        turns = [t for f in futures for t in f.result()]
    finally:
        stop.set()
        ex.shutdown(wait=False, cancel_futures=True)
    return turns, time.perf_counter() - started


def summarize(turns: list[Turn], n: int, k: int, wall_s: float) -> dict[str, Any]:
    """One row of serve.csv: what N concurrent chats of K turns cost."""
    import numpy as np

    ok = np.array([t.seconds for t in turns if t.ok])
    errors = sum(not t.ok for t in turns)
    pct = (lambda q: round(float(np.percentile(ok, q)), 3)) if ok.size else (lambda q: None)
    return {"chats": n, "requests_per_chat": k, "turns": len(turns), "ok": int(ok.size),
            "errors": errors, "unfinished": n * k - len(turns),
            "p50_s": pct(50), "p95_s": pct(95),
            "mean_s": round(float(ok.mean()), 3) if ok.size else None,
            "max_s": round(float(ok.max()), 3) if ok.size else None,
            "wall_s": round(wall_s, 2), "turns_per_s": round(ok.size / wall_s, 3) if wall_s else 0}


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    if not rows:
        return
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def figure(summary: list[dict[str, Any]], turns: list[Turn], path: Path, title: str) -> None:
    """Left: the per-turn latency distribution per N; right: p50/p95 latency and throughput vs N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [s["chats"] for s in summary]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    data = [[t.seconds for t in turns if t.chats == n and t.ok] or [0.0] for n in ns]
    left.boxplot(data, tick_labels=[str(n) for n in ns], whis=(5, 95), showfliers=True)
    left.set(xlabel="concurrent chats N", ylabel="latency per turn (s)",
             title="turn latency (whiskers: p5-p95)")
    right.plot(ns, [s["p50_s"] for s in summary], "o-", label="p50 latency")
    right.plot(ns, [s["p95_s"] for s in summary], "s--", label="p95 latency")
    right.set(xlabel="concurrent chats N", ylabel="latency per turn (s)", title="latency and "
              "throughput vs N")
    right.set_xticks(ns)
    twin = right.twinx()
    twin.plot(ns, [s["turns_per_s"] for s in summary], "^:", color="tab:green",
              label="throughput")
    twin.set_ylabel("turns / s")
    lines = right.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    right.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def machine() -> str:
    return (f"{platform.node()} ({platform.machine()}, {os.cpu_count() or 1} cores, "
            f"Python {platform.python_version()})")


def table(summary: list[dict[str, Any]]) -> str:
    head = (f"{'N chats':>8} {'K':>3} {'turns':>6} {'errors':>6} {'unfinished':>10} "
            f"{'p50 (s)':>8} {'p95 (s)':>8} {'max (s)':>8} {'turns/s':>8} {'wall (s)':>9}")
    lines = [head]
    for s in summary:
        def f(v: Any) -> str:
            return "-" if v is None else f"{v:.2f}"
        lines.append(f"{s['chats']:>8} {s['requests_per_chat']:>3} {s['turns']:>6} "
                     f"{s['errors']:>6} {s['unfinished']:>10} {f(s['p50_s']):>8} "
                     f"{f(s['p95_s']):>8} {f(s['max_s']):>8} {f(s['turns_per_s']):>8} "
                     f"{f(s['wall_s']):>9}")
    return "\n".join(lines)


@contextlib.contextmanager
def checkpointer_for(spec: str) -> Iterator[tuple[str | None, str]]:
    """('sqlite' | 'postgres' | a postgres:// URL) -> (URL or None, label); 'postgres' starts a
    throw-away PostgreSQL for the block."""
    from edgeai.graphs.persistence import parse_checkpointer

    if spec == "postgres":
        from edgeai.tools.postgres import throwaway_postgres

        with throwaway_postgres() as url:
            yield url, "postgres (throw-away, this machine)"
        return
    url = parse_checkpointer(spec)
    yield url, "sqlite" if url is None else "postgres"


@contextlib.contextmanager
def store_for(spec: str) -> Iterator[tuple[str | None, str]]:
    """('embedded' | 'chroma' | a chromadb server's http:// URL) -> (URL or None, label);
    'chroma' starts a throw-away chromadb server for the block."""
    from edgeai.knowledge.location import parse_store

    if spec == "chroma":
        from edgeai.tools.chroma_server import throwaway_chroma

        with throwaway_chroma() as url:
            yield url, "chroma (throw-away, this machine)"
        return
    url = parse_store(spec)
    yield url, "embedded" if url is None else "chroma"


def server_env(settings: Any) -> dict[str, str]:
    """The bench's own LLM and log settings, handed to the server it starts."""
    keys = ("llm_backend", "llm_base_url", "llm_model", "llm_max_tokens", "llm_api_key",
            "log_level")
    return {f"EDGEAI_{k.upper()}": str(getattr(settings, k)) for k in keys
            if getattr(settings, k, None) is not None}


def run_bench(settings: Any, *, chats: list[int], requests_per_chat: int, checkpointer: str,
              workers: int, timeout_s: float, seed: int = 0, store: str = "embedded",
              ready_timeout_s: float = 900.0) -> list[dict[str, Any]]:
    """The whole bench (see the module docstring); the rows of serve.csv."""
    out_dir = Path(settings.bench_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    home, token, date = out_dir / "serve-home", secrets.token_urlsafe(24), time.strftime(
        "%Y-%m-%d %H:%M")
    summary: list[dict[str, Any]] = []
    all_turns: list[Turn] = []
    with contextlib.ExitStack() as stack:  # the chromadb server, if one, outlives the API's
        store_url, store_label = stack.enter_context(store_for(store))
        devices = fill_home(home, store_url)
        print(f"serve bench: home {home} ({len(devices)} devices from {', '.join(POOLS)}; "
              f"store: {store_label}); {workers} worker(s); starting the server ...", flush=True)
        url, label = stack.enter_context(checkpointer_for(checkpointer))
        api = stack.enter_context(served(
            home, workers=workers, checkpointer=url, token=token, log=out_dir / "serve-server.log",
            timeout_s=ready_timeout_s, env=server_env(settings), store=store_url))
        warm, _ = run_load(api, token, max(2, 2 * workers), 1, seed=seed + 9999,
                           timeout_s=timeout_s)
        print(f"ready at {api} (checkpointer: {label}); {len(warm)} warm-up turns, not counted "
              f"({sum(not t.ok for t in warm)} failed)", flush=True)
        print(table([]), flush=True)
        for n in chats:
            turns, wall = run_load(api, token, n, requests_per_chat, seed=seed + n,
                                   timeout_s=timeout_s)
            row = summarize(turns, n, requests_per_chat, wall)
            summary.append(row | {"checkpointer": label, "store": store_label,
                                  "workers": workers, "machine": machine(), "date": date})
            all_turns += turns
            print(table([row]).splitlines()[1], flush=True)
    write_csv(summary, out_dir / "serve.csv")
    write_csv([asdict(t) for t in all_turns], out_dir / "serve-turns.csv")
    figure(summary, all_turns, out_dir / "serve.png",
           f"edgeai serve: {workers} worker(s), {label}, store {store_label}, "
           f"K={requests_per_chat} turns per chat; {machine()}, {date}")
    print(f"\nmachine: {machine()}; {date}; checkpointer: {label}; store: {store_label}; "
          f"workers: {workers}")
    print(table(summary))
    print(f"wrote {out_dir / 'serve.csv'}, {out_dir / 'serve-turns.csv'}, {out_dir / 'serve.png'}")
    return summary
