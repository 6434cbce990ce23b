"""`edgeai models list|run|train` and `edgeai bench models`: the healthcare-home models that really run."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
from pathlib import Path

from edgeai.cli import add_common
from edgeai.config import Settings
from edgeai.errors import UserInputError
from rich.console import Console
from rich.table import Table


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="healthcare-home models: list, run, train")
    msub = models.add_subparsers(dest="models_command", required=True, parser_class=type(models))

    lst = msub.add_parser("list", help="installed models, their devices, inputs and outputs")
    add_common(lst)
    lst.set_defaults(func=cmd_list)

    run = msub.add_parser("run", help="run a model (after the models that produce its inputs)")
    run.add_argument("model", help="model id, e.g. mood-from-vitals")
    run.add_argument("--day", type=_date, default=None, help="YYYY-MM-DD (default: today)")
    run.add_argument("--seed", type=int, default=0, help="which simulated household")
    run.add_argument("--json", action="store_true", help="print every result as JSON")
    add_common(run)
    run.set_defaults(func=cmd_run)

    train = msub.add_parser("train", help="train the app classifier and both mood classifiers")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=None,
                       help="checkpoint folder (default: the package's shipped checkpoints)")
    train.add_argument("--traffic-days", type=int, default=None)
    train.add_argument("--apps-days", type=int, default=None)
    train.add_argument("--vitals-days", type=int, default=None)
    add_common(train)
    train.set_defaults(func=cmd_train)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    bench = bench_sub.add_parser("models", help="held-out accuracy/error of every healthcare model")
    bench.add_argument("--n", type=int, default=100, help="held-out household-days")
    bench.add_argument("--seed", type=int, default=0, help="picks the held-out households")
    add_common(bench)
    bench.set_defaults(func=cmd_bench)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.errors import WeightsError
    from edgeai.tools.healthcare.runtime import DECLARED_NOT_INSTALLED, MODELS
    from edgeai.tools.healthcare.weights import CHECKPOINT_FILES, load_checkpoint
    from edgeai.tools.runtimes import ModelNotInstalledError

    table = Table(title="healthcare-home models")
    for col in ("model", "device", "inputs -> outputs", "status"):
        table.add_column(col)
    for mid, spec in MODELS.items():
        status = "ready"
        if mid in CHECKPOINT_FILES:
            try:
                load_checkpoint(mid)
            except (ModelNotInstalledError, WeightsError) as exc:
                status = str(exc)
        table.add_row(mid, spec.device, f"{', '.join(spec.inputs)} -> {', '.join(spec.outputs)}",
                      status)
    for mid, device in DECLARED_NOT_INSTALLED.items():
        table.add_row(mid, device, "-", "declared by the manual, not installed")
    Console().print(table)
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.healthcare.runtime import run_chain

    day = args.day or dt.date.today()
    results = run_chain(args.model, day, args.seed)
    if args.json:
        print(json.dumps({m: r.model_dump() for m, r in results.items()}, indent=2))
        return 0
    console = Console()
    for mid, res in results.items():
        console.print(f"[bold]{mid}[/bold] ({res.device}, {res.seconds * 1000:.0f} ms): {res.summary}")
        console.print(f"  outputs: {json.dumps(res.outputs)}")
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.healthcare.training import TrainConfig, train_all

    overrides = {k: getattr(args, k) for k in ("traffic_days", "apps_days", "vitals_days")
                 if getattr(args, k) is not None}
    if args.out is not None:
        overrides["out_dir"] = args.out
    manifest = train_all(TrainConfig(seed=args.seed, **overrides))
    table = Table(title=f"trained in {manifest['seconds']} s")
    for col in ("model", "score", "value"):
        table.add_column(col)
    for mid, scores in manifest["scores"].items():
        for key, value in scores.items():
            table.add_row(mid, key, f"{value:.3f}" if isinstance(value, float) else str(value))
    for mid, info in manifest["files"].items():
        table.add_row(mid, "checkpoint bytes", str(info["bytes"]))
    Console().print(table)
    return 0


def _plot(rows: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shares = [r for r in rows if r.unit == "share"]
    errors = [r for r in rows if r.unit not in ("share", "") and not math.isnan(r.value)]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    for ax, group, title in ((axes[0], shares, "accuracy (higher is better)"),
                             (axes[1], errors, "error (lower is better)")):
        labels = [f"{r.model}\n{r.metric}" + (f" [{r.unit}]" if r.unit != "share" else "")
                  for r in group]
        x = range(len(group))
        ax.bar([i - 0.2 for i in x], [r.value for r in group], width=0.4, label="model")
        ax.bar([i + 0.2 for i in x], [r.baseline_value for r in group], width=0.4, label="baseline",
               color="lightgray")
        ax.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(title)
        ax.legend()
    axes[1].set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.healthcare.evaluate import evaluate_models

    if args.n < 2:
        raise UserInputError(f"--n must be at least 2, got {args.n}")
    rows = evaluate_models(n=args.n, seed=args.seed)
    out = settings.bench_dir / "models"
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "models.csv", out / "models.png"
    fields = list(rows[0].model_dump())
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow(r.model_dump())
    _plot(rows, png_path)

    table = Table(title=f"healthcare models on {args.n} held-out household-days (seed {args.seed})")
    for col in ("model", "device", "metric", "value", "baseline", "note"):
        table.add_column(col)

    def fmt(v: float, unit: str) -> str:
        if math.isnan(v):
            return "-"
        return f"{v:.1%}" if unit == "share" else f"{v:.3g} {unit}"

    for r in rows:
        base = f"{r.baseline}: {fmt(r.baseline_value, r.unit)}" if r.baseline else "-"
        table.add_row(r.model, r.device, r.metric, fmt(r.value, r.unit), base, r.note)
    console = Console()
    console.print(table)
    console.print(f"wrote {csv_path} and {png_path}")
    return 0
