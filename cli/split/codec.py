"""`edgeai split train-codec` / `eval-codec`: the learned feature codec at a split point (train it
on a frozen model, score it on held-out photos against the raw activation and PNG)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from edgeai.cli import add_common
from edgeai.cli.split.common import TASK_CHOICES, check_positive, shown, table
from edgeai.config import Settings
from edgeai.errors import UserInputError

if TYPE_CHECKING:
    from rich.table import Table


def register(split_sub: argparse._SubParsersAction) -> None:
    p = split_sub.add_parser(
        "train-codec",
        help="train a feature codec (task loss + lambda * bits) at split k of a frozen model",
    )
    p.add_argument("--task", required=True, choices=TASK_CHOICES)
    p.add_argument("--split", type=int, required=True, help="split point k (1 = after patch embed)")
    p.add_argument("--lam", type=float, required=True, help="rate weight per bit per image")
    p.add_argument("--channels", type=int, default=8, help="latent channels per token (8)")
    p.add_argument("--seed", type=int, default=0, help="torch seed and codec-training-image offset")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps (3000)")
    p.add_argument("--hidden", type=int, default=128, help="analysis/synthesis MLP width (128)")
    p.add_argument(
        "--beta", type=float, default=1.0, help="distillation weight toward the uncompressed model"
    )
    p.add_argument("--gain", type=float, default=1.0, help="initial latent gain (1)")
    p.add_argument("--pool", type=int, default=4096, help="distinct training images (4096)")
    p.add_argument("--eval-n", type=int, default=500, help="held-out images scored (seeds 0..n-1)")
    p.add_argument(
        "--model-dir", type=Path, default=None, help="model checkpoints (default: the shipped ones)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="codec file (default: <home>/split/codecs/codec-<task>-k<k>-lam<lam>.pt); its "
        "folder's manifest.json gets the command, seed and held-out metrics",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(p)
    p.set_defaults(func=cmd_train_codec)

    e = split_sub.add_parser(
        "eval-codec", help="held-out task score and real bytes of a codec vs the raw activation"
    )
    e.add_argument("codec", type=Path, help="codec checkpoint (.pt)")
    e.add_argument("--n", type=int, default=500, help="held-out images (seeds start..start+n-1)")
    e.add_argument("--start", type=int, default=0, help="first held-out image seed (0)")
    e.add_argument("--model-dir", type=Path, default=None, help="model checkpoints folder")
    add_common(e)
    e.set_defaults(func=cmd_eval_codec)


def codec_name(task: str, k: int, lam: float) -> str:
    """File stem of a codec: codec-<task>-k<k>-lam<lam>."""
    return f"codec-{task}-k{k}-lam{lam:g}"


def _command(args: argparse.Namespace, out: Path) -> str:
    """The command line that reproduces this run (repo-relative when out is shipped)."""
    parts = [
        "edgeai split train-codec",
        f"--task {args.task} --split {args.split} --lam {args.lam:g}",
        f"--channels {args.channels} --seed {args.seed} --steps {args.steps}",
        f"--hidden {args.hidden} --beta {args.beta:g} --gain {args.gain:g} --pool {args.pool} --eval-n {args.eval_n}",
    ]
    if args.model_dir is not None:
        parts.append(f"--model-dir {args.model_dir}")
    parts.append(f"--out {shown(out)}")
    return " ".join(parts)


def _table(title: str, rows: list[dict]) -> Table:
    cells = [
        [r["scheme"], f"{r['score']:.2f}", f"{r['mean_bytes']:.0f}", str(r["max_bytes"]),
         f"{r['estimated_bytes']:.0f}" if "estimated_bytes" in r else "-"]
        for r in rows
    ]
    return table(["scheme", "score", "mean bytes", "max bytes", "est. bytes"], cells, title)


def cmd_train_codec(args: argparse.Namespace, settings: Settings) -> int:
    import hashlib

    import numpy as np
    from edgeai.tools.split_inference.codec import save_codec
    from edgeai.tools.split_inference.imagecodecs import encode_png
    from edgeai.tools.split_inference.models import checkpoint_path, load_model
    from edgeai.tools.split_inference.train_codec import evaluate_codec, train_codec
    from edgeai.tools.split_inference.train_models import update_manifest
    from edgeai.tools.split_inference.world import make_examples
    from rich.console import Console

    check_positive(args, "channels", "steps", "hidden", "pool", "eval_n")
    if args.gain <= 0:
        raise UserInputError(f"--gain must be > 0, got {args.gain:g}")
    if args.lam < 0 or args.beta < 0:
        raise UserInputError(f"--lam and --beta must be >= 0, got {args.lam:g}, {args.beta:g}")
    name = codec_name(args.task, args.split, args.lam)
    out = args.out or settings.home / "split" / "codecs" / f"{name}.pt"
    if out.is_dir():
        raise UserInputError(f"--out {out} is a folder; give a file path like {out}/{name}.pt")
    model = load_model(args.task, args.model_dir)
    codec, record = train_codec(
        model, args.split, args.lam, args.channels, args.steps, args.seed, hidden=args.hidden,
        beta=args.beta, gain=args.gain, pool=args.pool, progress=not args.no_progress,
    )
    held_out = make_examples(args.task, args.eval_n, 0)
    with_codec = evaluate_codec(model, codec, args.split, held_out)
    raw = evaluate_codec(model, None, args.split, held_out)
    record["command"] = _command(args, out)
    model_file = checkpoint_path(args.task, args.model_dir)  # the frozen model it was fitted to
    record["model_sha256"] = hashlib.sha256(model_file.read_bytes()).hexdigest()
    record["eval"] = f"held-out image seeds 0..{args.eval_n - 1}"
    record["metrics"] = with_codec
    record["metrics_raw"] = raw
    png = float(np.mean([len(encode_png(e.image)) for e in held_out]))
    record["png_mean_bytes"] = png
    record["bytes_ratio_vs_png"] = png / with_codec["mean_bytes"]
    save_codec(codec, out, extra=record)
    record["bytes"] = out.stat().st_size
    update_manifest(out.stem, record, out.parent / "manifest.json")
    Console().print(
        _table(
            f"{name}: trained in {record['seconds']} s ({record['eval']})",
            [{"scheme": "codec", **with_codec}, {"scheme": "raw float32", **raw}],
        )
    )
    print(f"PNG of the same photos: {png:.0f} bytes ({record['bytes_ratio_vs_png']:.0f}x more)")
    print(f"wrote {out} ({record['bytes']} bytes) and {out.parent / 'manifest.json'}")
    return 0


def cmd_eval_codec(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.split_inference.codec import load_codec
    from edgeai.tools.split_inference.models import load_model
    from edgeai.tools.split_inference.train_codec import evaluate_codec
    from edgeai.tools.split_inference.world import make_examples
    from rich.console import Console

    if args.n < 1 or args.start < 0:
        raise UserInputError("--n must be >= 1 and --start >= 0")
    codec = load_codec(args.codec)
    m = codec.meta
    model = load_model(m.task, args.model_dir)  # type: ignore[arg-type]
    if model.model_id != m.model_id:
        raise UserInputError(f"codec was trained for {m.model_id}, not {model.model_id}")
    examples = make_examples(m.task, args.n, args.start)  # type: ignore[arg-type]
    rows = [
        {"scheme": f"codec lambda={m.lam:g}", **evaluate_codec(model, codec, m.split, examples)},
        {"scheme": "raw float32", **evaluate_codec(model, None, m.split, examples)},
    ]
    title = f"{codec.describe()} on seeds {args.start}..{args.start + args.n - 1}"
    Console().print(_table(title, rows))
    return 0
