"""Train a feature codec at split point k against a frozen SplitModel, and measure it with real bytes.

Paper section III-A3: the entropy model at the partition point is trained end to end by
back-propagation with loss = task loss + lambda * rate. The model stays frozen, so one set of
model weights serves every scheme and only the small codec is shipped per (task, k, lambda):

    loss = model.loss_from(codec(h), k, examples)        # task loss through the rounded latents
         + lam * mean bits per image                      # rate (noisy-latent estimate)
         + beta * ||E(codec(h)) - E(h)||^2 / ||E(h)||^2   # distillation toward the uncompressed model
         + codec.aux_loss()                               # entropy-model medians

where E = model.run_stages(., k, n_stages) is the rest of the frozen encoder. The distillation
term (beta = 1 by default) is there because the target is the uncompressed model, not the
labels: the task loss alone reaches the model's own training loss but flips 2-3 % of held-out
decisions near the boundary (measured: top-1 84.6 vs 87.6 for classify at k=1); matching the
encoder's output keeps the edge's answers those of the uncompressed model.
Images come from the photo world with codec-training seeds >= 2_000_000 (never test seeds);
since stages [0, k) are frozen, their activations for the training pool are computed once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from edgeai.errors import UserInputError
from edgeai.tools.split_inference.base import Example, SplitModel
from edgeai.tools.split_inference.codec import CodecMeta, FeatureCodec
from edgeai.tools.split_inference.metrics import task_score
from edgeai.tools.split_inference.world import CODEC_SEED0, make_examples
from tqdm import tqdm

log = logging.getLogger(__name__)


@dataclass
class CodecTrainArgs:
    """Hyper-parameters of one codec training run (all of them; saved in the checkpoint)."""

    task: str
    split: int  # split point k (1..n_stages-1 makes sense; 0 would code pixels)
    lam: float  # rate weight per bit per image
    channels: int = 8  # latent channels per token
    hidden: int = 128  # analysis / synthesis MLP width
    steps: int = 3000  # optimiser steps
    batch: int = 32  # images per step
    pool: int = 4096  # distinct training images (seeds CODEC_SEED0 + seed * 100_000 + i)
    lr: float = 2e-3  # Adam, cosine decay to 5 % of this
    beta: float = 1.0  # distillation weight toward the uncompressed encoder output
    gain: float = 1.0  # initial latent gain (quantisation step 1/gain at the start)
    seed: int = 0  # torch seed and training-image offset


def _examples_without_pixels(examples: list[Example]) -> list[Example]:
    """Keep question and targets (what loss_from reads); drop the 150 kB images."""
    empty = np.zeros((0, 0, 3), np.uint8)
    return [Example(empty, e.question, e.targets) for e in examples]


@torch.no_grad()
def split_features(
    model: SplitModel, examples: list[Example], k: int, batch: int = 64, desc: str = "features"
) -> torch.Tensor:
    """Activations at split point k for the images of `examples`: [N, T, D]."""
    out = []
    for i in tqdm(range(0, len(examples), batch), desc=desc, leave=False):
        images = np.stack([e.image for e in examples[i : i + batch]])
        out.append(model.features(images, k))
    return torch.cat(out)


def training_pool(task: str, n: int, seed: int) -> list[Example]:
    """The codec-training images: seeds >= CODEC_SEED0, disjoint per training seed."""
    return make_examples(task, n, CODEC_SEED0 + seed * 100_000)  # type: ignore[arg-type]


def train_codec(
    model: SplitModel,
    k: int,
    lam: float,
    channels: int,
    steps: int = 3000,
    seed: int = 0,
    *,
    hidden: int = 128,
    batch: int = 32,
    pool: int = 4096,
    lr: float = 2e-3,
    beta: float = 1.0,
    gain: float = 1.0,
    examples: list[Example] | None = None,
    progress: bool = True,
) -> tuple[FeatureCodec, dict]:
    """Train a codec at split k for the frozen `model`; returns (codec in eval mode, record).

    `examples` overrides the training pool (default: `pool` photo-world images from the
    codec-training seeds). The record holds the arguments, the last losses and the seconds.
    """
    if not 1 <= k < model.n_stages:
        raise UserInputError(f"codec split point must be in 1..{model.n_stages - 1}, got {k}")
    if lam < 0 or channels < 1 or steps < 1:
        raise UserInputError("need lam >= 0, channels >= 1, steps >= 1")
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    t0 = time.time()
    args = CodecTrainArgs(
        model.task, k, lam, channels, hidden, steps, batch, pool, lr, beta, gain, seed
    )
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    data = examples if examples is not None else training_pool(model.task, pool, seed)
    feats = split_features(model, data, k, desc="split features")  # (N, T, D), frozen
    data = _examples_without_pixels(data)
    n = model.n_stages
    with torch.no_grad():  # the uncompressed model's encoder output, the distillation target
        teacher = torch.cat([model.run_stages(f, k, n) for f in feats.split(256)])
    scale = teacher.pow(2).mean()

    meta = CodecMeta(model.model_id, model.task, k, lam, channels, feats.shape[-1], hidden, gain)
    codec = FeatureCodec(meta)
    opt = torch.optim.Adam(codec.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.05 * lr)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data), generator=gen)
    pos, hist = 0, []
    codec.train()
    bar = tqdm(range(steps), desc=f"codec {model.task} k={k} lam={lam:g}", disable=not progress)
    for _ in bar:
        if pos + batch > len(order):
            order, pos = torch.randperm(len(data), generator=gen), 0
        idx = order[pos : pos + batch]
        pos += batch
        h = feats[idx]  # (B, T, D)
        h_hat, bits = codec(h)  # (B, T, D), (B,)
        task_loss = model.loss_from(h_hat, k, [data[i] for i in idx.tolist()])
        rate = bits.mean()
        distill = (model.run_stages(h_hat, k, n) - teacher[idx]).pow(2).mean() / scale
        loss = task_loss + lam * rate + beta * distill + codec.aux_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        hist.append((task_loss.item(), rate.item(), distill.item()))
        if len(hist) % 50 == 0:
            t, r, _ = np.mean(hist[-50:], axis=0)
            bar.set_postfix(task=f"{t:.3f}", bytes=f"{r / 8:.0f}")
    codec.update()
    codec.eval()
    last = np.mean(hist[-min(100, len(hist)) :], axis=0)
    record = {
        "args": asdict(args),
        "train_task_loss": float(last[0]),
        "train_bits": float(last[1]),
        "train_distill": float(last[2]),
        "first_task_loss": float(hist[0][0]),
        "seconds": round(time.time() - t0, 1),
    }
    return codec, record


@torch.no_grad()
def evaluate_codec(
    model: SplitModel,
    codec: FeatureCodec | None,
    k: int,
    examples: list[Example],
    batch: int = 50,
) -> dict:
    """Task score, real bytes and estimated bits over `examples` (codec=None: raw activation).

    Each item is compressed alone with `compress` (as the device would send it), decoded with
    `decompress`, and the model finishes from the decoded activation. Without a codec the
    activation is sent as it is (float32, T * D * 4 bytes): the uncompressed model's score.
    """
    model.eval()
    feats = split_features(model, examples, k, desc="eval features")
    sizes, estimate, preds = [], [], []
    for i in tqdm(range(0, len(examples), batch), desc="eval", leave=False):
        h = feats[i : i + batch]
        questions = [e.question for e in examples[i : i + batch]]
        if codec is None:
            h_hat = h
            sizes += [h[0].numel() * h.element_size()] * len(h)
        else:
            blobs = [codec.compress(x[None]) for x in h]
            sizes += [len(b) for b in blobs]
            estimate += (codec(h)[1] / 8).tolist()
            h_hat = torch.cat([codec.decompress(b) for b in blobs])
        preds += model.predict_from(h_hat, k, questions)
    out = {
        "task": model.task,
        "split": k,
        "n": len(examples),
        "score": task_score(model.task, preds, examples),  # type: ignore[arg-type]
        "mean_bytes": float(np.mean(sizes)),
        "max_bytes": int(np.max(sizes)),
    }
    if codec is not None:
        out["lam"] = codec.meta.lam
        out["estimated_bytes"] = float(np.mean(estimate))
    return out
