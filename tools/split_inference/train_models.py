"""Train the photo-pool models from a seed on freshly generated photos, and record them in the manifest.

Every step draws a new batch from the training image seeds (>= 1_000_000, never the held-out
seeds 0..99_999), so the models see each photo once and cannot overfit; AdamW with linear warm-up
and a cosine decay; one CPU thread so a run is reproducible and leaves the shared machine usable.
The result is scored on the first `eval_n` held-out photos (seeds 0..eval_n-1) and written as an
fp16 checkpoint plus a manifest entry (command, seed, config, metrics, seconds).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgeai.errors import UserInputError, WeightsError
from edgeai.tools import checkpoints
from edgeai.tools.split_inference.base import TASKS, Example, Task
from edgeai.tools.split_inference.metrics import task_metrics
from edgeai.tools.split_inference.models import (
    CHECKPOINT_DIR,
    PhotoModel,
    build_model,
    save_model,
)
from edgeai.tools.split_inference.world import TRAIN_SEED0, make_examples
from tqdm import tqdm

log = logging.getLogger(__name__)

MANIFEST = CHECKPOINT_DIR / "manifest.json"
TRAIN_SEED_SPAN = 1_000_000  # training image seeds live in [1_000_000, 2_000_000)


@dataclass
class TrainArgs:
    """Hyper-parameters of one training run (defaults per task in DEFAULTS)."""

    task: Task
    seed: int = 0  # torch init and the offset into the training image seeds
    steps: int = 900  # optimizer steps, each on a fresh batch
    batch_size: int = 64
    lr: float = 1e-3  # peak AdamW learning rate after warm-up
    weight_decay: float = 0.05
    warmup: int = 100  # linear warm-up steps before the cosine decay to 0
    eval_n: int = 500  # held-out photos scored at the end (seeds 0..eval_n-1)
    config: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides
    init_encoder: str | None = None  # checkpoint whose image encoder starts this model (BLIP-style
    # reuse of a trained ViT); None = random init
    init_model: str | None = None  # checkpoint of the same task to continue from (all weights)


DEFAULTS: dict[str, dict[str, Any]] = {
    "classify": {"steps": 1500},
    "caption": {"steps": 1500},
    "vqa": {"steps": 1500},
}


def default_args(task: Task, **overrides: Any) -> TrainArgs:
    """TrainArgs of `task` with the shipped defaults, then `overrides` (None values ignored)."""
    if task not in TASKS:
        raise UserInputError(f"unknown task '{task}' (choose from {', '.join(TASKS)})")
    values = {**DEFAULTS[task], **{k: v for k, v in overrides.items() if v is not None}}
    return TrainArgs(task=task, **values)


def train_image_seed(seed: int, index: int) -> int:
    """Image seed of the index-th training photo of run `seed` (within the training range)."""
    return TRAIN_SEED0 + (seed * 104_729 + index) % TRAIN_SEED_SPAN


def _batch(task: Task, seed: int, step: int, batch_size: int) -> list[Example]:
    start = train_image_seed(seed, step * batch_size)
    if start + batch_size > TRAIN_SEED0 + TRAIN_SEED_SPAN:  # wrap: rare, keeps seeds in range
        start = TRAIN_SEED0
    return make_examples(task, batch_size, start)


def lr_at(step: int, args: TrainArgs) -> float:
    """Linear warm-up, then cosine decay to 0 (SGDR without restarts)."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    t = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * 0.5 * (1.0 + math.cos(math.pi * t))


@torch.no_grad()
def predict_examples(model: PhotoModel, examples: list[Example], batch_size: int = 100
                     ) -> list[str]:
    """Whole-model predictions for examples, in batches."""
    model.eval()
    out: list[str] = []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i: i + batch_size]
        out += model.predict(np.stack([e.image for e in chunk]), [e.question for e in chunk])
    return out


def evaluate(model: PhotoModel, n: int = 500, seed: int = 0) -> dict[str, float]:
    """Metrics of model on held-out photos seed..seed+n-1."""
    examples = make_examples(model.task, n, seed)
    return task_metrics(model.task, predict_examples(model, examples), examples)


def _load_encoder(model: PhotoModel, path: Path, everything: bool = False) -> None:
    """Copy the image encoder (and its final norm) of checkpoint `path` into model; with
    everything=True copy every weight (continue training a model of the same task)."""
    expect = {"task": model.task} if everything else None
    blob = checkpoints.load(path, "init checkpoint", dict, expect=expect)
    state = {k: v.float() for k, v in blob["state_dict"].items()
             if everything or k.startswith(("encoder.", "enc_norm."))}
    own = model.state_dict()
    bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if bad or not state:
        raise WeightsError(f"init checkpoint '{path}' does not fit this model's config "
                           f"({', '.join(bad[:3]) or 'no encoder weights'})")
    model.load_state_dict(state, strict=False)


def train_model(
    task: Task,
    seed: int = 0,
    steps: int | None = None,
    batch_size: int | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Train `task` from `seed`; save to `out` when given; return the run's record.

    The record (also the manifest entry) holds task, seed, args, config, metrics on held-out
    photos, seconds and the output path.
    """
    args = default_args(task, seed=seed, steps=steps, batch_size=batch_size, **overrides)
    if args.steps < 1 or args.batch_size < 1:
        raise UserInputError("steps and batch size must be >= 1")
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    model = build_model(task, **args.config)
    if args.init_encoder:
        _load_encoder(model, Path(args.init_encoder))
    if args.init_model:
        _load_encoder(model, Path(args.init_model), everything=True)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "pos" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    t0 = time.time()
    bar = tqdm(range(args.steps), desc=f"train {task}", disable=not progress)
    ema = None
    for step in bar:
        examples = _batch(task, args.seed, step, args.batch_size)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        h = model.preprocess(np.stack([e.image for e in examples]))
        loss = model.loss_from(h, 0, examples)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        bar.set_postfix(loss=f"{ema:.3f}")
        if on_step is not None:
            on_step(step, loss.item())
    train_seconds = time.time() - t0
    model.eval()
    metrics = evaluate(model, args.eval_n)
    record: dict[str, Any] = {
        "kind": "model",
        "task": task,
        "model_id": model.model_id,
        "seed": args.seed,
        "args": {k: v for k, v in asdict(args).items() if k not in ("task", "config")},
        "config": asdict(model.cfg),
        "metrics": {k: round(v, 2) for k, v in metrics.items()},
        "eval": f"held-out seeds 0..{args.eval_n - 1}",
        "seconds": round(train_seconds, 1),
        "threads": 1,
    }
    for key in ("init_encoder", "init_model"):
        if getattr(args, key):
            digest = hashlib.sha256(Path(getattr(args, key)).read_bytes()).hexdigest()
            record[f"{key}_sha256"] = digest
    if out is not None:
        path = save_model(model, out)
        record["file"] = path.name
        record["bytes"] = path.stat().st_size
    log.info("trained %s: %s in %.0f s", task, record["metrics"], train_seconds)
    record["model"] = model
    return record


def update_manifest(name: str, entry: dict[str, Any], path: str | Path = MANIFEST) -> None:
    """Set manifest[name] = entry, keeping every other entry (read-modify-write under a lock,
    written atomically), so the model and codec trainers can share one manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)  # lock the folder: no lock file to ship or ignore
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data: dict[str, Any] = {}
        if path.is_file():
            data = json.loads(path.read_text() or "{}")
        data[name] = entry
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")
        tmp.replace(path)
    finally:
        os.close(fd)  # closing releases the lock
