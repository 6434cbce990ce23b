"""`edgeai demo`: register the sample pools in a fresh home and walk a few requests through the graph.

It opens the home through the app's assembly (graphs/app.py), as `edgeai ask` and the server do,
and prints each node's trace step in a line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time

from edgeai.cli import add_common
from edgeai.config import Settings
from rich.console import Console
from rich.panel import Panel

DEMO_POOLS = ["healthcare", "photo"]
# (request, continue the previous thread?)
DEMO_REQUESTS = [
    ("How is my mood today?", False),
    ("and what about yesterday?", True),
    ("What's my heart rate and breathing rate right now?", False),
    ("Which apps have I been using this evening?", False),
    ("Caption this photo and tell me what category it belongs to.", False),
    ("What colour is the triangle in this picture?", False),
    ("Turn on the living room lights.", False),
]


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo", help="the main job, offline: sample pools + a few requests end to end"
    )
    demo.add_argument("--today", default="2026-11-23", help="the date 'today' means in the demo")
    add_common(demo)
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.agents.planning.units import build_units
    from edgeai.graphs.app import App
    from edgeai.graphs.trace import summarize_step
    from edgeai.knowledge.pools import resolve_pool
    from edgeai.knowledge.store import add_to_home

    console = Console()
    started = time.perf_counter()
    settings.store = None  # the demo fills its home's own embedded store, never $EDGEAI_STORE's
    if args.home is None:  # a fresh home of its own, so the user's store is never touched
        settings.home = settings.home / "demo"
        shutil.rmtree(settings.home, ignore_errors=True)
    home = settings.home
    console.rule(f"edgeai demo — data home {home}")
    for pool in DEMO_POOLS:
        report = add_to_home(home, [resolve_pool(pool) / "manuals"], build_units)
        devices = report["added"] + report["replaced"]
        console.print(
            f"registered pool [bold]{pool}[/bold]: {len(devices)} devices ({', '.join(devices)})"
        )
    app = App.open(settings)
    today = dt.date.fromisoformat(args.today)
    thread = None
    for request, follow in DEMO_REQUESTS:
        out = app.ask(request, thread if follow else None, today=today)
        thread = out["thread"]
        console.rule(f"[bold]> {request}[/bold]  (thread {thread})")
        for step in out["trace"]:
            console.print(
                f"[cyan]{step['node']}[/cyan] ({step['seconds']:.2f} s): {summarize_step(step)}"
            )
        console.print(Panel(out["answer"], title="answer"))
    console.rule(
        f"demo finished in {time.perf_counter() - started:.1f} s; checkpoints in {settings.checkpoint_db}"
    )
    return 0
