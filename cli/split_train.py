"""`edgeai split train-model`: train a photo-pool model from a seed and print its held-out metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeai.cli import add_common
from edgeai.config import Settings
from edgeai.errors import UserInputError
from rich.console import Console
from rich.table import Table


def register_split(split_sub: argparse._SubParsersAction) -> None:
    p = split_sub.add_parser(
        "train-model", help="train the photo classifier, captioner or VQA model from a seed")
    p.add_argument("--task", required=True, choices=["classify", "caption", "vqa"])
    p.add_argument("--seed", type=int, default=0, help="torch init and training-photo offset")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (task default)")
    p.add_argument("--batch-size", type=int, default=None, help="photos per step (default 64)")
    p.add_argument("--eval-n", type=int, default=None, help="held-out photos scored (500)")
    p.add_argument(
        "--out", type=Path, default=None,
        help="checkpoint file (default: <home>/split/models/<task>.pt; give "
             "tools/split_inference/checkpoints/<task>.pt to replace the shipped weights)")
    p.add_argument("--init-encoder", type=Path, default=None,
                   help="start the image encoder from this checkpoint (e.g. the classifier's)")
    p.add_argument("--init-model", type=Path, default=None,
                   help="continue from this checkpoint of the same task (all weights)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (1e-3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(p)
    p.set_defaults(func=cmd_train_model)


def _shown(path: Path) -> str:
    """A path as the reproducing command shows it: repository-relative for shipped files."""
    from edgeai.tools.split_inference.models import CHECKPOINT_DIR

    if path.resolve().parent == CHECKPOINT_DIR.resolve():
        return f"tools/split_inference/checkpoints/{path.name}"
    return str(path)


def _command(args: argparse.Namespace, record: dict, out: Path) -> str:
    """The command line that reproduces this run, every hyper-parameter spelled out."""
    run = record["args"]
    parts = ["edgeai split train-model", f"--task {args.task}", f"--seed {args.seed}",
             f"--steps {run['steps']}", f"--batch-size {run['batch_size']}", f"--lr {run['lr']}"]
    if args.eval_n is not None:
        parts.append(f"--eval-n {args.eval_n}")
    if args.init_encoder is not None:
        parts.append(f"--init-encoder {_shown(args.init_encoder)}")
    if args.init_model is not None:
        parts.append(f"--init-model {_shown(args.init_model)}")
    parts.append(f"--out {_shown(out)}")
    return " ".join(parts)


def cmd_train_model(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.split_inference.train_models import train_model, update_manifest

    for flag in ("steps", "batch_size", "eval_n", "lr"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise UserInputError(f"--{flag.replace('_', '-')} must be > 0, got {value}")
    out = args.out or settings.home / "split" / "models" / f"{args.task}.pt"
    if out.exists() and out.is_dir():
        raise UserInputError(f"--out {out} is a folder; give a file path like {out}/model.pt")
    record = train_model(args.task, seed=args.seed, steps=args.steps,
                         batch_size=args.batch_size, out=out, progress=not args.no_progress,
                         eval_n=args.eval_n, lr=args.lr,
                         init_encoder=str(args.init_encoder) if args.init_encoder else None,
                         init_model=str(args.init_model) if args.init_model else None)
    record.pop("model")
    record["command"] = _command(args, record, out)
    update_manifest(args.task, record, out.parent / "manifest.json")
    table = Table(title=f"{args.task}: trained in {record['seconds']} s ({record['eval']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in record["metrics"].items():
        table.add_row(name, f"{value:.2f}")
    Console().print(table)
    print(f"wrote {out} ({record['bytes']} bytes) and {out.parent / 'manifest.json'}")
    return 0
