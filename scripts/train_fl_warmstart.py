"""Pre-train each federated model arch on photo-world photos and ship the weights as warm starts.

Usage: python scripts/train_fl_warmstart.py [--seconds 120] [--n-images 3000] [--out DIR]
Renders 32x32 photos from seeds >= 4_000_000 (disjoint from federated learning's 3_000_000 range
and split inference's), trains every arch in tools/federated/models.py for a wall-clock budget on
one thread with Adam and flip+crop augmentation, and writes warmstart-<arch>.pt (a float32 state
dict, its arch and how it was made) that `load_warm_start` reads. The photos share the generated
set's 10 classes, so on "generated" a warm start is a pre-trained feature extractor for the very
task; report it as such.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from edgeai.tools.federated.data import augment
from edgeai.tools.federated.models import ARCHS, CHECKPOINT_DIR, build_model, param_count
from edgeai.tools.photoworld import photos
from torch import nn

logger = logging.getLogger("train_fl_warmstart")

WARM_SEED0 = 4_000_000


@dataclass
class Args:
    seconds: float = 120.0
    """Training budget per arch (wall clock, one thread)."""
    n_images: int = 3000
    """Pre-training photos (the last 10% are held out to report accuracy)."""
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    out: Path = CHECKPOINT_DIR


def train_arch(arch: str, x: torch.Tensor, y: torch.Tensor, args: Args) -> tuple[nn.Module, dict]:
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    n_val = len(y) // 10
    x_tr, y_tr, x_va, y_va = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]
    model = build_model(arch, 3, 10, 32)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    start, epochs = time.perf_counter(), 0
    while time.perf_counter() - start < args.seconds:
        model.train()
        order = torch.randperm(len(y_tr), generator=g)
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(augment(x_tr[idx], "flip+crop", g)), y_tr[idx])
            loss.backward()
            opt.step()
        epochs += 1
    model.eval()
    with torch.no_grad():
        acc = float((model(x_va).argmax(1) == y_va).float().mean())
    meta = {"epochs": epochs, "seconds": round(time.perf_counter() - start, 1),
            "held_out_accuracy": round(acc, 4), "params": param_count(model)}
    logger.info("%s: %s", arch, meta)
    return model, meta


def main(argv: list[str] | None = None) -> int:
    d = Args()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=d.seconds)
    parser.add_argument("--n-images", type=int, default=d.n_images)
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--out", type=Path, default=d.out)
    ns = parser.parse_args(argv)
    args = Args(seconds=ns.seconds, n_images=ns.n_images, out=ns.out)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    images, labels = photos(args.n_images, WARM_SEED0, 32, progress=sys.stderr.isatty())
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)
    x = (x - mean) / std  # (N, 3, 32, 32), normalised like load_data's splits
    y = torch.from_numpy(labels)
    args.out.mkdir(parents=True, exist_ok=True)
    for arch in ns.archs.split(","):
        model, meta = train_arch(arch, x, y, args)
        state = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
        payload = {"arch": arch, "state_dict": state, "in_channels": 3, "image_size": 32,
                   "width": 1, "seed0": WARM_SEED0,
                   "args": {k: str(v) for k, v in asdict(args).items()}, **meta}
        torch.save(payload, args.out / f"warmstart-{arch}.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
