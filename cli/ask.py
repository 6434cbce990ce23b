"""`edgeai ask "REQUEST" [--thread T] [--json]`: one request through the whole graph, checkpointed."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import uuid
from typing import Any

from edgeai.cli import add_common, require_home
from edgeai.config import Settings
from edgeai.errors import UnknownThreadError, UserInputError


def register(sub: argparse._SubParsersAction) -> None:
    ask = sub.add_parser(
        "ask", help="answer a request end to end (plan, select, offload, run, fuse)"
    )
    ask.add_argument("request", nargs="?", help="the request in plain language")
    ask.add_argument("--thread", help="continue this conversation thread (omit to start a new one)")
    ask.add_argument("--json", action="store_true", help="print the whole trace as JSON")
    ask.add_argument(
        "--today", type=_date, help="the date 'today' means (YYYY-MM-DD; default: today)"
    )
    ask.add_argument("--seed", type=int, default=0, help="which simulated household")
    ask.add_argument("--objective", choices=["min_latency", "min_energy"], default="min_latency")
    ask.add_argument(
        "--solver", help="offloading solver (default: exact for <= 10 offloadable sub-tasks, else aed)"
    )
    add_common(ask)
    ask.set_defaults(func=cmd_ask)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


class Session:
    """A store, a planner and the checkpointed graph of one data home, opened once."""

    def __init__(self, settings: Settings) -> None:
        from edgeai.agents.planning.llm import make_planner
        from edgeai.graphs.graph import build_graph, sqlite_checkpointer
        from edgeai.knowledge.store import open_store

        require_home(settings)
        self.store = open_store(settings.home)
        self.planner = make_planner(settings, self.store)
        self.checkpointer = sqlite_checkpointer(settings.checkpoint_db)
        self.graph = build_graph(self.checkpointer)

    def threads(self) -> list[str]:
        return sorted({c.config["configurable"]["thread_id"] for c in self.checkpointer.list(None)})

    def ask(
        self,
        request: str,
        thread: str | None,
        *,
        today: dt.date | None = None,
        seed: int = 0,
        objective: str = "min_latency",
        solver: str | None = None,
    ) -> dict[str, Any]:
        from edgeai.agents.planning.read import validate_request
        from edgeai.graphs.state import EdgeContext

        request = validate_request(request)
        if thread is not None:
            config = {"configurable": {"thread_id": thread}}
            if not self.graph.get_state(config).values:
                known = ", ".join(self.threads()[-5:]) or "none yet"
                raise UnknownThreadError(
                    f"unknown thread '{thread}' (omit --thread to start one; recent threads: {known})"
                )
        else:
            thread = uuid.uuid4().hex[:12]
            config = {"configurable": {"thread_id": thread}}
        context = EdgeContext(
            store=self.store,
            planner=self.planner,
            today=today or dt.date.today(),
            seed=seed,
            objective=objective,
            solver=solver,
        )
        state = self.graph.invoke({"request": request}, config, context=context)
        turn = len(state.get("history", [])) - 1
        return {
            "thread": thread,
            "request": request,
            "effective_request": state.get("effective_request"),
            "day": state.get("day"),
            "answer": state.get("answer"),
            "plan": state.get("plan"),
            "placements": state.get("placements"),
            "offloading": state.get("offloading"),
            "results": state.get("results"),
            "trace": [s for s in state.get("trace", []) if s.get("turn") == turn],
        }


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    if args.request is None or not args.request.strip():
        raise UserInputError(
            'the request is empty: say what you want, e.g. edgeai ask "how is my mood today?"'
        )
    if args.solver is not None:
        from edgeai.tools.offloading import SOLVERS

        if args.solver not in SOLVERS:
            raise UserInputError(
                f"unknown solver '{args.solver}' (choose from {', '.join(SOLVERS)})"
            )
    session = Session(settings)
    out = session.ask(
        args.request,
        args.thread,
        today=args.today,
        seed=args.seed,
        objective=args.objective,
        solver=args.solver,
    )
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print(out["answer"])
    print(f"thread: {out['thread']}  (follow up with --thread {out['thread']})", file=sys.stderr)
    return 0
