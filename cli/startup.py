"""`edgeai bench startup`: what a person waits for, process start included.

Runs `edgeai knowledge add` (the healthcare and photo sample pools, into an empty home under
`<home>/bench/startup/home` each time), then `edgeai --help`, `edgeai knowledge list` and
`edgeai plan REQUEST` on that home, as fresh subprocesses, and reports per command the first wall
time (for `plan`: the first plan after the add) and the median of `--repeat` later runs, as a
table on stdout and `startup.csv` beside the home. A last row plans a request no run has seen
before each time (NEW_REQUESTS): the request itself must be embedded, so both encoders load; the
other rows show what the home's embedding cache saves.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import subprocess
import sys
import time

from edgeai.cli import BENCHES, add_common
from edgeai.config import Settings
from edgeai.errors import EdgeAIError, UserInputError

POOLS = ("healthcare", "photo")
DEFAULT_REQUEST = "how is my mood today?"
NEW_REQUESTS = (
    "what is my breathing rate right now?",
    "describe this photo for me",
    "wie hoch ist mein Puls?",
    "is the thermostat set too high tonight?",
    "how many cats are in the picture?",
    "tell me which apps I used most today",
    "caption this picture in Spanish",
    "did I sleep well last night?",
    "what does the sign in this photo say?",
    "turn down the heating a little",
    "is my heart rate normal?",
)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    bench = bench_sub.add_parser("startup", help=BENCHES["startup"][1])  # one help line, kept there
    bench.add_argument(
        "--repeat", type=int, default=5, help="timed runs per command after the first"
    )
    bench.add_argument("--request", default=DEFAULT_REQUEST, help="the request `plan` is timed on")
    add_common(bench)
    bench.set_defaults(func=cmd_bench_startup)


def _wall(argv: list[str]) -> float:
    """Seconds one `edgeai ARGV` takes as a new process; a failing command is an error."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "edgeai.cli", *argv], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgeAIError(f"`edgeai {' '.join(argv)}` failed (exit {proc.returncode}): {last}")
    return seconds


def _row(label: str, first: float, runs: list[float]) -> dict[str, object]:
    return {
        "command": label,
        "first_s": round(first, 3),
        "median_s": round(statistics.median(runs), 3),
        "min_s": round(min(runs), 3),
        "max_s": round(max(runs), 3),
        "runs": len(runs),
    }


def cmd_bench_startup(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.knowledge.pools import resolve_pool
    from rich.console import Console
    from rich.table import Table

    if not 1 <= args.repeat < len(NEW_REQUESTS):
        raise UserInputError(f"--repeat must be between 1 and {len(NEW_REQUESTS) - 1}")
    out_dir = settings.bench_dir / "startup"
    home = out_dir / "home"
    add = ["knowledge", "add", *(str(resolve_pool(p) / "manuals") for p in POOLS), "--home", str(home)]

    def add_to_empty_home() -> float:
        shutil.rmtree(home, ignore_errors=True)  # every add starts from an empty home
        return _wall(add)

    adds = [add_to_empty_home() for _ in range(args.repeat + 1)]
    rows = [_row(f"edgeai knowledge add {' '.join(POOLS)}", adds[0], adds[1:])]
    commands = {
        "edgeai --help": ["--help"],
        "edgeai knowledge list": ["knowledge", "list", "--home", str(home)],
        f'edgeai plan "{args.request}"': ["plan", args.request, "--home", str(home)],
    }
    fresh = [["plan", r, "--home", str(home)] for r in NEW_REQUESTS[: args.repeat + 1]]
    for label, argv in [*commands.items(), ("edgeai plan <a request not seen before>", None)]:
        first = _wall(argv or fresh[0])
        rows.append(_row(label, first, [_wall(argv or fresh[i + 1]) for i in range(args.repeat)]))
    table = Table(title=f"start-up wall time, process start included (pools: {', '.join(POOLS)})")
    for col in rows[0]:
        table.add_column(col, no_wrap=col != "command")
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    Console().print(table)
    csv_path = out_dir / "startup.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {csv_path}", file=sys.stderr)
    return 0
