"""`edgeai split train-effnet-codec` and `edgeai bench split-effnet`: EfficientNet-Lite0 (ImageNet)
split at its late stage boundaries with label-free codecs, measured on held-out photo sources
against JPEG / WebP / AVIF / PNG of the same crops."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgeai.cli import add_common
from edgeai.cli.split.common import shown, table
from edgeai.config import Settings
from edgeai.errors import UserInputError

DEFAULT_CONFIGS = "8:3e-6:250:64:1500:48:256:2,8:1e-6:150:64:600:320:320:2"


def register(split_sub: argparse._SubParsersAction) -> None:
    p = split_sub.add_parser(
        "train-effnet-codec",
        help="train label-free feature codecs for EfficientNet-Lite0 (distilled from the unsplit model)",
    )
    p.add_argument(
        "--configs",
        default=DEFAULT_CONFIGS,
        help="comma-separated k:lambda:steps:batch[:warmup:channels:hidden:gain:arch:lr], one codec "
        "each (arch: mlp or linear, a PCA-initialised transform coder) "
        f"(default: the shipped two, {DEFAULT_CONFIGS}; k = 6, 7, 8 cut after 14x14x112, "
        "7x7x192, 7x7x320)",
    )
    p.add_argument("--crops", type=int, default=2048, help="augmented training crops (2048)")
    p.add_argument("--seed", type=int, default=0, help="crop sampling seed (0)")
    p.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="folder for the codecs and manifest-effnet.json (default <home>/split/codecs; give "
        "tools/split_inference/checkpoints to replace the shipped ones)",
    )
    add_common(p)
    p.set_defaults(func=cmd_train)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser(
        "split-effnet",
        help="EfficientNet-Lite0 split: codec bytes and agreement vs JPEG/WebP/AVIF/PNG, held-out photos",
    )
    p.add_argument("--per-photo", type=int, default=2, help="crops per held-out photo (2)")
    p.add_argument(
        "--codec",
        type=Path,
        action="append",
        default=[],
        help="codec file (repeatable; default: the shipped EfficientNet codecs)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: the bundled photos only, 2 crops each, 2 qualities, no full-size sweep",
    )
    add_common(p)
    p.set_defaults(func=cmd_bench)


def _configs(text: str) -> list:
    from edgeai.tools.split_inference.codec import ARCHS
    from edgeai.tools.split_inference.effnet_codec import EffCodecArgs

    out = []
    for part in (t.strip() for t in text.split(",") if t.strip()):
        try:
            k, lam, steps, batch, *more = part.split(":")
            cfg = EffCodecArgs(split=int(k), lam=float(lam), steps=int(steps), batch=int(batch))
            names = ("warmup", "channels", "hidden", "gain", "arch", "lr")
            if len(more) > len(names):
                raise ValueError(part)
            for name, value in zip(names, more, strict=False):
                setattr(cfg, name, type(getattr(cfg, name))(value))
        except ValueError:
            raise UserInputError(
                f"--configs: '{part}' is not k:lambda:steps:batch[:warmup:channels:hidden:gain:arch:lr] "
                "(e.g. 8:3e-6:250:64:1500:48:256:2)"
            ) from None
        if cfg.split not in range(1, 9) or cfg.lam < 0 or cfg.steps < 1 or cfg.batch < 1:
            raise UserInputError(
                f"--configs: '{part}' needs 1 <= k <= 8, lambda >= 0, steps, batch >= 1"
            )
        if cfg.arch not in ARCHS:
            raise UserInputError(f"--configs: '{part}': arch must be one of {', '.join(ARCHS)}")
        out.append(cfg)
    if not out:
        raise UserInputError("--configs: no codec to train")
    return out


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.split_inference.effnet_codec import train_effnet_codecs

    if args.crops < 1:
        raise UserInputError(f"--crops must be >= 1, got {args.crops}")
    configs = _configs(args.configs)
    out = args.out_dir or settings.home / "split" / "codecs"
    command = (
        f"edgeai split train-effnet-codec --configs {args.configs} --crops {args.crops} "
        f"--seed {args.seed} --out-dir {shown(out)}"
    )
    records = train_effnet_codecs(
        configs,
        n_crops=args.crops,
        out_dir=out,
        seed=args.seed,
        command=command,
        progress=lambda m: print(m, file=sys.stderr),
        cache=settings.home / "split" / "cache" / "effnet-train-features.pt",
    )
    rows = [
        [
            r["file"],
            f"{r['train_kl']:.4f}",
            f"{r['train_bytes_estimate']:.0f}",
            f"{r['seconds']:.0f}",
        ]
        for r in records
    ]
    from rich.console import Console

    Console().print(
        table(
            ["codec", "train KL", "bytes (est.)", "seconds"],
            rows,
            f"EfficientNet-Lite0 codecs in {out}",
        )
    )
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.split_inference import effnet_codec as E
    from edgeai.tools.split_inference.codec import load_codec
    from rich.console import Console

    if args.per_photo < 1:
        raise UserInputError(f"--per-photo must be >= 1, got {args.per_photo}")
    for path in args.codec:
        if not path.is_file():
            raise UserInputError(f"--codec: file '{path}' does not exist")
    codecs = (
        [load_codec(p) for p in args.codec]
        if args.codec
        else E.check_codecs(E.EFFNET_CODECS[:1] if args.quick else E.EFFNET_CODECS)
    )

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.quick:
        report = E.evaluate(
            codecs,
            per_photo=2,
            sources=("bundled",),
            qualities=(30, 90),
            full_size=False,
            quant_splits=(8,),
            quant_bits=(8,),
            progress=say,
        )
    else:
        report = E.evaluate(codecs, per_photo=args.per_photo, progress=say)
    out = settings.bench_dir / "split"
    out.mkdir(parents=True, exist_ok=True)
    console = Console(width=max(120, Console().width))
    rows = []
    for r in report.rows:
        if "@" in r.scheme and r.scheme != "png@224":
            continue
        lo, hi = r.interval
        rows.append(
            [
                r.scheme,
                r.setting,
                f"{100 * r.agreement:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]",
                f"{r.mean_bytes:.0f}",
            ]
        )
    for b in E.baseline_cheapest(report):
        rows.append(
            [
                b["scheme"],
                f"cheapest >= 99 %: {b['setting'] or 'none'}",
                f"{100 * b['agreement']:.1f}" if b["agreement"] is not None else "-",
                f"{b['mean_bytes']:.0f}" if b["mean_bytes"] is not None else "-",
            ]
        )
    console.print(
        table(
            ["scheme", "setting", "agreement % [95 % CI]", "bytes/image"],
            rows,
            f"EfficientNet-Lite0 split: {report.n} crops of {report.photos} held-out "
            f"photos ({', '.join(report.sources)}); codecs trained on "
            f"{', '.join(report.train_sources) or '-'}",
        )
    )
    cmp_rows = [
        [
            c["codec"],
            c["target"],
            f"{100 * c['codec_agreement']:.1f}",
            f"{c['codec_bytes']:.0f}",
            c["best_image"] or "none reaches it",
            f"{c['best_image_bytes']:.0f}" if c["best_image_bytes"] else "-",
            (f"{c['ratio']:.2f}x" if c["ratio"] else "-")
            + (f" [{c['ratio_ci95'][0]:.2f}, {c['ratio_ci95'][1]:.2f}]" if c["ratio_ci95"] else ""),
        ]
        for c in report.best
    ]
    console.print(
        table(
            [
                "codec",
                "agreement target",
                "codec %",
                "codec B",
                "cheapest image",
                "image B",
                "image/codec [95 %, photos resampled]",
            ],
            cmp_rows,
            "Codec vs the cheapest image at >= 99 % (PNG included / lossy only), at the codec's "
            "own agreement, and at the highest agreement both reach",
        )
    )
    suffix = "_quick" if args.quick else ""
    from edgeai.tools.split_inference.bench import write_csv

    write_csv(out / f"split_effnet{suffix}.csv", [r.as_csv() for r in report.rows])
    E.plot(report, out / f"split_effnet{suffix}.png")
    (out / f"split_effnet{suffix}.json").write_text(
        json.dumps(E.summary(report), indent=2, default=float) + "\n"
    )
    console.print(
        f"{report.n} crops in {report.seconds:.0f} s; CSV, PNG and JSON written under {out}"
    )
    return 0
