"""`edgeai chooser train`: the planner's learned set decision (agents/planning/learned.py).

Reads every pool of the data folder (default corpus/planning/pools, written blind) through the
embedded chooser, fits the classifier, picks the threshold on whole pools held out fold by fold,
and writes the checkpoint with its manifest (command, seed, pools, out-of-fold score, CPU time).
The model and its data live in learned.py / learned_train.py; this module owns the arguments,
their one-line errors and the printed results."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from edgeai.cli import add_common
from edgeai.config import Settings
from edgeai.errors import UserInputError

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "planning" / "pools"


def register(sub: argparse._SubParsersAction) -> None:
    chooser = sub.add_parser("chooser", help="the planner's learned set decision: train")
    csub = chooser.add_subparsers(dest="chooser_command", required=True, parser_class=type(chooser))
    train = csub.add_parser(
        "train", help="train the learned chooser on a folder of labelled pools"
    )
    train.add_argument(
        "--pools",
        type=Path,
        default=CORPUS,
        help="folder of pools (manuals/ + requests.jsonl each; default: corpus/planning/pools)",
    )
    train.add_argument(
        "--out",
        type=Path,
        default=None,
        help="checkpoint file (default: the package's shipped checkpoints/chooser.json)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--folds", type=int, default=5, help="pool folds for the threshold")
    train.add_argument(
        "--epochs", type=int, default=3, help="epochs of the request encoder's fine-tuning"
    )
    train.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1),
        help="processes reading pools (each with one torch thread)",
    )
    add_common(train)
    train.set_defaults(func=cmd_train)


def _one_thread() -> None:
    """A pool reader's process: one BLAS and one torch thread (two readers on two cores would
    otherwise fight over four threads; measured 2-3x slower)."""
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    torch.set_num_threads(1)


def _collect_one(args: tuple[str, str]) -> str:
    from edgeai.agents.planning.learned_train import collect

    collect(Path(args[0]), Path(args[1]))
    return args[0]


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.agents.planning import learned, learned_train
    from tqdm import tqdm

    root = Path(args.pools)
    if not root.is_dir():
        raise UserInputError(f"--pools: '{root}' is not a folder")
    folders = sorted(p for p in root.iterdir() if (p / "manuals").is_dir())
    if args.folds < 2:
        raise UserInputError("--folds must be at least 2")
    if args.epochs < 1:
        raise UserInputError("--epochs must be at least 1")
    if args.jobs < 1:
        raise UserInputError("--jobs must be at least 1")
    from edgeai.agents.planning.evaluate import load_requests

    tower = [f for f in folders if learned_train.tower_side(f.name)]
    if not tower or len(folders) - len(tower) < args.folds:
        raise UserInputError(
            f"--pools: '{root}' splits into {len(tower)} pools for the request encoder and "
            f"{len(folders) - len(tower)} for the classifier; the encoder needs at least 1, "
            f"the classifier at least {args.folds} (--folds)"
        )

    for f in folders:  # every pool checked before any is read
        load_requests(f / "requests.jsonl")
    cache = settings.home / "cache" / "chooser"
    started = time.perf_counter()
    bar = tqdm(total=len(folders), desc="reading pools", unit="pool", file=sys.stderr)
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(
            args.jobs, mp_context=get_context("spawn"), initializer=_one_thread
        ) as pool:
            for _ in pool.map(_collect_one, [(str(f), str(cache)) for f in folders]):
                bar.update()
    else:
        for f in folders:
            _collect_one((str(f), str(cache)))
            bar.update()
    bar.close()
    pools = [learned_train.collect(f, cache) for f in folders]  # from the cache
    read_s = time.perf_counter() - started
    bars: dict[str, tqdm] = {}

    def progress(stage: str, k: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = tqdm(total=total, desc=stage, unit="step", file=sys.stderr)
        bars[stage].update(k - bars[stage].n)

    out = args.out or learned.CHECKPOINT
    command = "edgeai chooser train " + " ".join(sys.argv[3:])
    model, meta = learned_train.train(
        pools, out, args.seed, args.folds, command.strip(), args.epochs, progress
    )
    for bar in bars.values():
        bar.close()
    meta["read_pools_cpu_s"] = round(sum(p.seconds for p in pools), 1)
    meta["wall_s"] = round(time.perf_counter() - started, 1)
    meta["read_wall_s"] = round(read_s, 1)
    model.save(out)
    shown = {k: v for k, v in meta.items() if k not in ("out_of_fold_per_pool", "features")}
    print(json.dumps({"out": str(out), "threshold": model.threshold, **shown}, indent=2))
    return 0
