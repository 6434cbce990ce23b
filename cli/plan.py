"""`edgeai plan "REQUEST"`, `edgeai plan --requests FILE.jsonl` and `edgeai bench plan`: one plan,
one plan per line of a file (JSON lines, one process), or Table-I quality over a pool."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

from edgeai.cli import add_common, add_store, require_home
from edgeai.config import Settings
from edgeai.errors import UserInputError
from rich.console import Console
from rich.table import Table


def register(sub: argparse._SubParsersAction) -> None:
    plan = sub.add_parser("plan", help="plan a request: sub-tasks, models, dependencies")
    plan.add_argument("request", nargs="?", help="the request in plain language")
    plan.add_argument(
        "--json", action="store_true", help="print exactly one plan as JSON on stdout"
    )
    plan.add_argument(
        "--requests",
        type=Path,
        metavar="FILE.jsonl",
        help='plan every line of FILE ({"request": "..."} or a JSON string); one JSON plan '
        "per line on stdout",
    )
    plan.add_argument(
        "--structured-method",
        choices=["json_schema", "json_mode", "function_calling", "text"],
        default="json_schema",
        help="structured-output method for the openai backend",
    )
    add_common(plan)
    add_store(plan)
    plan.set_defaults(func=cmd_plan, reads_only=True)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    bench = bench_sub.add_parser(
        "plan", help="Table I: plan quality of our planner vs a TF-IDF baseline"
    )
    bench.add_argument(
        "--pool",
        action="append",
        help="shipped pool name, folder with manuals/ + requests.jsonl, or folder of such pools "
        "(knowledge/heldout); repeatable; default: all shipped",
    )
    bench.add_argument(
        "--judge",
        type=Path,
        default=None,
        help="also score the judged planner with these weights (`edgeai judge train --out FILE`)",
    )
    bench.add_argument(
        "--chooser",
        type=Path,
        default=None,
        help="the learned chooser's checkpoint (`edgeai chooser train --out FILE`; default: "
        "the shipped one)",
    )
    bench.add_argument(
        "--no-learned", action="store_true", help="leave the learned chooser out"
    )
    add_common(bench)
    bench.set_defaults(func=cmd_bench_plan)


def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.agents.planning.planner import make_planner
    from edgeai.agents.planning.read import validate_request
    from edgeai.knowledge.store import open_store

    if args.requests is not None:
        if args.request is not None:
            raise UserInputError("give one request or --requests FILE, not both")
        requests = read_requests(args.requests)
    else:
        request = validate_request(args.request)
    require_home(settings)
    t0 = time.perf_counter()
    store = open_store(settings.home, url=settings.store)
    planner = make_planner(settings, store, method=args.structured_method)
    # load the encoders now (process start, reported apart from planning); the LLM planner's
    # embedded fallback holds them, and warming up must not cost an LLM round trip
    getattr(planner, "fallback", planner).plan("warm up")
    load_s = time.perf_counter() - t0
    if args.requests is not None:
        for text in requests:
            print(planner.plan(text).model_dump_json(), flush=True)
        print(f"planned {len(requests)} requests in {time.perf_counter() - t0 - load_s:.2f} s "
              f"(start-up {load_s:.1f} s)", file=sys.stderr)
        return 0
    plan = planner.plan(request)
    if args.json:
        print(plan.model_dump_json(indent=2))
        print(
            f"planned in {getattr(plan, 'seconds', 0):.3f} s (start-up {load_s:.1f} s)",
            file=sys.stderr,
        )
        return 0
    console = Console()
    if not plan.subtasks:
        console.print(f"[bold]unsupported[/bold]: {'; '.join(plan.unsupported)}")
        return 0
    table = Table(title=f"plan: {plan.request}")
    for col in ("id", "model", "device", "goal", "deps"):
        table.add_column(col)
    for s in plan.subtasks:
        table.add_row(str(s.id), s.model, s.device, s.goal, ", ".join(map(str, s.deps)) or "-")
    console.print(table)
    if plan.combine:
        console.print(f"combine: {plan.combine}")
    console.print(
        f"[dim]planner {getattr(plan, 'planner', '?')}, {getattr(plan, 'seconds', 0):.3f} s (start-up {load_s:.1f} s)[/dim]"
    )
    return 0


def read_requests(path: Path) -> list[str]:
    """Every request of a JSON-lines file, all checked before any is planned: a line is
    {"request": "..."} (other keys, such as a labelled pool's, are ignored) or a JSON string;
    a bad line is one error naming the file and the line."""
    from edgeai.agents.planning.read import validate_request
    from edgeai.inputs import read_jsonl_file

    out = []
    for number, value in read_jsonl_file(path):
        text = value.get("request") if isinstance(value, dict) else value
        if not isinstance(text, str):
            raise UserInputError(
                f'{path}:{number}: expected {{"request": "..."}} or a JSON string, '
                f"got {json.dumps(value)[:60]}"
            )
        try:
            out.append(validate_request(text))
        except UserInputError as exc:
            raise UserInputError(f"{path}:{number}: {exc}") from None
    if not out:
        raise UserInputError(f"{path}: no requests (one JSON line per request)")
    return out


def cmd_bench_plan(args: argparse.Namespace, settings: Settings) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from edgeai.agents.planning import EmbeddedPlanner, TfidfPlanner
    from edgeai.agents.planning.evaluate import evaluate, load_requests, write_details
    from edgeai.agents.planning.units import build_units
    from edgeai.knowledge.pools import expand_pools, sample_pools
    from edgeai.knowledge.store import add_to_home, open_store
    from tqdm import tqdm

    pools = expand_pools(args.pool or sample_pools())
    out_dir = settings.bench_dir / "plan"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    failure_rows = []
    details: dict[str, list[dict]] = {}
    for pool in pools:
        requests = load_requests(pool / "requests.jsonl")
        home = out_dir / f"home-{pool.name}"
        shutil.rmtree(home, ignore_errors=True)  # a fresh store from the pool's manuals
        add_to_home(home, [pool / "manuals"], build_units)
        store = open_store(home)
        planners = [EmbeddedPlanner(store), TfidfPlanner(store)]
        if not args.no_learned:
            from edgeai.agents.planning.learned import LearnedPlanner, load_set_model

            planners.insert(0, LearnedPlanner(store, load_set_model(args.chooser)))
        if args.judge is not None:
            from edgeai.agents.planning.judged import JudgedPlanner
            from edgeai.agents.planning.relevance import load_judge

            planners.insert(1, JudgedPlanner(store, judge=load_judge(args.judge)))
        for planner in planners:
            planner.plan("warm up")
            bar = tqdm(
                total=len(requests),
                desc=f"{pool.name}/{planner.name}",
                file=sys.stderr,
                leave=False,
            )
            result = evaluate(planner, store, requests, progress=bar.update)
            bar.close()
            write_details(out_dir / f"{pool.name}-{planner.name}-requests.jsonl", result)
            rows.append({"pool": pool.name, **result.row()})
            details.setdefault(planner.name, []).extend(result.details)
            failure_rows.append(
                {"pool": pool.name, "planner": planner.name, "n": result.n, **result.failures()}
            )
    table = Table(title="Plan quality (cf. Table I of autonomous-edge-ai-gpt)")
    cols = [
        "pool",
        "planner",
        "n",
        "exact_accuracy",
        "model_f1",
        "edge_f1",
        "unsupported_accuracy",
        "hallucination_rate",
        "median_seconds",
    ]
    headers = [
        "pool",
        "planner",
        "n",
        "exact acc",
        "model F1",
        "edge F1",
        "unsup acc",
        "halluc",
        "median s",
    ]
    for header in headers:
        table.add_column(header, no_wrap=True)
    for r in rows:
        table.add_row(*[_fmt(r[c]) for c in cols])
    planners = list(dict.fromkeys(r["planner"] for r in rows))
    if len(pools) > 1:  # each planner's mean over the pools (unweighted, as the pools' own rows)
        table.add_section()
        for planner in planners:
            mine = [r for r in rows if r["planner"] == planner]
            means = [_fmt(sum(r[c] for r in mine) / len(mine)) for c in cols[3:-1]]
            n = sum(r["n"] for r in mine)
            table.add_row(f"mean of {len(mine)}", planner, str(n), *means, "-")
    Console(width=max(112, Console().width)).print(table)
    _write_kinds(out_dir, details)
    csv_path = out_dir / "plan.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows({c: r[c] for c in cols} for r in rows)
    # one group of bars per pool, one bar per planner
    names = list(dict.fromkeys(r["pool"] for r in rows))
    fig, ax = plt.subplots(figsize=(min(16, max(6, 1.1 * len(names) + 2)), 4.5))
    width = 0.8 / len(planners)
    for k, planner in enumerate(planners):
        acc = {r["pool"]: r["exact_accuracy"] * 100 for r in rows if r["planner"] == planner}
        xs = [i + (k - (len(planners) - 1) / 2) * width for i, n in enumerate(names) if n in acc]
        ax.bar(
            xs,
            [acc[n] for n in names if n in acc],
            width,
            label=planner,
            color={"learned": "C1", "embedded": "C0", "judged": "C2"}.get(planner, "C7"),
        )
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(
        names, rotation=30 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center"
    )
    ax.axhline(90, color="C3", linestyle="--", linewidth=1, label="target (90 %)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(planners) + 1, fontsize=8)
    ax.set_ylabel("exact-set accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("edgeai bench plan: exact-set accuracy per pool", pad=24)
    fig.tight_layout()
    fig.savefig(out_dir / "plan.png", dpi=120)
    _write_failures(failure_rows, out_dir, plt)
    print(
        f"wrote {csv_path}, {out_dir / 'plan.png'}, plan-failures.csv/.png and per-request details",
        file=sys.stderr,
    )
    return 0


KINDS = ("single", "chain", "multi", "fused", "partial", "unsupported")


def _write_kinds(out_dir: Path, details: dict[str, list[dict]]) -> None:
    """Exact-set accuracy per kind of request (the labels' `kind`, and non-English by `lang`)
    for every planner over every request of the run, with a 95 % Wilson interval."""
    from edgeai.tools.stats import wilson

    groups = {k: (lambda d, k=k: d["kind"] == k) for k in KINDS}
    groups["non-English"] = lambda d: d["lang"] != "en"
    groups["all"] = lambda d: True
    rows = []
    for planner, ds in details.items():
        for group, member in groups.items():
            hits = [d["exact"] for d in ds if member(d)]
            if hits:
                lo, hi = wilson(sum(hits) / len(hits), len(hits))
                rows.append({"planner": planner, "kind": group, "n": len(hits),
                             "exact_accuracy": round(sum(hits) / len(hits), 4),
                             "low": lo, "high": hi})
    table = Table(title="Exact-set accuracy per kind of request, all pools (95 % interval)")
    for header in ("kind", *details):
        table.add_column(header, no_wrap=True)
    for group in groups:
        cells = []
        for planner in details:
            r = next((r for r in rows if r["planner"] == planner and r["kind"] == group), None)
            cells.append(
                "-" if r is None
                else f"{r['exact_accuracy']:.3f} [{r['low']:.2f}, {r['high']:.2f}] n={r['n']}"
            )
        table.add_row(group, *cells)
    Console(width=max(112, Console().width)).print(table)
    with (out_dir / "plan-kinds.csv").open("w", newline="") as fh:
        fields = ["planner", "kind", "n", "exact_accuracy", "low", "high"]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _write_failures(rows: list[dict], out_dir: Path, plt) -> None:
    """Where the plans go wrong: requests per outcome class (agents/plan_eval.OUTCOMES) and why
    whole requests were refused (agents/planner.REFUSAL_CAUSES), as a table, CSV and PNG."""
    from edgeai.agents.planning.evaluate import OUTCOMES, REFUSED_COLUMNS

    table = Table(title="Where the plans go wrong (requests per outcome; refusals by cause)")
    for header in ["pool", "planner", "n", *OUTCOMES, "why refused"]:
        table.add_column(header, no_wrap=True)
    for r in rows:
        why = ", ".join(f"{c} {r[col]}" for c, col in REFUSED_COLUMNS.items() if r[col])
        table.add_row(
            r["pool"], r["planner"], str(r["n"]), *[str(r[o]) for o in OUTCOMES], why or "-"
        )
    Console(width=max(172, Console().width)).print(table)
    cols = ["pool", "planner", "n", *OUTCOMES, *REFUSED_COLUMNS.values()]
    with (out_dir / "plan-failures.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows({c: r[c] for c in cols} for r in rows)
    fig, ax = plt.subplots(figsize=(8, max(3, 0.45 * len(rows) + 1.5)))
    labels = [f"{r['pool']} / {r['planner']}" for r in rows]
    left = [0.0] * len(rows)
    colors = ["C2", "C3", "C1", "C0", "C4", "C7"]  # right in green, false refusal in red
    for name, color in zip(OUTCOMES, colors, strict=True):
        share = [100 * r[name] / r["n"] for r in rows]
        ax.barh(labels, share, left=left, color=color, label=name)
        left = [a + b for a, b in zip(left, share, strict=True)]
    ax.set_xlabel("share of requests (%)")
    ax.set_xlim(0, 100)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first row on top, no empty margins
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(OUTCOMES), fontsize=8)
    ax.set_title("edgeai bench plan: where the plans go wrong", pad=24)
    fig.tight_layout()
    fig.savefig(out_dir / "plan-failures.png", dpi=120)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if v < 1.5 else f"{v:.2f}"
    return str(v)
