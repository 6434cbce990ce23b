"""`edgeai split train-model`: train a photo-pool model from a seed and print its held-out metrics
(and record the command that reproduces it in the checkpoint folder's manifest)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeai.cli import add_common
from edgeai.cli.split.common import TASK_CHOICES, check_positive, shown, table
from edgeai.config import Settings
from edgeai.errors import UserInputError


def register(split_sub: argparse._SubParsersAction) -> None:
    p = split_sub.add_parser(
        "train-model", help="train the photo classifier, captioner or VQA model from a seed")
    p.add_argument("--task", required=True, choices=TASK_CHOICES)
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


def _command(args: argparse.Namespace, record: dict, out: Path) -> str:
    """The command line that reproduces this run, every hyper-parameter spelled out."""
    run = record["args"]
    parts = ["edgeai split train-model", f"--task {args.task}", f"--seed {args.seed}",
             f"--steps {run['steps']}", f"--batch-size {run['batch_size']}", f"--lr {run['lr']}"]
    if args.eval_n is not None:
        parts.append(f"--eval-n {args.eval_n}")
    if args.init_encoder is not None:
        parts.append(f"--init-encoder {shown(args.init_encoder)}")
    if args.init_model is not None:
        parts.append(f"--init-model {shown(args.init_model)}")
    parts.append(f"--out {shown(out)}")
    return " ".join(parts)


def cmd_train_model(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.split_inference.train_models import train_model, update_manifest
    from rich.console import Console

    check_positive(args, "steps", "batch_size", "eval_n", "lr")
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
    rows = [[name, f"{value:.2f}"] for name, value in record["metrics"].items()]
    title = f"{args.task}: trained in {record['seconds']} s ({record['eval']})"
    Console().print(table(["metric", "value"], rows, title))
    print(f"wrote {out} ({record['bytes']} bytes) and {out.parent / 'manifest.json'}")
    return 0
