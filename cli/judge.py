"""`edgeai judge train|eval`: the planner's learned relevance judge (agents/planning/relevance.py).

`train` fits the judge's peft LoRA adapter and head on the training pools, picks the decision
threshold on the held-out ones and writes the checkpoint; `eval` scores a checkpoint's exact-set
accuracy per threshold on pool folders. The model and its data live in relevance.py; this module
owns only the arguments, their one-line errors and the printed results."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgeai.cli import add_common
from edgeai.config import Settings
from edgeai.errors import UserInputError
from rich.console import Console
from rich.table import Table


def register(sub: argparse._SubParsersAction) -> None:
    judge = sub.add_parser("judge", help="the planner's learned relevance judge: train, eval")
    jsub = judge.add_subparsers(dest="judge_command", required=True, parser_class=type(judge))

    train = jsub.add_parser(
        "train", help="train the judge's adapter on the training pools (knowledge/training/)"
    )
    train.add_argument(
        "--out",
        type=Path,
        default=None,
        help="checkpoint file (default: the package's shipped relevance.pt)",
    )
    train.add_argument(
        "--pools",
        type=Path,
        default=None,
        help="folder of training pools (default: knowledge/training)",
    )
    train.add_argument(
        "--hold-out",
        action="append",
        default=[],
        help="training pool to leave out and score (repeatable)",
    )
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--seed", type=int, default=None)
    train.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="decision threshold stored with the weights (default: chosen on the held-out pools, else 0.5)",
    )
    add_common(train)
    train.set_defaults(func=cmd_train)

    ev = jsub.add_parser("eval", help="exact-set accuracy of the judge alone on pool folders")
    ev.add_argument(
        "pools", nargs="+", help="shipped pool names or folders with manuals/ + requests.jsonl"
    )
    ev.add_argument("--weights", type=Path, default=None)
    add_common(ev)
    ev.set_defaults(func=cmd_eval)


THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.agents.planning import relevance
    from tqdm import tqdm

    root = args.pools or relevance.TRAINING_DIR
    if not Path(root).is_dir():
        raise UserInputError(f"--pools: '{root}' is not a folder of training pools")
    folders = relevance.training_pools(root)
    names = {f.name for f in folders}
    unknown = [h for h in args.hold_out if h not in names]
    if unknown:
        raise UserInputError(f"--hold-out: no training pool named {', '.join(unknown)} in {root}")
    if len(args.hold_out) >= len(folders):
        raise UserInputError("--hold-out: at least one training pool must stay in training")
    cfg = relevance.TrainConfig()
    for key in ("epochs", "seed"):
        if getattr(args, key) is not None:
            setattr(cfg, key, getattr(args, key))
    if cfg.epochs < 1:
        raise UserInputError("--epochs must be at least 1")
    train = [relevance.read_pool(f) for f in folders if f.name not in args.hold_out]
    held = [relevance.read_pool(f) for f in folders if f.name in args.hold_out]
    bar = tqdm(desc="training the judge", unit="step", file=sys.stderr)

    def progress(step: int, total: int, loss: float) -> None:
        bar.total = total
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{loss:.3f}")

    judge = relevance.train(train, cfg, progress)
    bar.close()
    scores = {}
    for pool in held:
        probs = relevance.pool_probabilities(judge, pool)
        scores[pool.name] = {t: relevance.set_accuracy(pool, probs, t) for t in THRESHOLDS}
    threshold = args.threshold
    if threshold is None:
        threshold = 0.5
        if scores:
            mean = {t: sum(s[t] for s in scores.values()) / len(scores) for t in THRESHOLDS}
            threshold = max(THRESHOLDS, key=lambda t: (mean[t], -abs(t - 0.5)))
    out = args.out or relevance.CHECKPOINT
    meta = {
        "threshold": threshold,
        "train_pools": [p.name for p in train],
        "held_out": {k: {str(t): round(v, 4) for t, v in s.items()} for k, s in scores.items()},
        "config": cfg.__dict__,
        "command": "edgeai judge train " + " ".join(sys.argv[3:]),
    }
    judge.save(out, meta)
    print(json.dumps({"out": str(out), **meta}, indent=2))
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.agents.planning import relevance
    from edgeai.knowledge.pools import resolve_pool

    judge = relevance.load_judge(args.weights or relevance.CHECKPOINT)
    table = Table(title="judge alone: exact-set accuracy per threshold")
    table.add_column("pool")
    for t in THRESHOLDS:
        table.add_column(
            f"{t:.2f}" + (" *" if abs(t - judge.meta.get("threshold", 0.5)) < 1e-9 else "")
        )
    for name in args.pools:
        pool = relevance.read_pool(resolve_pool(name))
        probs = relevance.pool_probabilities(judge, pool)
        table.add_row(
            pool.name, *[f"{relevance.set_accuracy(pool, probs, t):.3f}" for t in THRESHOLDS]
        )
    Console().print(table)
    return 0
