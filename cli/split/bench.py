"""`edgeai bench split`: Table II (bytes and quality per scheme) and Fig. 3 (latency vs link rate),
tables on stdout, CSV + PNG under the data home's bench folder."""

from __future__ import annotations

import argparse
import json
import sys

from edgeai.cli import add_common
from edgeai.config import Settings
from edgeai.errors import UserInputError


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    parser = bench_sub.add_parser(
        "split",
        help="split inference: bytes/quality per scheme (Table II) and latency vs rate (Fig. 3)",
    )
    parser.add_argument(
        "--images", type=int, default=300, help="held-out images per task for Table II (300)"
    )
    parser.add_argument(
        "--latency-images",
        type=int,
        default=3,
        help="images per task and rate for the latency sweep (3)",
    )
    parser.add_argument(
        "--rates",
        default=None,
        help="comma-separated link rates in KB/s for the sweep (default 50..1000)",
    )
    parser.add_argument("--skip-quality", action="store_true", help="only the latency sweep")
    parser.add_argument("--skip-latency", action="store_true", help="only Table II")
    parser.add_argument(
        "--no-curve", action="store_true", help="Table II without the rate-quality ladders"
    )
    add_common(parser)
    parser.set_defaults(func=bench_split_command)


def _rates(text: str | None) -> tuple[float, ...]:
    from edgeai.tools.split_inference.bench import DEFAULT_RATES_KBPS

    if text is None:
        return tuple(float(r) for r in DEFAULT_RATES_KBPS)
    try:
        rates = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise UserInputError(f"--rates: expected numbers in KB/s like 50,300,1000 ({exc})") from exc
    if not rates or any(not r > 0 for r in rates):
        raise UserInputError(f"--rates: every rate must be > 0 KB/s, got {text!r}")
    return rates


def bench_split_command(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.split_inference import bench
    from rich.console import Console
    from rich.table import Table

    if args.images < 1 or args.latency_images < 1:
        raise UserInputError("--images and --latency-images must be >= 1")
    rates = _rates(args.rates)
    out = settings.bench_dir / "split"
    out.mkdir(parents=True, exist_ok=True)
    console = Console(width=max(120, Console().width))

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    summary: dict = {}
    if not args.skip_quality:
        report = bench.quality_table(args.images, curve=not args.no_curve, progress=say)
        table = Table(
            title=f"Communication cost and task quality, {args.images} held-out images per task "
            "(cf. Table II of autonomous-edge-ai-gpt)"
        )
        for col in (
            "task",
            "scheme",
            "bytes/request",
            "x fewer than PNG",
            "quality",
            "metrics",
            "note",
        ):
            table.add_column(col)
        for r in report.rows:
            png = report.get(r.task, "edge-lossless").mean_bytes
            ratio = f"{png / r.mean_bytes:.0f}x" if r.mean_bytes else "-"
            table.add_row(
                r.task,
                r.scheme,
                f"{r.mean_bytes:,.0f}",
                ratio,
                f"{r.score:.2f}",
                " ".join(f"{k}={v:.2f}" for k, v in r.metrics.items()),
                r.note + (f" k={r.split} lambda={r.lam:g}" if r.lam is not None else ""),
            )
        console.print(table)
        checks = bench.acceptance(report)
        acc = Table(title="Acceptance (issue 5, points 1-2)")
        for col in (
            "task",
            "bytes ratio",
            "needed",
            "quality gap to PNG",
            "co-inference",
            "best lossy at equal bytes",
            "holds",
        ):
            acc.add_column(col)
        for c in checks:
            acc.add_row(
                c["task"],
                f"{c['byte_ratio']:.0f}x",
                f">= {c['ratio_needed']:.0f}x",
                f"{c['quality_gap']:+.2f}",
                f"{c['coinfer_score']:.2f}",
                f"{c['best_lossy_at_equal_bytes']:.2f} ({c['lossy_scheme']}, "
                f"{c['lossy_bytes']:.0f} B)",
                "yes" if c["holds"] else "NO",
            )
        console.print(acc)
        bench.write_csv(out / "split_quality.csv", [r.as_csv() for r in report.rows])
        if report.curve:
            bench.write_csv(out / "split_rate_quality.csv", [r.as_csv() for r in report.curve])
            bench.plot_quality_curve(report, out / "split_rate_quality.png")
        summary["quality"] = checks
    if not args.skip_latency:
        rows, scenario = bench.latency_sweep(rates, args.latency_images, progress=say)
        schemes = list(dict.fromkeys(r.scheme for r in rows))
        table = Table(
            title="End-to-end latency (s), task mix 10/40/50 %, measured through the socket runtime "
            f"(device {scenario.device} {scenario.device_hz:.2g} Hz, edge {scenario.edge_hz:.2g} "
            f"Hz, RTT {2 * scenario.edge_one_way_s * 1000:.0f} ms; cloud RTT "
            f"{2 * scenario.cloud_one_way_s * 1000:.0f} ms) (cf. Fig. 3)"
        )
        table.add_column("rate KB/s")
        for s in schemes:
            table.add_column(s)
        for rate in dict.fromkeys(r.rate_kbps for r in rows):
            cells = {r.scheme: r.seconds for r in rows if r.rate_kbps == rate and r.task == "mix"}
            table.add_row(f"{rate:g}", *[f"{cells[s]:.3f}" for s in schemes])
        console.print(table)
        shape = bench.check_shape(rows)
        for claim, ok in shape.items():
            console.print(f"{'holds' if ok else 'DOES NOT HOLD'}: {claim}")
        bench.write_csv(out / "split_latency.csv", [r.as_csv() for r in rows])
        bench.plot_latency(rows, out / "split_latency.png")
        summary["latency_shape"] = shape
    (out / "split_summary.json").write_text(json.dumps(summary, indent=2, default=float))
    console.print(f"CSV and PNG written under {out}")
    return 0
