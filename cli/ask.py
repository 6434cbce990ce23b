"""`edgeai ask "REQUEST" [--thread T] [--json]`: one request through the whole graph, checkpointed.

Only the command line lives here; the store + planner + checkpointed graph it runs on is the
app's assembly in graphs/app.py, which the demo and the API server use too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from edgeai.cli import add_common, add_store
from edgeai.config import Settings
from edgeai.errors import UserInputError

# the flags that become keyword arguments of App.ask
ASK_OPTIONS = ("today", "seed", "objective", "solver")


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
        "--solver",
        help="offloading solver (default: exact for <= 10 offloadable sub-tasks, else aed)",
    )
    ask.add_argument("--yes", action="store_true",
                     help="approve generated training code without asking (scripted runs)")
    ask.add_argument("--fl", metavar="JSON",
                     help='how to train when no model fits, e.g. \'{"data": "digits", "rounds": 5}\' '
                          "(fields of FLOptions; default: generated photos, 10 clients, 10 rounds, 3 trials)")
    ask.add_argument("--image", metavar="PATH",
                     help="your photo for the photo models (PNG/JPEG/WebP/AVIF; large photos are "
                          "scaled down); without it they use the household camera's photo")
    add_common(ask)
    add_store(ask)
    ask.set_defaults(func=cmd_ask)


def _fl_options(text: str | None):
    if text is None:
        return None
    from edgeai.graphs.state import FLOptions
    from pydantic import ValidationError

    try:
        return FLOptions.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "--fl"
        raise UserInputError(f"--fl: field '{where}': {first['msg']}") from None


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


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
    from edgeai.graphs.app import App
    from edgeai.inputs import check_text

    if args.thread is not None:
        check_text(args.thread, "--thread")
    fl = _fl_options(args.fl)
    image = None
    if args.image is not None:  # checked before anything opens: a bad photo costs nothing
        from edgeai.tools.split_inference.imagecodecs import read_photo

        read_photo(args.image)
        with open(args.image, "rb") as fh:
            image = fh.read()
    app = App.open(settings)
    kwargs = {k: getattr(args, k) for k in ASK_OPTIONS}
    kwargs["image"] = image
    from edgeai.cli.fl import Progress

    progress = Progress(args.json)  # training a model (image FL, fine-tuning) shows its rounds
    kwargs["progress"] = progress
    if fl is not None or args.yes:
        from edgeai.cli.fl import _codegen_model

        kwargs |= {"fl": fl, "approve": args.yes, "codegen_model": _codegen_model(settings)}
    out = app.ask(args.request, args.thread, **kwargs)
    while out.get("interrupt"):  # generated code waits for approval
        if not sys.stdin.isatty():
            raise UserInputError("generated training code needs a person's approval before it "
                                 "runs: run on a terminal, or pass --yes")
        from edgeai.cli.fl import _ask_approval

        out = app.ask(args.request, out["thread"], resume=_ask_approval(out["interrupt"]),
                      progress=progress, fl=fl)
    if out.get("interrupted"):
        stopped = out["interrupted"]
        print(
            f"note: the previous turn on this thread (\"{stopped['request']}\") was interrupted "
            f"before {', '.join(stopped['stopped_before'])} and left no answer",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print(out["answer"])
        if out["sources"]:
            used = ", ".join(f"{s['manual'] or s['device']}" for s in out["sources"])
            print(f"manuals: {used}", file=sys.stderr)
    print(f"thread: {out['thread']}  (follow up with --thread {out['thread']})", file=sys.stderr)
    return 0
