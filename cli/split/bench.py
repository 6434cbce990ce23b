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
        help="split inference: bytes at equal quality vs the cheapest image baseline (Table II) and "
        "emulated/measured latency vs rate (Fig. 3)",
    )
    parser.add_argument(
        "--images", type=int, default=1000, help="held-out images per task for Table II (1000)"
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
        "--formats",
        default="jpeg,webp,avif",
        help="lossy image baselines, comma-separated (jpeg,webp,avif)",
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
    lossy = None
    if not args.skip_quality:
        from edgeai.tools.split_inference import honest

        report = honest.equal_quality(args.images, formats=_formats(args.formats), progress=say)
        _print_equal_quality(console, report, args.images)
        bench.write_csv(out / "split_equal_quality.csv", [_plain(r) for r in report.rows])
        bench.write_csv(out / "split_rate_quality.csv", [_plain(r) for r in report.curve])
        bench.write_csv(out / "split_headline.csv", [_plain(h) for h in report.headlines])
        honest.plot(report, out / "split_rate_quality.png")
        summary["headline"] = [_plain(h) for h in report.headlines]
        lossy = honest.lossy_settings(report)
    if not args.skip_latency:
        rows, scenario = bench.latency_sweep(
            rates, args.latency_images, progress=say, lossy=lossy
        )
        schemes = list(dict.fromkeys(r.scheme for r in rows))
        table = Table(
            title="End-to-end latency (s), task mix 10/40/50 %, emulated / measured (cf. Fig. 3): "
            f"device {scenario.device} {scenario.device_hz:.2g} Hz, edge {scenario.edge_hz:.2g} "
            f"Hz, RTT {2 * scenario.edge_one_way_s * 1000:.0f} ms; cloud RTT "
            f"{2 * scenario.cloud_one_way_s * 1000:.0f} ms"
        )
        table.add_column("rate KB/s")
        for s in schemes:
            table.add_column(s)
        for rate in dict.fromkeys(r.rate_kbps for r in rows):
            cells = {r.scheme: r for r in rows if r.rate_kbps == rate and r.task == "mix"}
            table.add_row(
                f"{rate:g}",
                *[f"{cells[s].emulated_s:.3f} / {cells[s].measured_s:.3f}" for s in schemes],
            )
        console.print(table)
        cross = bench.crossovers(rows)
        for c in cross:
            where = (
                f"cross at {c['rate_kbps']:.0f} KB/s, {c['faster_above']} faster above"
                if c["rate_kbps"] == c["rate_kbps"]
                else f"no crossing in the range; {c['faster_above']} faster throughout"
            )
            console.print(f"{c['a']} vs {c['b']} (emulated): {where}")
        shape = bench.check_shape(rows)
        measured = bench.check_shape(rows, key="measured_s")
        for claim, ok in shape.items():
            console.print(
                f"{'holds' if ok else 'DOES NOT HOLD'} (emulated; measured: "
                f"{'holds' if measured[claim] else 'does not hold'}): {claim}"
            )
        bench.write_csv(out / "split_latency.csv", [r.as_csv() for r in rows])
        bench.plot_latency(rows, out / "split_latency.png")
        summary["latency_shape"] = shape
        summary["latency_shape_measured"] = measured
        summary["crossovers"] = cross
    (out / "split_summary.json").write_text(json.dumps(summary, indent=2, default=float))
    console.print(f"CSV and PNG written under {out}")
    return 0


def _formats(text: str) -> tuple[str, ...]:
    from edgeai.tools.split_inference.imagecodecs import LOSSY_FORMATS

    formats = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in formats if f not in LOSSY_FORMATS]
    if not formats or bad:
        raise UserInputError(
            f"--formats: unknown {', '.join(bad) or 'empty list'} "
            f"(choose from {', '.join(LOSSY_FORMATS)})"
        )
    return formats


def _plain(row: object) -> dict:
    from dataclasses import asdict

    out = {}
    for key, value in asdict(row).items():  # type: ignore[call-overload]
        if isinstance(value, tuple):
            out.update({f"{key}_{part}": v for part, v in zip(("point", "lo", "hi"), value)})
        elif isinstance(value, float):
            out[key] = float(f"{value:.4g}") if abs(value) < 0.01 else round(value, 3)
        else:
            out[key] = value
    return out


def _print_equal_quality(console, report, n: int) -> None:
    from rich.table import Table

    table = Table(
        title=f"Bytes on the wire at equal quality (within {report.headlines[0].tolerance:g} "
        f"points of the uncompressed photo), {n} held-out images per task; 95 % paired "
        "bootstrap intervals (cf. Table II)"
    )
    for col in ("task", "scheme", "setting", "wire B", "payload B", "quality", "vs uncompressed",
                "meets"):
        table.add_column(col)
    for r in report.rows:
        setting = (
            f"k={r.split} lambda={r.lam:g}" if r.lam is not None
            else f"k={r.split}" if r.split is not None
            else f"q={r.quality}" if r.quality is not None else "lossless"
        )
        table.add_row(
            r.task, r.scheme, setting, f"{r.wire_bytes:,.0f}", f"{r.payload_bytes:,.0f}",
            f"{r.score:.2f}", f"{r.delta:+.2f} [{r.delta_lo:+.2f}, {r.delta_hi:+.2f}]",
            "yes" if r.meets else "no",
        )
    console.print(table)
    head = Table(title="Headline: cheapest image baseline / cheapest co-inference, both at equal "
                 "quality (wire bytes; ratio with a 95 % bootstrap interval)")
    for col in ("task", "reference", "co-inference", "bytes", "baseline", "bytes", "ratio",
                "codec side info (checkpoint, both ends)", "224-px PNG (old baseline)"):
        head.add_column(col)
    for h in report.headlines:
        head.add_row(
            h.task, f"{h.reference:.2f}", h.coinfer, f"{h.coinfer_wire:,.0f}", h.baseline,
            f"{h.baseline_wire:,.0f}", f"{h.ratio:.2f}x [{h.ratio_lo:.2f}, {h.ratio_hi:.2f}]",
            f"{h.side_info_bytes:,} B", f"{h.png_full_wire:,.0f} B",
        )
    console.print(head)
